"""The shipped light SiamBAN: loads by name, tracks a shared clip, and its sidecar carries the recipe."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_path

from siamkit import zoo
from siamkit.geometry import iou
from siamkit.trackers import create_tracker

FRAMES = 30


def _clip(name: str):
    seq = shared_path("tracking", name)
    import cv2

    gt = np.loadtxt(seq / "groundtruth_rect.txt", delimiter=",").reshape(-1, 4)[:FRAMES]
    gt[:, :2] -= 1
    frames = [cv2.imread(str(p)) for p in sorted((seq / "img").glob("*.jpg"))[:FRAMES]]
    return frames, gt


def test_shipped_entry_is_small_and_reproducible():
    entry = zoo.resolve("siamban_light")
    assert entry.architecture == "siamban_alexnet" and entry.meta["tracker"] == "siamban_light"
    assert entry.weights.stat().st_size < 1_000_000
    recipe = entry.meta["recipe"]
    assert recipe["config"].endswith("siamban_light_cpu_train.yaml") and recipe["steps"] > 0
    assert set(entry.meta["held_out"]).isdisjoint({"Biker", "Human3", "MotorRolling", "Soccer", "Tiger1", "vot_car1"})


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_shipped_light_tracker_follows_a_training_clip(backend):
    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime")
    frames, gt = _clip("Tiger1")
    tracker = create_tracker("siamban_light", device="cpu", backend=backend)  # no weights: the shipped ones
    tracker.init(frames[0], gt[0])
    boxes = np.array([tracker.track(f).box for f in frames[1:]])
    overlap = np.mean([float(iou(b, g)) for b, g in zip(boxes, gt[1:], strict=True)])
    assert overlap > 0.5, overlap
