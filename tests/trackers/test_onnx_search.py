"""use_onnxruntime: the search branch in onnxruntime keeps fp32 boxes and stays close in int8."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_fast import boxes_of, clip

from siamkit.errors import ConfigError
from siamkit.geometry import iou
from siamkit.trackers import create_tracker
from siamkit.trackers.fast import reset_tracker

pytest.importorskip("onnxruntime")
from siamkit.trackers.onnx_search import OrtSearch, use_onnxruntime  # noqa: E402

FRAMES = 12
TOL_PX = 1e-3  # fp32 in another runtime: float rounding only


@pytest.fixture(scope="module")
def shipped_siamfc():
    return create_tracker("siamfc", device="cpu")  # the shipped, trained SiamFC (3 scales: batch 3)


@pytest.fixture(scope="module")
def crossing():
    return clip("Crossing", FRAMES)


def test_fp32_keeps_the_pytorch_boxes(shipped_siamfc, crossing):
    frames, box = crossing
    ref = boxes_of(shipped_siamfc, frames, box)
    use_onnxruntime(shipped_siamfc, "fp32", calibration=(frames, box))
    try:
        assert isinstance(shipped_siamfc.model.search, OrtSearch)
        got = boxes_of(shipped_siamfc, frames, box)
    finally:
        reset_tracker(shipped_siamfc)
    assert "search" not in shipped_siamfc.model.__dict__
    np.testing.assert_allclose(got, ref, atol=TOL_PX)
    assert np.abs(np.diff(ref[:, :2], axis=0)).max() > 0.5  # the target moves: the comparison is not trivial


def test_int8_calibrated_on_the_demo_clip_stays_on_target(shipped_siamfc, crossing):
    """int8 changes the network's outputs: boxes need not be equal, but must still overlap the fp32 ones."""
    frames, box = crossing
    ref = boxes_of(shipped_siamfc, frames, box)
    use_onnxruntime(shipped_siamfc, "int8")  # default calibration: the built-in demo clip, not this one
    try:
        assert shipped_siamfc.model.search.precision == "int8"
        got = boxes_of(shipped_siamfc, frames, box)
    finally:
        reset_tracker(shipped_siamfc)
    overlaps = [float(iou(a, b)) for a, b in zip(got, ref, strict=True)]
    assert np.mean(overlaps) > 0.8, overlaps


def test_bad_requests_are_rejected(shipped_siamfc):
    with pytest.raises(ConfigError, match="precision"):
        use_onnxruntime(shipped_siamfc, "fp8")
    with pytest.raises(ConfigError, match="no PyTorch model"):
        use_onnxruntime(create_tracker("opencv:kcf"), "fp32")
    frames, box = clip("Crossing", 1)
    with pytest.raises(ConfigError, match="two frames"):
        use_onnxruntime(shipped_siamfc, "fp32", calibration=(frames, box))


def test_create_tracker_offers_the_backend():
    tracker = create_tracker("siamfc", backend="onnxruntime")
    assert isinstance(tracker.model.search, OrtSearch) and tracker.model.search.precision == "fp32"
    with pytest.raises(ConfigError, match="backend"):
        create_tracker("siamfc", backend="tensorrt")
    with pytest.raises(ConfigError, match="needs backend='onnxruntime'"):
        create_tracker("siamfc", precision="int8")


def test_a_search_size_other_than_the_exported_one_gets_its_own_graph():
    """DaSiamRPN searches small targets at 287 px (adaptive search): onnxruntime exports that size when it comes."""
    frame = (np.random.default_rng(3).uniform(0, 255, (480, 640, 3))).astype(np.uint8)
    box = (300, 200, 12, 14)  # under 0.4 % of the frame: the adaptive 287 px search
    boxes = []
    for backend in ("torch", "onnxruntime"):
        torch.manual_seed(0)
        tracker = create_tracker("dasiamrpn", weights="none", preset="lite0", device="cpu", backend=backend)
        tracker.init(frame, box)
        boxes.append([tracker.track(frame).box for _ in range(2)])
    np.testing.assert_allclose(boxes[1], boxes[0], atol=1e-3)
    assert sorted(tracker.model.search.sessions) == [255, 287]
