"""OpenCV's trackers wrapped in siamkit's :class:`~siamkit.trackers.base.Tracker` protocol.

Registered names: ``opencv:csrt``, ``opencv:kcf`` (recovering variant, ``detect_thresh=0``),
``opencv:kcf-sticky`` (OpenCV defaults), ``opencv:mil`` and ``opencv:nano`` (``cv2.TrackerNano``
with the NanoTrack v2 ONNX pair). They are peers for side-by-side benchmarks, not Siamese
trackers of siamkit.

Failure handling: when OpenCV's ``update`` returns ``ok=False`` or an empty rectangle, the
wrapper keeps the previous box, reports score 0 and counts it in ``failed_updates``.

KCF's failure is (nearly) *sticky*: with the default ``detect_thresh`` (0.5), once an update
fails OpenCV returns ``(False, (0, 0, 0, 0))`` and on the shared clips it stays failed for the
rest of the clip in 7 of 10 failing clips (measured with OpenCV 5.0.0; it recovered a few times on
MotorRolling, Tiger1 and vot_car1 when the target came back to the old position). So
``opencv:kcf`` sets ``detect_thresh=0`` (the "KCF_thr0" baseline): ``update`` always reports
its best peak and tracking goes on. That variant can still get stuck when its box drifts out
of the frame (OpenCV then returns ``(True, (0, 0, 0, 0))``, seen on MotorRolling).
``opencv:kcf-sticky`` keeps OpenCV's defaults for reference.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from siamkit.config import TRACKERS
from siamkit.errors import ConfigError, NotAvailableError
from siamkit.trackers.base import Tracker, TrackResult

NANOTRACK_FILES = ("nanotrack_backbone_sim.onnx", "nanotrack_head_sim.onnx")
# Relative to the repository root (siamkit/trackers/peers.py → parents[2]); see ../shared/data/README.md.
_DEFAULT_NANOTRACK_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "peers" / "nanotrack_v2"


def _cv2():
    import cv2

    return cv2


def _require(attr: str) -> Any:
    cv2 = _cv2()
    factory = getattr(cv2, attr, None)
    if factory is None:
        raise NotAvailableError(
            f"This OpenCV build ({cv2.__version__}) has no cv2.{attr}.",
            hint="CSRT and KCF need opencv-contrib-python-headless (not opencv-python-headless).",
        )
    return factory


def _int_rect(box: np.ndarray, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Round an xywh box to an integer rectangle inside the image (OpenCV trackers need that)."""
    width, height = size
    x1 = int(np.clip(np.floor(box[0]), 0, width - 1))
    y1 = int(np.clip(np.floor(box[1]), 0, height - 1))
    x2 = int(np.clip(np.ceil(box[0] + box[2]), x1 + 1, width))
    y2 = int(np.clip(np.ceil(box[1] + box[3]), y1 + 1, height))
    return x1, y1, x2 - x1, y2 - y1


class OpenCVTracker(Tracker):
    """Wrap any ``cv2.Tracker`` built by ``factory()``; keeps the last box when an update fails."""

    def __init__(self, name: str, factory, with_score: bool = False):
        super().__init__()
        self.name = name
        self._factory = factory
        self._with_score = with_score
        self._tracker = None
        self._box = np.zeros(4)
        self.failed_updates = 0

    def _init(self, frame: Any, box: np.ndarray) -> None:
        frame = np.ascontiguousarray(np.asarray(frame))
        self._tracker = self._factory()
        self._tracker.init(frame, _int_rect(box, self._frame_size))
        self._box = np.asarray(box, dtype=np.float64).copy()
        self.failed_updates = 0

    def _track(self, frame: Any) -> TrackResult:
        frame = np.ascontiguousarray(np.asarray(frame))
        ok, rect = self._tracker.update(frame)
        rect = np.asarray(rect, dtype=np.float64)
        if ok and rect[2] > 0 and rect[3] > 0:
            self._box = rect
            score = float(self._tracker.getTrackingScore()) if self._with_score else 1.0
        else:
            self.failed_updates += 1
            score = 0.0
        return TrackResult(box=self._box.copy(), score=score, extra={"ok": bool(ok)})


