"""Building a tracker: the registry of tracker modules, device, weights (shipped, zoo or imported),
published configurations (``configs/<tracker>.yaml`` presets), and :func:`create_tracker`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from siamkit.config import CONFIG_DIR, MODELS, TRACKERS, from_dict, load_yaml, preset_config
from siamkit.errors import ConfigError, WeightsError
from siamkit.importers.pysot_config import from_pysot
from siamkit.trackers.base import Tracker
from siamkit.trackers.engine import SiameseTracker
from siamkit.utils.device import resolve_device
from siamkit.utils.imports import import_available

log = logging.getLogger("siamkit")

RANDOM_WEIGHTS = "none"  # weights="none": a randomly initialised network, asked for explicitly
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".model", ".ckpt", ".tar")

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


def build_model(
    architecture: str,
    options: dict[str, Any],
    weights: str | Path | None,
    device: torch.device,
    importer: Callable[[str | Path, torch.nn.Module], torch.nn.Module] | None = None,
    tracker: str = "tracker",
) -> torch.nn.Module:
    """Build ``architecture`` and load ``weights`` (zoo name, .safetensors, or a third-party checkpoint).

    ``weights=None`` uses the weights shipped for this tracker (a zoo entry whose sidecar says
    ``meta.tracker: <tracker>``); where none ships it is an error, so that nobody tracks with a random
    network by accident. A random network is built only when asked for — ``weights="none"``
    (``--weights none``) or ``model_options`` that describe another network than any shipped one —
    and a warning says its boxes are meaningless.
    """
    from siamkit import zoo

    zoo._ensure_registered()
    if weights is None and not options:  # custom model options describe another network
        weights = shipped_weights(tracker, architecture)
        if weights is None:
            trained = sorted({str(e.meta["tracker"]) for e in zoo.list_models() if e.meta.get("tracker")})
            raise WeightsError(
                f"No trained weights ship for {tracker} ({architecture}).",
                hint=f"Pass --weights (a zoo name or a file), use a tracker with weights ({', '.join(trained)}), "
                     f"or --weights {RANDOM_WEIGHTS} for a randomly initialised network (meaningless boxes).",
            )
    if weights is None or str(weights).lower() == RANDOM_WEIGHTS:
        log.warning(
            "%s: no weights given, using a randomly initialised %s (boxes will be meaningless).",
            tracker,
            architecture,
        )
        model = MODELS.build(architecture, **options)
    else:
        path = Path(str(weights))
        if path.suffix.lower() in CHECKPOINT_SUFFIXES:
            if importer is None:
                raise WeightsError(
                    f"{path.name} looks like a third-party checkpoint, but {tracker} has no importer for it.",
                    hint="Convert it to a zoo model (.safetensors + .yaml) first.",
                )
            if not path.is_file():
                raise WeightsError(f"Weights file not found: {path}.")
            model = importer(path, MODELS.build(architecture, **options))
        else:
            model, entry = zoo.load_model(weights, device=None)
            if entry.architecture != architecture:
                raise WeightsError(
                    f"Weights {entry.name!r} are for {entry.architecture!r}, but {tracker} uses {architecture!r}.",
                    hint="Pick the tracker that matches the weights, or other weights.",
                )
    return model.eval().to(device)


def shipped_weights(tracker: str, architecture: str) -> str | None:
    """Name of the zoo entry shipped for ``tracker`` (and this architecture), if any."""
    from siamkit import zoo

    for entry in zoo.list_models():
        if entry.meta.get("tracker") == tracker and entry.architecture == architecture:
            return entry.name
    return None


def resolve_config(
    cls: type,
    tracker: str,
    config: Any = None,
    preset: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Any:
    """A tracker's frozen config: a dataclass, a YAML path, or the published default.

    A YAML file is either one config mapping or ``{default: NAME, presets: {NAME: {…}}}``
    (``configs/<tracker>.yaml`` holds every published configuration of that tracker).
    ``overrides`` replace single values (unknown names are rejected).
    """
    if isinstance(config, cls):
        cfg = config
    elif config is not None and not isinstance(config, (str, Path)):
        raise ConfigError(f"config must be a {cls.__name__} or a YAML path, got {type(config).__name__}.")
    else:
        path = Path(config) if config is not None else CONFIG_DIR / f"{tracker}.yaml"
        if config is None and not path.is_file():
            if preset is not None:
                raise ConfigError(f"Preset {preset!r} requested but {path} is missing.")
            cfg = cls()
        else:
            cfg = _from_file(cls, path, preset)
    if overrides:
        reject_unknown_options(cls, tracker, overrides)
        cfg = from_dict(cls, {**dataclasses.asdict(cfg), **overrides}, where=tracker)
    return cfg


def reject_unknown_options(cls: type, tracker: str, options: dict[str, Any]) -> None:
    """A clear error naming the valid options when ``options`` has a key that is no field of ``cls``."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise ConfigError(
            f"Unknown option(s) for {tracker}: {', '.join(unknown)}.",
            hint=f"Valid options: config, preset, {', '.join(sorted(names))}.",
        )


def _from_file(cls: type, path: Path, preset: str | None) -> Any:
    data = load_yaml(path)
    if "presets" in data:
        return preset_config(cls, path, preset, data)
    if preset is not None:
        raise ConfigError(f"{path} holds a single configuration; it has no preset {preset!r}.")
    if "TRACK" in data:
        return from_pysot(cls, data, where=str(path))
    return from_dict(cls, data, where=str(path))


def preset_names(tracker: str) -> list[str]:
    """Names of the published configurations in ``configs/<tracker>.yaml``."""
    path = CONFIG_DIR / f"{tracker}.yaml"
    return sorted(load_yaml(path).get("presets", {})) if path.is_file() else []


def pysot_importer(path, model):
    from siamkit.importers.pysot import import_checkpoint

    return import_checkpoint(path, model)


def dasiamrpn_importer(path, model):
    from siamkit.importers.dasiamrpn import import_checkpoint

    return import_checkpoint(path, model)


def make_tracker(
    name: str,
    config_cls: type,
    core_cls: type,
    weights=None,
    device=None,
    config=None,
    preset: str | None = None,
    importer=None,
    **overrides: Any,
) -> SiameseTracker:
    """Resolve the config, build (and load) the model, wrap the core as a single-target tracker."""
    cfg = resolve_config(config_cls, name, config, preset, overrides)
    dev = resolve_device(device)
    model = build_model(cfg.model, dict(cfg.model_options), weights, dev, importer, tracker=name)
    return SiameseTracker(core_cls(model, cfg, dev), name=name)


__all__ = [
    "BACKENDS",
    "CONFIG_DIR",
    "available_trackers",
    "build_model",
    "create_tracker",
    "make_tracker",
    "preset_names",
    "resolve_config",
    "resolve_device",
    "shipped_weights",
    "usable_trackers",
]
