"""PasteSource: synthetic pairs whose boxes are exactly where the pasted object is."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from siamkit.data.pairs import PairConfig, PairDataset, PasteSource
from siamkit.losses.tracking import SiamFCTargets


@pytest.fixture()
def folders(tmp_path):
    rng = np.random.default_rng(0)
    backgrounds, objects = tmp_path / "bg", tmp_path / "obj"
    backgrounds.mkdir()
    objects.mkdir()
    for i in range(3):
        cv2.imwrite(str(backgrounds / f"{i}.png"), np.full((120, 160, 3), 40 + 20 * i, np.uint8))
    # objects: one flat colour each, unlike any background, so the pasted pixels can be found
    cv2.imwrite(str(objects / "a.png"), np.dstack([np.full((40, 20), 250, np.uint8)] * 3))
    cv2.imwrite(str(objects / "b.png"), rng.integers(0, 30, (30, 30, 3), dtype=np.uint8))
    return sorted(backgrounds.glob("*.png")), [objects / "a.png"]


def _where(image: np.ndarray, value: int) -> np.ndarray:
    ys, xs = np.nonzero((image == value).all(axis=2))
    return np.array([xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], np.float64)


@pytest.mark.parametrize("seed", range(5))
def test_boxes_are_the_pasted_pixels(folders, seed):
    backgrounds, objects = folders
    source = PasteSource("paste", backgrounds, objects=objects, distractors=0)
    template, search = source.positive(seed % 3, np.random.default_rng(seed))
    for item in (template, search):
        np.testing.assert_array_equal(_where(item["image"], 250), item["box"])
        x, y, w, h = item["box"]
        assert x >= 0 and y >= 0 and x + w <= 160 and y + h <= 120
    # the object keeps roughly its shape (aspect 0.5) up to the stretch jitter
    for box in (template["box"], search["box"]):
        assert 0.5 * np.exp(-0.3) - 0.1 < box[2] / box[3] < 0.5 * np.exp(0.3) + 0.1


def test_pairs_are_deterministic_and_train_ready(folders):
    backgrounds, _ = folders
    source = PasteSource("paste", backgrounds)  # objects: patches of the backgrounds themselves
    cfg = PairConfig(exemplar_size=63, search_size=127, pairs_per_epoch=4, neg=0.5)
    a = PairDataset([source], cfg, SiamFCTargets(score_size=9, search_size=127))
    b = PairDataset([source], cfg, SiamFCTargets(score_size=9, search_size=127))
    for i in range(4):
        np.testing.assert_array_equal(a[i]["search"], b[i]["search"])
    assert a[0]["template"].shape == (3, 63, 63)
