"""BatchedTracker: N targets in one batched forward equal N independent single-target trackers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from conftest import PUBLISHED_PRESETS, shared_path
from standins import standin_tracker

from siamkit.errors import BoxError, FrameError, TrackerStateError
from siamkit.trackers import create_tracker
from siamkit.trackers.engine import BatchedTracker

TINY_R50 = {"base_width": 8, "blocks": [1, 1, 1, 1], "neck_channels": [16, 16, 16]}


def clip(name: str, n: int):
    seq = shared_path("tracking", name)
    gt = np.loadtxt(seq / "groundtruth_rect.txt", delimiter=",")
    frames = [cv2.imread(str(seq / "img" / f"{i:04d}.jpg")) for i in range(1, n + 1)]
    box = gt[0].copy()
    box[:2] -= 1
    return frames, box


def singles(make, frames_per_target, boxes):
    out = []
    for frames, box in zip(frames_per_target, boxes, strict=True):
        t = make()
        t.init(frames[0], box)
        out.append([t.track(f).box for f in frames[1:]])
    return np.array(out)  # N × T × 4


@pytest.mark.parametrize("name", ["siamrpnpp_r50", "siamban", "siamfc", "dasiamrpn"])
def test_many_targets_in_one_video_equal_single_trackers(name):
    frames, box = clip("Crossing", 4 if name == "siamfc" else 6)
    boxes = np.array([box, [40.0, 60.0, 30.0, 40.0], [250.0, 100.0, 60.0, 25.0], [2.0, 150.0, 20.0, 80.0]])
    opts = {"long_term": True, "confidence_low": 0.55, "confidence_high": 0.6} if name == "dasiamrpn" else {}
    ref = singles(lambda: standin_tracker(name, **opts), [frames] * len(boxes), boxes)
    bt = BatchedTracker(standin_tracker(name, **opts))
    ids = bt.add(frames[0], boxes)
    assert ids == [0, 1, 2, 3]
    got = np.array([[r.box for r in bt.track(f)] for f in frames[1:]]).transpose(1, 0, 2)
    np.testing.assert_allclose(got, ref, atol=1e-3)


def test_targets_in_videos_of_different_sizes_equal_single_trackers():
    a, box_a = clip("Crossing", 5)  # 360×240
    b, box_b = clip("uav_boat1", 5)  # aerial, other size
    assert a[0].shape != b[0].shape
    make = lambda: standin_tracker("siamrpnpp_r50")  # noqa: E731
    ref = singles(make, [a, b, a], [box_a, box_b, box_a + [5, 5, 0, 0]])
    bt = BatchedTracker(make())
    bt.add([a[0], b[0]], [box_a, box_b, box_a + [5, 5, 0, 0]], frame_index=[0, 1, 0])
    got = np.array(
        [[r.box for r in bt.track([fa, fb], frame_index=[0, 1, 0])] for fa, fb in zip(a[1:], b[1:], strict=True)]
    )
    np.testing.assert_allclose(got.transpose(1, 0, 2), ref, atol=1e-3)


@pytest.mark.parametrize("name", ["siamban", "siammask", "siamban_acm"])
def test_real_model_batched_equals_single(name):
    frames, box = clip("Crossing", 4)
    boxes = np.array([box, [100.0, 50.0, 40.0, 40.0]])
    options = {"base_width": 8, "blocks": [1, 1, 1, 1], "hidden": 16} if name == "siammask" else TINY_R50

    def make():
        torch.manual_seed(0)
        return create_tracker(name, device="cpu", model_options=options, preset=PUBLISHED_PRESETS.get(name))

    ref = singles(make, [frames] * 2, boxes)
    bt = BatchedTracker(make())
    bt.add(frames[0], boxes)
    results = [bt.track(f) for f in frames[1:]]
    got = np.array([[r.box for r in step] for step in results]).transpose(1, 0, 2)
    np.testing.assert_allclose(got, ref, atol=1e-3)
    if name == "siammask":
        assert all(r.polygon.shape == (4, 2) and r.mask.shape == frames[0].shape[:2] for r in results[-1])


def test_add_and_remove_targets_mid_sequence():
    frames, box = clip("Crossing", 5)
    other = np.array([40.0, 60.0, 30.0, 40.0])
    bt = BatchedTracker(standin_tracker("siamban"))
    (first,) = bt.add(frames[0], box)
    r1 = bt.track(frames[1])
    (second,) = bt.add(frames[1], other)
    assert bt.ids == [first, second]
    r2 = bt.track(frames[2])
    bt.remove([first])
    r3 = bt.track(frames[3])
    assert len(r1) == 1 and len(r2) == 2 and len(r3) == 1
    # The second target behaves as a single tracker started on frame 1.
    single = standin_tracker("siamban")
    single.init(frames[1], other)
    np.testing.assert_allclose(single.track(frames[2]).box, r2[1].box, atol=1e-3)
    np.testing.assert_allclose(single.track(frames[3]).box, r3[0].box, atol=1e-3)


def test_batched_input_errors():
    frames, box = clip("Crossing", 2)
    bt = BatchedTracker(standin_tracker("siamban"))
    with pytest.raises(TrackerStateError):
        bt.track(frames[1])
    with pytest.raises(BoxError):
        bt.add(frames[0], [[1, 2, 3]])
    with pytest.raises(BoxError):
        bt.add(frames[0], [box, [1000, 1000, 5, 5]])
    with pytest.raises(FrameError):
        bt.add([frames[0], frames[0]], [box, box, box])  # which frame for which box?
    bt.add(frames[0], [box, box])
    with pytest.raises(FrameError):
        bt.track(frames[1][:100])
    with pytest.raises(FrameError):
        bt.track([frames[1]], frame_index=[0, 3])
    with pytest.raises(TrackerStateError):
        bt.remove([42])