def _no_weights(name: str, weights: str | None, options: dict) -> None:
    if weights is not None:
        raise ConfigError(f"The peer tracker {name!r} takes no weights (got {weights!r}).", hint="Drop --weights.")
    if options:
        raise ConfigError(f"Unknown options for {name!r}: {sorted(options)}.")


@TRACKERS.register("opencv:csrt")
def build_csrt(weights: str | None = None, device: str | None = None, **options: Any) -> OpenCVTracker:
    """OpenCV CSRT (discriminative correlation filter with channel and spatial reliability)."""
    _no_weights("opencv:csrt", weights, options)
    factory = _require("TrackerCSRT_create")
    return OpenCVTracker("opencv:csrt", factory)


def _kcf_factory(detect_thresh: float | None):
    create = _require("TrackerKCF_create")
    cv2 = _cv2()

    def factory():
        if detect_thresh is None:
            return create()
        params = cv2.TrackerKCF_Params()
        params.detect_thresh = float(detect_thresh)
        return create(params)

    return factory


@TRACKERS.register("opencv:kcf")
def build_kcf(weights: str | None = None, device: str | None = None, **options: Any) -> OpenCVTracker:
    """OpenCV KCF with ``detect_thresh=0`` (option ``detect_thresh``), so it never gets stuck in failure."""
    thresh = options.pop("detect_thresh", 0.0)
    _no_weights("opencv:kcf", weights, options)
    return OpenCVTracker("opencv:kcf", _kcf_factory(thresh))


@TRACKERS.register("opencv:kcf-sticky")
def build_kcf_sticky(weights: str | None = None, device: str | None = None, **options: Any) -> OpenCVTracker:
    """OpenCV KCF with its default parameters: once an update fails it fails forever (kept for reference)."""
    _no_weights("opencv:kcf-sticky", weights, options)
    return OpenCVTracker("opencv:kcf-sticky", _kcf_factory(None))


@TRACKERS.register("opencv:mil")
def build_mil(weights: str | None = None, device: str | None = None, **options: Any) -> OpenCVTracker:
    """OpenCV MIL (multiple-instance learning, online boosting)."""
    _no_weights("opencv:mil", weights, options)
    return OpenCVTracker("opencv:mil", _require("TrackerMIL_create"))


def nanotrack_dir(path: str | os.PathLike | None = None) -> Path:
    """Folder with the NanoTrack v2 ONNX pair: ``path``, else ``$SIAMKIT_NANOTRACK_DIR``, else ../shared/data."""
    chosen = Path(path or os.environ.get("SIAMKIT_NANOTRACK_DIR") or _DEFAULT_NANOTRACK_DIR)
    missing = [f for f in NANOTRACK_FILES if not (chosen / f).is_file()]
    if missing:
        raise NotAvailableError(
            f"NanoTrack v2 ONNX files not found in {chosen}: missing {', '.join(missing)}.",
            hint="Pass model_dir=… (CLI: --option model_dir=…) or set SIAMKIT_NANOTRACK_DIR to the folder "
            f"holding {' and '.join(NANOTRACK_FILES)}.",
        )
    return chosen


@TRACKERS.register("opencv:nano")
def build_nano(weights: str | None = None, device: str | None = None, **options: Any) -> OpenCVTracker:
    """``cv2.TrackerNano`` running the NanoTrack v2 ONNX pair (``weights`` or ``model_dir`` = their folder).

    Note: OpenCV's Nano differs from the PyTorch NanoTrack (RGB input, other window/penalty
    constants); see the tracking reference §12.
    """
    folder = nanotrack_dir(options.pop("model_dir", None) or weights)
    if options:
        raise ConfigError(f"Unknown options for 'opencv:nano': {sorted(options)}.")
    cv2 = _cv2()
    create = _require("TrackerNano_create")

    def factory():
        params = cv2.TrackerNano_Params()
        params.backbone = str(folder / NANOTRACK_FILES[0])
        params.neckhead = str(folder / NANOTRACK_FILES[1])
        return create(params)

    return OpenCVTracker("opencv:nano", factory, with_score=True)


PEERS = ("opencv:csrt", "opencv:kcf", "opencv:mil", "opencv:nano")
