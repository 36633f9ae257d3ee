"""ROC / CMC plots: valid PNGs, one drawn curve per entry, clear errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from siamkit.errors import DataError
from siamkit.eval.metric.plots import plot_cmc, plot_roc
from siamkit.eval.metric.verification import roc_curve


def _coloured_pixels(path):
    img = cv2.imread(str(path))
    assert img is not None and img.ndim == 3 and min(img.shape[:2]) > 100
    spread = img.max(axis=2).astype(int) - img.min(axis=2).astype(int)
    return int((spread > 60).sum())


def test_roc_plot_with_several_curves(tmp_path):
    rng = np.random.default_rng(0)
    same = rng.random(500) < 0.5
    good = roc_curve(rng.normal(size=500) + 2 * same, same)
    bad = roc_curve(rng.normal(size=500) + 0.3 * same, same)
    one = plot_roc({"good": good}, tmp_path / "one.png")
    two = plot_roc({"good": good, "bad": {"far": bad[0], "tar": bad[1]}}, tmp_path / "two", log_far=False)
    assert one.suffix == ".png" and two.name == "two.png"
    assert _coloured_pixels(two) > _coloured_pixels(one) > 0
    with pytest.raises(DataError, match="far"):
        plot_roc({"x": [0.1]}, tmp_path / "bad.png")


def test_cmc_plot(tmp_path):
    cmc_a = np.linspace(0.6, 1.0, 30)
    path = plot_cmc({"a": cmc_a, "b": {"cmc": cmc_a * 0.8}}, tmp_path / "cmc.png", max_rank=10)
    assert _coloured_pixels(path) > 0
    with pytest.raises(DataError, match="No CMC"):
        plot_cmc({}, tmp_path / "x.png")
