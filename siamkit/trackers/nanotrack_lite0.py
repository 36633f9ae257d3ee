"""The NanoTrack-Lite0 tracker: NanoTrack's test-time procedure over siamkit's own Lite0 network.

The network (:mod:`siamkit.nn.nanotrack_lite0`) is trained here (``configs/nanotrack_lite0_train.yaml``) and
ships in the zoo as ``nanotrack_lite0``; its sidecar's ``meta.tracker_settings`` holds the window influence, penalty
and learning rate picked on the validation videos. Per frame it runs exactly
:class:`~siamkit.trackers.nanotrack.NanoTrackTracker` (NanoTrack's point-based core of the engine, so it
batches like the others: :class:`~siamkit.trackers.engine.BatchedTracker`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from siamkit.config import TRACKERS
from siamkit.errors import ConfigError
from siamkit.trackers.nanotrack import NanoTrackConfig, NanoTrackTracker
from siamkit.utils.device import resolve_device

ZOO_NAME = "nanotrack_lite0"


@TRACKERS.register("nanotrack_lite0")
def build_nanotrack_lite0(weights: str | None = None, device: Any = None, **options: Any) -> NanoTrackTracker:
    """The shipped NanoTrack-Lite0 (or ``weights``: a zoo name or ``.safetensors`` of that architecture)."""
    from siamkit import zoo

    known = {f.name for f in dataclasses.fields(NanoTrackConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"Unknown option(s) for nanotrack_lite0: {', '.join(unknown)}.",
                          hint=f"Known: {', '.join(sorted(known))}.")
    device = resolve_device(device)
    model, entry = zoo.load_model(weights or ZOO_NAME, device=device)
    if entry.architecture != "nanotrack_lite0":
        raise ConfigError(f"{weights} holds a {entry.architecture!r} model, not 'nanotrack_lite0'.")
    settings = {k: v for k, v in dict(entry.meta.get("tracker_settings") or {}).items() if k in known}
    # Settings the sidecar does not hold take preset v2 of configs/nanotrack.yaml (NanoTrackConfig's PUBLISHED fields).
    return NanoTrackTracker(model, NanoTrackConfig(**{**settings, **options}), device=device)
