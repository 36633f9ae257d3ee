"""The demo clip: real photographs, smooth motion, and ground truth that is exactly where the object is."""

import cv2
import numpy as np
import pytest

from siamkit.data.synthetic import make_demo_clip, sample_photographs


@pytest.fixture(scope="module")
def clip():
    return make_demo_clip(num_frames=90, seed=3)


def test_clip_shape_and_smooth_boxes(clip):
    assert len(clip) == 90 and clip.boxes.shape == (90, 4)
    assert all(f.shape == (320, 480, 3) and f.dtype == np.uint8 for f in clip.frames)
    steps = np.abs(np.diff(clip.boxes, axis=0)).max()
    assert 0 < steps < 20  # the object moves, smoothly


def test_ground_truth_box_holds_the_object(clip):
    """Template matching finds the pasted object where the ground truth says, to about a pixel."""
    portrait = cv2.imread(str(sample_photographs()["grace_hopper"]))[40:330, 120:390]
    for i in (0, 45, 89):
        x, y, w, h = clip.boxes[i]
        template = cv2.resize(portrait, (int(round(w)), int(round(h))), interpolation=cv2.INTER_AREA)
        inner = template[int(0.1 * h) : int(0.9 * h), int(0.1 * w) : int(0.9 * w)]
        response = cv2.matchTemplate(clip.frames[i], inner, cv2.TM_CCOEFF_NORMED)
        _, peak, _, (px, py) = cv2.minMaxLoc(response)
        assert peak > 0.9
        assert abs(px - int(0.1 * w) - x) < 1.5 and abs(py - int(0.1 * h) - y) < 1.5


def test_same_seed_same_clip():
    a, b = make_demo_clip(num_frames=5, seed=1), make_demo_clip(num_frames=5, seed=1)
    assert np.array_equal(a.boxes, b.boxes)
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames, strict=True))
