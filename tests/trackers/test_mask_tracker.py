"""The SiamMask tracker on the Lite0 network: onnxruntime gives PyTorch's masks, and the shipped model's masks beat
its own boxes on a held-out DAVIS video."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import shared_path

from siamkit.trackers import create_tracker
from siamkit.video import read_image


def davis(name: str, count: int):
    folder = shared_path("tracking_train", name)
    frames = [read_image(p) for p in sorted((folder / "img").glob("*.jpg"))[:count]]
    truths = [read_image(p, 0) > 127 for p in sorted((folder / "mask").glob("*.png"))[:count]]
    box = np.loadtxt(folder / "groundtruth_rect.txt", delimiter=",", max_rows=1) - [1, 1, 0, 0]
    return frames, truths, box


def test_onnxruntime_search_gives_the_pytorch_masks():
    pytest.importorskip("onnxruntime")
    frames, _, box = davis("davis_dog", 4)
    results = {}
    for backend in ("pytorch", "onnxruntime"):
        torch.manual_seed(0)
        options = {"backend": backend} if backend == "onnxruntime" else {}
        tracker = create_tracker("siammask", weights="none", device="cpu", preset="lite0", **options)
        tracker.init(frames[0], box)
        results[backend] = [tracker.track(f) for f in frames[1:]]
    for a, b in zip(results["pytorch"], results["onnxruntime"], strict=True):
        np.testing.assert_allclose(a.box, b.box, atol=1e-3)
        np.testing.assert_allclose(a.mask, b.mask, atol=1e-4)
        np.testing.assert_allclose(a.polygon, b.polygon, atol=1e-2)


def test_shipped_masks_beat_the_box_on_a_held_out_davis_video():
    """The shipped SiamMask's masks overlap the true object better than its own box does, on a DAVIS video held
    out by video from training (davis_parkour, 20 frames)."""
    from siamkit.eval.tracking.masks import box_mask, region_similarity

    frames, truths, box = davis("davis_parkour", 20)
    tracker = create_tracker("siammask", device="cpu")
    tracker.init(frames[0], box)
    mask_j, box_j = [], []
    for frame, truth in zip(frames[1:], truths[1:], strict=True):
        result = tracker.track(frame)
        mask_j.append(region_similarity(result.mask > tracker.config.mask_threshold, truth))
        box_j.append(region_similarity(box_mask(result.box, truth.shape), truth))
        assert result.polygon.shape == (4, 2)
    assert np.mean(mask_j) > np.mean(box_j) + 0.05
    assert np.mean(mask_j) > 0.5
