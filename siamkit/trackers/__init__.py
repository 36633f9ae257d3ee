"""Trackers: every Siamese tracker of siamkit and the wrapped peers, created by name."""

from __future__ import annotations

from typing import Any

from siamkit.config import TRACKERS
from siamkit.trackers.base import Tracker, TrackResult
from siamkit.utils.imports import import_available

# Modules that register trackers in ``TRACKERS`` when imported. A module missing from this
# build is skipped, so the registry lists exactly what is available.
_TRACKER_MODULES = (
    "siamkit.trackers.siamfc",
    "siamkit.trackers.siamrpn",
    "siamkit.trackers.dasiamrpn",
    "siamkit.trackers.siammask",
    "siamkit.trackers.siamban",
    "siamkit.trackers.nanotrack",
    "siamkit.trackers.nanotrack_lite0",
    "siamkit.trackers.siamrpnpp_lite0",
    "siamkit.trackers.peers",
)


def _load_all() -> None:
    import_available(_TRACKER_MODULES)


def available_trackers() -> list[str]:
    """Names accepted by :func:`create_tracker`."""
    _load_all()
    return TRACKERS.names()


def usable_trackers() -> list[str]:
    """Trackers that can run meaningfully here: peers that load, and Siamese trackers with weights.

    A Siamese tracker counts when a zoo entry declares it (sidecar ``meta.tracker``).
    """
    from siamkit.zoo import list_models

    shipped = {str(e.meta.get("tracker")) for e in list_models() if e.meta.get("tracker")}
    usable = []
    for name in available_trackers():
        if name in shipped:
            usable.append(name)
        elif name.startswith("opencv:") or name == "nanotrack":  # need files found at run time
            try:
                create_tracker(name)
            except Exception:  # a peer that cannot load here is simply not offered
                continue
            usable.append(name)
    return usable


BACKENDS = ("torch", "onnxruntime")


def create_tracker(
    name: str,
    weights: str | None = None,
    device: str | None = None,
    backend: str = "torch",
    precision: str = "fp32",
    **options: Any,
) -> Tracker:
    """Create a tracker by registry name, e.g. ``create_tracker("siamfc", weights="siamfc.safetensors")``.

    ``weights`` is a zoo name or a local file; ``None`` uses the tracker's shipped default (or
    random initialisation where none ships, with a warning). ``device`` is ``"cpu"``,
    ``"cuda"``, ``"cuda:1"`` …; ``None`` picks CUDA when available. ``backend="onnxruntime"``
    runs the search branch in onnxruntime on the CPU, in ``precision`` ``"fp32"`` or ``"int8"``
    (see :mod:`siamkit.trackers.onnx_search`).
    """
    from siamkit.errors import ConfigError

    if backend not in BACKENDS:
        raise ConfigError(f"Unknown backend {backend!r}.", hint=f"Use one of: {', '.join(BACKENDS)}.")
    if backend == "torch" and precision != "fp32":
        raise ConfigError(f"precision {precision!r} needs backend='onnxruntime'.", hint="Or use precision='fp32'.")
    _load_all()
    if backend == "onnxruntime":
        from siamkit.trackers.onnx_search import use_onnxruntime

        device = "cpu" if device is None else device
        return use_onnxruntime(TRACKERS.build(name, weights=weights, device=device, **options), precision)
    return TRACKERS.build(name, weights=weights, device=device, **options)


__all__ = ["BACKENDS", "Tracker", "TrackResult", "create_tracker", "available_trackers", "usable_trackers"]
