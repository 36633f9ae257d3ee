"""Box geometry: conversions, IoU, centre error, clipping and validity checks."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from siamkit.errors import BoxError
from siamkit.geometry import (
    centre_error,
    check_box,
    clip_boxes,
    convert,
    iou,
    is_valid,
    pairwise_iou,
)

coord = st.floats(-500, 500, allow_nan=False, width=32)
size = st.floats(0.5, 300, allow_nan=False, width=32)
boxes = st.tuples(coord, coord, size, size).map(lambda t: np.array(t, dtype=np.float64))


def brute_iou(a, b):
    """IoU by rasterising nothing: independent interval arithmetic in pure Python."""
    ax1, ay1, ax2, ay2 = a[0], a[1], a[0] + a[2], a[1] + a[3]
    bx1, by1, bx2, by2 = b[0], b[1], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(ax1, bx1))
    ih = max(0.0, min(ay2, by2) - max(ay1, by1))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


@given(boxes, boxes)
def test_iou_symmetric_bounded_and_matches_interval_arithmetic(a, b):
    value = iou(a, b)
    assert 0.0 <= value <= 1.0
    assert value == pytest.approx(iou(b, a), abs=1e-12)
    assert value == pytest.approx(brute_iou(a, b), abs=1e-9)


@given(boxes)
def test_iou_of_identical_boxes_is_one(a):
    assert iou(a, a) == pytest.approx(1.0)


@given(boxes)
def test_conversions_round_trip(a):
    for fmt in ("xyxy", "cxcywh"):
        back = convert(convert(a, "xywh", fmt), fmt, "xywh")
        np.testing.assert_allclose(back, a, atol=1e-9)
    np.testing.assert_allclose(convert(convert(a, "xywh", "xyxy"), "xyxy", "cxcywh"), convert(a, "xywh", "cxcywh"))


def test_known_values():
    a = np.array([0, 0, 10, 10.0])
    assert iou(a, np.array([5, 0, 10, 10.0])) == pytest.approx(1 / 3)
    assert iou(a, np.array([20, 20, 5, 5.0])) == 0.0
    np.testing.assert_allclose(convert(a, "xywh", "cxcywh"), [5, 5, 10, 10])
    assert centre_error(a, np.array([3, 4, 10, 10.0])) == pytest.approx(5.0)


def test_vectorised_and_torch_agree_with_numpy():
    rng = np.random.default_rng(0)
    a = np.abs(rng.normal(50, 20, (7, 4)))
    b = np.abs(rng.normal(50, 20, (5, 4)))
    m = pairwise_iou(a, b)
    assert m.shape == (7, 5)
    for i in range(7):
        for j in range(5):
            assert m[i, j] == pytest.approx(brute_iou(a[i], b[j]))
    t = pairwise_iou(torch.tensor(a), torch.tensor(b))
    assert isinstance(t, torch.Tensor)
    np.testing.assert_allclose(t.numpy(), m, atol=1e-12)


def test_iou_is_zero_not_nan_for_degenerate_boxes():
    assert iou(np.array([0, 0, 0, 0.0]), np.array([0, 0, 0, 0.0])) == 0.0
    assert iou(np.array([np.nan] * 4), np.array([0, 0, 1, 1.0])) == 0.0


def test_clip_and_validity():
    clipped = clip_boxes(np.array([[-5, -5, 20, 20], [90, 90, 20, 20.0]]), 100, 100)
    np.testing.assert_allclose(clipped, [[0, 0, 15, 15], [90, 90, 10, 10]])
    mask = is_valid(np.array([[0, 0, 1, 1], [0, 0, 0, 1], [np.nan, 0, 1, 1], [0, 0, -1, 2.0]]))
    assert mask.tolist() == [True, False, False, False]


@pytest.mark.parametrize(
    "box, match",
    [
        ([1, 2, 3], "4 values"),
        ([0, 0, np.nan, 4], "NaN"),
        ([0, 0, 0, 4], "zero or negative"),
        ([0, 0, -3, 4], "zero or negative"),
        ([200, 10, 5, 5], "outside"),
        ([-20, 10, 5, 5], "outside"),
        ("abc", "not four numbers"),
    ],
)
def test_check_box_rejects_bad_boxes_with_a_clear_message(box, match):
    with pytest.raises(BoxError, match=match):
        check_box(box, image_size=(100, 80))


def test_check_box_accepts_partly_outside_box():
    np.testing.assert_allclose(check_box([-5, -5, 20, 20], image_size=(100, 80)), [-5, -5, 20, 20])


@settings(max_examples=30)
@given(boxes)
def test_torch_conversion_matches_numpy(a):
    for fmt in ("xyxy", "cxcywh"):
        np.testing.assert_allclose(convert(torch.tensor(a), "xywh", fmt).numpy(), convert(a, "xywh", fmt))
