"""The tracker protocol: ``init(frame, box)`` then ``track(frame) → TrackResult``.

Frames are H×W×3 ``uint8`` arrays in BGR order (OpenCV's) or the same as a torch tensor.
Boxes are ``(x, y, w, h)``, 0-based float pixels. Every tracker — siamkit's own and the
wrapped peers — follows this protocol so that the evaluation toolkit, the CLI and the web page
can run any of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from siamkit.errors import FrameError, TrackerStateError
from siamkit.geometry import check_box


@dataclass
class TrackResult:
    """What a tracker returns for one frame.

    ``box`` is (x, y, w, h); ``score`` the tracker's confidence for it (raw best score).
    ``mask`` (H×W float in [0, 1]) and ``polygon`` (4×2 rotated box corners) are filled by
    trackers that segment (SiamMask); ``extra`` carries anything tracker-specific.
    """

    box: np.ndarray
    score: float
    mask: np.ndarray | None = None
    polygon: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def check_frame(frame: Any, name: str = "frame") -> tuple[int, int]:
    """Validate an H×W×3 uint8 frame (numpy or torch) and return its (width, height)."""
    shape = tuple(frame.shape) if hasattr(frame, "shape") else None
    dtype = getattr(frame, "dtype", None)
    if shape is None or len(shape) != 3 or shape[2] != 3:
        raise FrameError(
            f"The {name} must be an H×W×3 image, got shape {shape}.",
            hint="Pass a BGR uint8 image as returned by cv2.imread / cv2.VideoCapture.read.",
        )
    if str(dtype) not in ("uint8", "torch.uint8"):
        raise FrameError(
            f"The {name} must have dtype uint8, got {dtype}.",
            hint="Convert with frame.astype(numpy.uint8) after scaling values to 0–255.",
        )
    if shape[0] < 1 or shape[1] < 1:
        raise FrameError(f"The {name} is empty (shape {shape}).")
    return int(shape[1]), int(shape[0])


class Tracker(ABC):
    """Base class: validates input and enforces the init → track order.

    Subclasses implement :meth:`_init` and :meth:`_track`; inputs reaching them are checked.
    """

    name: str = "tracker"

    def __init__(self) -> None:
        self._initialised = False
        self._frame_size: tuple[int, int] | None = None

    def init(self, frame: Any, box: Any) -> None:
        """Start tracking the object in ``box`` (x, y, w, h) of ``frame``."""
        size = check_frame(frame, "first frame")
        checked = check_box(box, image_size=size, name="initial box")
        self._frame_size = size
        self._init(frame, checked)
        self._initialised = True

    def track(self, frame: Any) -> TrackResult:
        """Locate the object in the next frame."""
        if not self._initialised:
            raise TrackerStateError(
                f"{type(self).__name__}.track() was called before init().",
                hint="Call tracker.init(first_frame, box) first.",
            )
        size = check_frame(frame)
        if size != self._frame_size:
            raise FrameError(
                f"Frame size changed from {self._frame_size} to {size} within one sequence.",
                hint="All frames of a sequence must have the same size; call init() again for a new video.",
            )
        return self._track(frame)

    @abstractmethod
    def _init(self, frame: Any, box: np.ndarray) -> None: ...

    @abstractmethod
    def _track(self, frame: Any) -> TrackResult: ...
