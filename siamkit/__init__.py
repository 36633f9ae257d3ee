"""siamkit: Siamese networks for similarity learning, verification, retrieval and visual object tracking.

The public API is re-exported here and imported lazily, so ``import siamkit`` stays fast::

    import siamkit
    tracker = siamkit.create_tracker("siamfc")
    tracker.init(first_frame, (x, y, w, h))
    result = tracker.track(next_frame)        # result.box, result.score
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "create_tracker": "siamkit.trackers",
    "available_trackers": "siamkit.trackers",
    "Tracker": "siamkit.trackers.base",
    "TrackResult": "siamkit.trackers.base",
    "BatchedTracker": "siamkit.trackers.engine",
    "track_source": "siamkit.trackers.session",
    "load_model": "siamkit.zoo",
    "save_model": "siamkit.zoo",
    "list_models": "siamkit.zoo",
    "open_dataset": "siamkit.data.benchmarks",
    "run_evaluation": "siamkit.eval.tracking.runner",
    "make_report": "siamkit.eval.tracking.report",
    "Gallery": "siamkit.index",
    "export_tracker": "siamkit.export",
    "SiamkitError": "siamkit.errors",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'siamkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
