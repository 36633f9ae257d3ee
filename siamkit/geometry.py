"""Bounding-box geometry: format conversions, vectorised IoU, centre error, clipping, checks.

Boxes are float arrays whose last axis has 4 values. Public boundaries use ``xywh``
(0-based top-left corner, width, height); ``xyxy`` is (x1, y1, x2, y2) with ``x2 = x + w``
(continuous coordinates, no +1); ``cxcywh`` is centre and size. Functions accept numpy
arrays or torch tensors and return the same kind.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from siamkit.errors import BoxError

Array = Any  # numpy.ndarray or torch.Tensor


def _stack(parts: list[Array], like: Array) -> Array:
    if isinstance(like, np.ndarray):
        return np.stack(parts, axis=-1)
    import torch

    return torch.stack(parts, dim=-1)


def _as_array(boxes: Array) -> Array:
    if isinstance(boxes, np.ndarray):
        return boxes.astype(np.float64, copy=False) if boxes.dtype.kind in "iub" else boxes
    if type(boxes).__module__.startswith("torch"):
        return boxes if boxes.is_floating_point() else boxes.float()
    return np.asarray(boxes, dtype=np.float64)


def xywh_to_xyxy(boxes: Array) -> Array:
    b = _as_array(boxes)
    x, y, w, h = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return _stack([x, y, x + w, y + h], b)


def xyxy_to_xywh(boxes: Array) -> Array:
    b = _as_array(boxes)
    x1, y1, x2, y2 = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return _stack([x1, y1, x2 - x1, y2 - y1], b)


def xywh_to_cxcywh(boxes: Array) -> Array:
    b = _as_array(boxes)
    x, y, w, h = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return _stack([x + w / 2, y + h / 2, w, h], b)


def cxcywh_to_xywh(boxes: Array) -> Array:
    b = _as_array(boxes)
    cx, cy, w, h = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return _stack([cx - w / 2, cy - h / 2, w, h], b)


def xyxy_to_cxcywh(boxes: Array) -> Array:
    return xywh_to_cxcywh(xyxy_to_xywh(boxes))


def cxcywh_to_xyxy(boxes: Array) -> Array:
    return xywh_to_xyxy(cxcywh_to_xywh(boxes))


def convert(boxes: Array, src: str, dst: str) -> Array:
    """Convert between ``"xywh"``, ``"xyxy"`` and ``"cxcywh"``."""
    table = {
        ("xywh", "xyxy"): xywh_to_xyxy,
        ("xyxy", "xywh"): xyxy_to_xywh,
        ("xywh", "cxcywh"): xywh_to_cxcywh,
        ("cxcywh", "xywh"): cxcywh_to_xywh,
        ("xyxy", "cxcywh"): xyxy_to_cxcywh,
        ("cxcywh", "xyxy"): cxcywh_to_xyxy,
    }
    if src == dst:
        return _as_array(boxes)
    if (src, dst) not in table:
        raise BoxError(f"Unknown box format conversion {src!r} → {dst!r}.", hint="Use xywh, xyxy or cxcywh.")
    return table[(src, dst)](boxes)


def iou(a: Array, b: Array, fmt: str = "xywh") -> Array:
    """Element-wise IoU of two broadcastable box arrays (0 where the union is empty or NaN)."""
    a = convert(a, fmt, "xyxy")
    b = convert(b, fmt, "xyxy")
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        lib_max, lib_min = np.maximum, np.minimum
        clamp0 = lambda t: np.clip(t, 0, None)  # noqa: E731
    else:
        import torch

        lib_max, lib_min = torch.maximum, torch.minimum
        clamp0 = lambda t: t.clamp(min=0)  # noqa: E731
    iw = clamp0(lib_min(a[..., 2], b[..., 2]) - lib_max(a[..., 0], b[..., 0]))
    ih = clamp0(lib_min(a[..., 3], b[..., 3]) - lib_max(a[..., 1], b[..., 1]))
    inter = iw * ih
    area_a = clamp0(a[..., 2] - a[..., 0]) * clamp0(a[..., 3] - a[..., 1])
    area_b = clamp0(b[..., 2] - b[..., 0]) * clamp0(b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    if isinstance(union, np.ndarray) or np.isscalar(union):
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
        return np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0)
    import torch

    out = torch.where(union > 0, inter / torch.where(union > 0, union, torch.ones_like(union)), 0.0)
    return torch.nan_to_num(out, nan=0.0).clamp(0.0, 1.0)


def pairwise_iou(a: Array, b: Array, fmt: str = "xywh") -> Array:
    """IoU of every box in ``a`` (N×4) with every box in ``b`` (M×4): an N×M matrix."""
    return iou(a[:, None, :], b[None, :, :], fmt=fmt)


def centre_error(a: Array, b: Array, fmt: str = "xywh") -> Array:
    """Euclidean distance between box centres, element-wise."""
    ca = convert(a, fmt, "cxcywh")
    cb = convert(b, fmt, "cxcywh")
    d = ca[..., :2] - cb[..., :2]
    return (d**2).sum(-1) ** 0.5


def clip_boxes(boxes: Array, width: float, height: float, fmt: str = "xywh") -> Array:
    """Clip boxes to the image ``[0, width] × [0, height]`` (result may have zero size)."""
    b = convert(boxes, fmt, "xyxy")
    if isinstance(b, np.ndarray):
        x1 = np.clip(b[..., 0], 0, width)
        y1 = np.clip(b[..., 1], 0, height)
        x2 = np.clip(b[..., 2], 0, width)
        y2 = np.clip(b[..., 3], 0, height)
    else:
        x1, y1 = b[..., 0].clamp(0, width), b[..., 1].clamp(0, height)
        x2, y2 = b[..., 2].clamp(0, width), b[..., 3].clamp(0, height)
    return convert(_stack([x1, y1, x2, y2], b), "xyxy", fmt)


def is_valid(boxes: Array, fmt: str = "xywh") -> np.ndarray:
    """Boolean mask: finite values and positive width and height."""
    b = np.asarray(convert(boxes, fmt, "xywh"), dtype=np.float64)
    return np.isfinite(b).all(-1) & (b[..., 2] > 0) & (b[..., 3] > 0)


def check_box(box: Any, image_size: tuple[int, int] | None = None, name: str = "box") -> np.ndarray:
    """Validate one ``xywh`` box and return it as a float64 array of 4 values.

    Raises :class:`BoxError` when the box has the wrong length, holds NaN/inf, has zero or
    negative size, or (when ``image_size=(width, height)`` is given) lies entirely outside
    the image or is larger than it.
    """
    try:
        b = np.asarray(box, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise BoxError(f"The {name} {box!r} is not four numbers.", hint="Give it as x,y,w,h.") from None
    if b.size != 4:
        raise BoxError(f"The {name} must have 4 values (x, y, w, h), got {b.size}.", hint="Give it as x,y,w,h.")
    if not np.isfinite(b).all():
        raise BoxError(f"The {name} {b.tolist()} contains NaN or infinity.", hint="Give finite numbers.")
    if b[2] <= 0 or b[3] <= 0:
        raise BoxError(
            f"The {name} {b.tolist()} has zero or negative size.",
            hint="Width and height must be positive (format x,y,w,h).",
        )
    if image_size is not None:
        width, height = image_size
        if b[0] >= width or b[1] >= height or b[0] + b[2] <= 0 or b[1] + b[3] <= 0:
            raise BoxError(
                f"The {name} {b.tolist()} lies entirely outside the {width}×{height} image.",
                hint="Use 0-based pixel coordinates x,y,w,h inside the first frame.",
            )
        # Allocation bound: a tracker's crop grows with the box (a 3000 px box in a small frame asked
        # for 2 GB), so a box is at most the frame's size; with the check above every coordinate is
        # then within one frame size of the image, and a crop at most ~(4 x the longer side)^2 pixels.
        if b[2] > width or b[3] > height:
            raise BoxError(
                f"The {name} {b.tolist()} is larger than the {width}×{height} image.",
                hint="Width and height must be at most the frame's width and height.",
            )
    return b
