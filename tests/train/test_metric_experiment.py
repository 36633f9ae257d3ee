"""Experiment helpers: preprocessing, deterministic augmentation, pair enumeration, threshold calibration."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
import torch

from siamkit.errors import DataError
from siamkit.eval.metric.protocols import hsv_stripe_histogram, pair_distances
from siamkit.experiments.metric import calibrate_threshold, make_batcher, random_erasing
from siamkit.experiments.preprocess import Augment, read_image, to_tensor


def test_to_tensor_resizes_and_normalises_by_hand():
    img = np.full((20, 10), 200, np.uint8)
    x = to_tensor(img, (8, 4), 1, {"mean": [0.5], "std": [0.25]})
    assert x.shape == (1, 1, 8, 4)
    torch.testing.assert_close(x, torch.full((1, 1, 8, 4), (200 / 255 - 0.5) / 0.25))
    bgr = np.zeros((4, 4, 3), np.uint8)
    bgr[..., 0] = 255  # pure blue in BGR -> channel 2 in RGB
    y = to_tensor(bgr, (4, 4), 3, {"mean": [0, 0, 0], "std": [1, 1, 1]})
    assert y[0, 2].min() == 1.0 and y[0, 0].max() == 0.0
    grey_from_colour = to_tensor(bgr, (4, 4), 1, {"mean": [0], "std": [1]})
    assert grey_from_colour.shape == (1, 1, 4, 4)


def test_read_image_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_image(tmp_path / "none.png", 1)
    (tmp_path / "x.png").write_text("no image")
    with pytest.raises(DataError, match="Cannot read"):
        read_image(tmp_path / "x.png", 1)


def test_augment_is_a_function_of_the_generator():
    img = (np.arange(30 * 20) % 251).astype(np.uint8).reshape(30, 20)
    aug = Augment(rotation=10, scale=(0.9, 1.1), shift=0.1, hflip=True)
    a = aug(img, np.random.default_rng([1, 2, 3]))
    b = aug(img, np.random.default_rng([1, 2, 3]))
    c = aug(img, np.random.default_rng([1, 2, 4]))
    assert np.array_equal(a, b) and not np.array_equal(a, c) and a.shape == img.shape
    assert np.array_equal(Augment()(img, np.random.default_rng(0)), img)  # identity when nothing is asked


def test_make_batch_shapes_and_labels():
    from siamkit.experiments.metric import DataConfig

    cfg = DataConfig(kind="image_folder", root=".", input_size=(6, 5), mean=(0.0,), std=(1.0,))
    images = np.random.default_rng(0).integers(0, 255, (7, 6, 5), dtype=np.uint8)
    labels = np.arange(7) % 3
    x, y = make_batcher(images, labels, cfg)([4, 1], np.random.default_rng(0))
    assert x.shape == (2, 1, 6, 5) and y.tolist() == [1, 1]
    torch.testing.assert_close(x[0, 0], torch.from_numpy(images[4]).float() / 255)


def test_pair_distances_against_brute_force():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(6, 3)).astype(np.float32)
    labels = np.array([0, 0, 1, 1, 1, 2])
    d, same = pair_distances(emb, labels)
    ref = [(np.linalg.norm(emb[i] - emb[j]), labels[i] == labels[j]) for i, j in itertools.combinations(range(6), 2)]
    np.testing.assert_allclose(d, [r[0] for r in ref], rtol=1e-6)
    assert same.tolist() == [r[1] for r in ref] and same.sum() == 1 + 3
    mask = np.zeros((6, 6), bool)
    mask[0, 1] = mask[2, 5] = True
    d2, same2 = pair_distances(emb, labels, mask)
    assert same2.tolist() == [True, False]


def test_calibrated_threshold_separates_clean_clusters():
    emb = np.array([[0.0, 0], [0.1, 0], [5, 5], [5.1, 5], [10, 0], [10, 0.1]])
    t = calibrate_threshold(emb, np.array([0, 0, 1, 1, 2, 2]))
    assert 0.1 <= t < 5.0  # between the largest genuine (0.1) and smallest impostor (~7.07 / 5.0) distances


def test_hsv_stripe_histogram_is_normalised():
    img = np.zeros((12, 6, 3), np.uint8)
    img[:6] = (255, 0, 0)
    f = hsv_stripe_histogram([img, cv2.flip(img, 0)], stripes=2, bins=(4, 2, 2))
    assert f.shape == (2, 2 * 16)
    np.testing.assert_allclose((f[0] ** 2).reshape(2, 16).sum(1), [1.0, 1.0], rtol=1e-6)
    assert not np.allclose(f[0], f[1])  # stripes keep the vertical layout


def test_calibrated_threshold_with_forgeries_uses_only_same_writer_pairs():
    # writer 0: genuine near 0, forgeries at 1; writer 1 far away. Cross-writer pairs must not count.
    emb = np.array([[0.0, 0], [0.05, 0], [1.0, 0], [1.05, 0], [50, 50], [50.05, 50], [51, 50]])
    labels = np.array([0, 0, 0, 0, 1, 1, 1])
    genuine = np.array([True, True, False, False, True, True, False])
    t = calibrate_threshold(emb, labels, genuine)
    assert 0.05 <= t < 0.9  # between genuine (0.05) and skilled-forgery (>= 0.95) distances


def test_random_erasing_changes_a_rectangle_only_when_drawn():
    img = np.full((40, 20), 7, np.uint8)
    assert np.array_equal(random_erasing(img, np.random.default_rng(0), p=0.0), img)
    out = random_erasing(img, np.random.default_rng(0), p=1.0)
    changed = np.argwhere(out != 7)
    assert changed.size and out.shape == img.shape and np.array_equal(img, np.full((40, 20), 7, np.uint8))
    ys, xs = changed[:, 0], changed[:, 1]
    box = out[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    assert (box != 7).mean() > 0.9  # one filled rectangle, not scattered pixels
