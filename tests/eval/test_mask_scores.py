"""DAVIS's J and F for mask trackers, on hand-made masks and on a real DAVIS sequence."""

from __future__ import annotations

import math

import numpy as np
import pytest

from siamkit.data.pairs import mask_paths
from siamkit.eval.tracking.masks import boundary_f, boundary_pixels, box_mask, region_similarity


def square(top: int, left: int, size: int, shape=(200, 300)) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[top : top + size, left : left + size] = True
    return m


def test_region_similarity_is_iou():
    a, b = square(10, 10, 20), square(10, 20, 20)  # overlap 20×10
    assert region_similarity(a, b) == pytest.approx(200 / 600)
    assert region_similarity(a, a) == 1.0
    assert region_similarity(np.zeros((4, 4)), np.zeros((4, 4))) == 1.0
    assert region_similarity(a, np.zeros_like(a)) == 0.0


def test_boundary_pixels_ring():
    ring = boundary_pixels(square(10, 10, 5))
    assert ring.sum() == 16  # a 5×5 square: 25 − 9 inner pixels
    assert boundary_pixels(np.ones((3, 3), bool)).sum() == 8  # the image border is background


def test_boundary_f_tolerance():
    """DAVIS's tolerance is ceil(0.008 · diagonal): 3 px for 200×300; a shift within it is a perfect contour."""
    tolerance = math.ceil(0.008 * math.hypot(200, 300))
    assert tolerance == 3
    a = square(50, 50, 40)
    assert boundary_f(a, square(50, 50 + tolerance, 40)) == 1.0
    far = boundary_f(a, square(50, 50 + 20, 40))
    assert 0 < far < 0.6  # only the top and bottom edges' overlap still match
    assert boundary_f(a, np.zeros_like(a)) == 0.0
    assert boundary_f(np.zeros_like(a), np.zeros_like(a)) == 1.0


def test_box_mask_fills_the_pixels_inside():
    m = box_mask((2.0, 1.0, 3.0, 2.0), (5, 8))
    assert m.sum() == 6 and m[1:3, 2:5].all()


def test_davis_sequences_have_their_masks(shared_data):
    frames = sorted((shared_data / "tracking_train" / "davis_dog" / "img").glob("*.jpg"))
    masks = mask_paths(frames)
    assert masks is not None and len(masks) == len(frames) and all(m is not None for m in masks)
    assert masks[0].name == frames[0].stem + ".png"
    assert mask_paths(sorted((shared_data / "tracking_train" / "Dog1" / "img").glob("*.jpg"))) is None
