"""Video object segmentation scores of a mask-producing tracker (SiamMask): DAVIS's J and F.

* **J** (region similarity): the IoU of the predicted and the true object mask; two empty masks agree (1).
* **F** (contour accuracy): the F-measure of the two masks' boundary pixels, a boundary pixel counting as found
  when the other boundary passes within ``ceil(0.008 · image diagonal)`` pixels (DAVIS's tolerance).

A sequence is tracked from its first frame's box; frames 2…N are scored (the first frame is given). The tracker's
mask is a probability image, so one run scores every threshold in ``thresholds`` — the threshold is a tracker
setting, chosen on validation videos like the others.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from siamkit.errors import DataError
from siamkit.utils.progress import progress

__all__ = ["boundary_f", "boundary_pixels", "box_mask", "region_similarity", "score_mask_sequence", "sequence_masks"]


def region_similarity(pred: np.ndarray, truth: np.ndarray) -> float:
    """J: IoU of two boolean masks (1 when both are empty)."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    union = np.logical_or(pred, truth).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, truth).sum() / union)


def boundary_pixels(mask: np.ndarray) -> np.ndarray:
    """The mask's pixels that touch the background (4-neighbourhood, the image border counts as background)."""
    m = np.pad(np.asarray(mask, bool), 1)
    inner = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    return m[1:-1, 1:-1] & ~inner


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def boundary_f(pred: np.ndarray, truth: np.ndarray, tolerance: float = 0.008) -> float:
    """F: boundary F-measure with a match distance of ``ceil(tolerance · diagonal)`` pixels (1 when both are
    empty, 0 when only one is)."""
    pred_b, truth_b = boundary_pixels(pred), boundary_pixels(truth)
    if not pred_b.any() and not truth_b.any():
        return 1.0
    if not pred_b.any() or not truth_b.any():
        return 0.0
    height, width = pred_b.shape
    disk = _disk(max(1, math.ceil(tolerance * math.hypot(height, width))))
    truth_near = cv2.dilate(truth_b.astype(np.uint8), disk).astype(bool)
    pred_near = cv2.dilate(pred_b.astype(np.uint8), disk).astype(bool)
    precision = (pred_b & truth_near).sum() / pred_b.sum()
    recall = (truth_b & pred_near).sum() / truth_b.sum()
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


def box_mask(box: Sequence[float], shape: tuple[int, int]) -> np.ndarray:
    """The axis-aligned box (x, y, w, h) filled as a mask — the pixels whose centres (i + 0.5) lie inside it;
    what a box-only tracker would answer."""
    height, width = shape
    x, y, w, h = (float(v) for v in box)
    cols = np.arange(width)
    rows = np.arange(height)
    inside_x = (cols + 0.5 > x) & (cols + 0.5 < x + w)
    inside_y = (rows + 0.5 > y) & (rows + 0.5 < y + h)
    return inside_y[:, None] & inside_x[None, :]


def sequence_masks(seq: Any) -> list[Path]:
    """The ground-truth mask files of a ``<seq>/img`` sequence (``<seq>/mask/NNNN.png``), or a clear error."""
    from siamkit.data.pairs import mask_paths

    paths = mask_paths(seq.frame_paths or [])
    if paths is None or any(p is None for p in paths):
        raise DataError(f"Sequence {seq.name} has no mask for every frame.",
                        hint="Mask scores need <seq>/mask/NNNN.png beside <seq>/img/NNNN.jpg (the DAVIS sequences).")
    return paths


def score_mask_sequence(tracker: Any, seq: Any, thresholds: Sequence[float]) -> dict[str, Any]:
    """Track ``seq`` from its first box; mean J, F and J&F over frames 2…N for each mask threshold, and the J of
    the tracker's own box filled as a mask (``box_J``: what the mask adds over the box)."""
    masks = sequence_masks(seq)
    count = len(masks) - 1
    j = np.zeros((len(thresholds), count))
    f = np.zeros_like(j)
    box_j = np.zeros(count)
    frames = progress(seq.frames(0), total=count + 1, desc=seq.name, unit="frame", leave=False)
    for i, frame in enumerate(frames):
        if i == 0:
            tracker.init(frame, seq.init_box)
            continue
        result = tracker.track(frame)
        if result.mask is None:
            raise DataError(f"{type(tracker).__name__} gives no masks.", hint="Score a SiamMask tracker.")
        truth = cv2.imread(str(masks[i]), cv2.IMREAD_GRAYSCALE)
        if truth is None:
            raise DataError(f"Cannot read the mask {masks[i]}.")
        truth = truth > 127
        box_j[i - 1] = region_similarity(box_mask(result.box, truth.shape), truth)
        for t, threshold in enumerate(thresholds):
            pred = result.mask > threshold
            j[t, i - 1] = region_similarity(pred, truth)
            f[t, i - 1] = boundary_f(pred, truth)
    return {
        "sequence": seq.name,
        "frames": count,
        "thresholds": [float(t) for t in thresholds],
        "J": [float(v) for v in j.mean(1)],
        "F": [float(v) for v in f.mean(1)],
        "JF": [float(v) for v in (j.mean(1) + f.mean(1)) / 2],
        "box_J": float(box_j.mean()),
    }
