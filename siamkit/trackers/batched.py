"""The batched tracking engine: N targets advance with one batched forward pass per step.

Every Siamese tracker of siamkit is written once, as a :class:`Core` that updates the state of
B targets at once (centres, sizes, cached template features, … as batch-first tensors on the
model's device). Two front ends drive a core:

* :class:`SiameseTracker` — the single-target :class:`~siamkit.trackers.base.Tracker`
  (``init(frame, box)`` / ``track(frame)``), i.e. a batch of one;
* :class:`BatchedTracker` — many targets, in one frame or in several frames/videos at once,
  each with its own box, for multi-object tracking or for evaluating many sequences in
  parallel. Its result equals running one tracker per target.

This module also holds the plumbing the tracker modules share: device choice, building a
model with (or without) weights, and resolving a tracker's published configuration.
"""

from __future__ import annotations

import dataclasses
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from siamkit.config import MODELS, from_dict, load_yaml
from siamkit.errors import BoxError, ConfigError, FrameError, TrackerStateError, WeightsError
from siamkit.geometry import check_box
from siamkit.ops.crop import crop_batch, frame_to_tensor
from siamkit.trackers.base import Tracker, TrackResult, check_frame
from siamkit.utils.device import resolve_device

log = logging.getLogger("siamkit")

State = dict[str, Any]
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"  # packaged; ./configs links here
RANDOM_WEIGHTS = "none"  # weights="none": a randomly initialised network, asked for explicitly
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".model", ".ckpt", ".tar")


# --------------------------------------------------------------------------- state helpers


def _take(value: Any, idx: torch.Tensor | np.ndarray) -> Any:
    if isinstance(value, torch.Tensor):
        return value[torch.as_tensor(idx, device=value.device, dtype=torch.long)]
    if isinstance(value, np.ndarray):
        return value[np.asarray(idx.cpu() if isinstance(idx, torch.Tensor) else idx, dtype=np.int64)]
    if isinstance(value, (tuple, list)):
        return type(value)(_take(v, idx) for v in value)
    raise TypeError(f"cannot index state entry of type {type(value).__name__}")


def _cat(values: Sequence[Any]) -> Any:
    first = values[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(list(values), dim=0)
    if isinstance(first, np.ndarray):
        return np.concatenate(values, axis=0)
    if isinstance(first, (tuple, list)):
        return type(first)(_cat([v[i] for v in values]) for i in range(len(first)))
    raise TypeError(f"cannot concatenate state entries of type {type(first).__name__}")


def take_state(state: State, idx: torch.Tensor | np.ndarray | Sequence[int]) -> State:
    """The sub-state of the targets ``idx`` (every entry is batch-first)."""
    idx = np.asarray(idx, dtype=np.int64) if not isinstance(idx, torch.Tensor) else idx
    return {k: _take(v, idx) for k, v in state.items()}


def cat_states(states: Sequence[State]) -> State:
    """Concatenate the states of several target groups (same keys)."""
    return {k: _cat([s[k] for s in states]) for k in states[0]}


def write_targets(value: Any, idx: np.ndarray, new: Any) -> Any:
    """A copy of the state entry ``value`` with the rows ``idx`` replaced by ``new``."""
    if isinstance(value, torch.Tensor):
        value = value.clone()
        value[torch.as_tensor(idx, device=value.device, dtype=torch.long)] = new.to(value.dtype)
        return value
    if isinstance(value, np.ndarray):
        value = value.copy()
        value[idx] = new
        return value
    if isinstance(value, (tuple, list)):
        return type(value)(write_targets(v, idx, n) for v, n in zip(value, new, strict=True))
    raise TypeError(f"cannot update state entry of type {type(value).__name__}")


def crop_targets(
    frames: Sequence[torch.Tensor],
    frame_index: np.ndarray,
    centres: torch.Tensor,
    sizes: torch.Tensor,
    out_size: int,
    avg: torch.Tensor,
    quantize: bool = False,
) -> torch.Tensor:
    """Crop one square per target from its own frame (frames are 1×3×H×W uint8 tensors).

    ``quantize``: uint8 crops like the reference trackers (:func:`~siamkit.ops.crop.crop_batch`).

    Frames of equal size are cropped in one :func:`~siamkit.ops.crop.crop_batch` call; frames
    of different sizes (several videos) are cropped group by group, in target order.
    """
    frame_index = np.asarray(frame_index, dtype=np.int64)
    if len(frames) == 1:
        return crop_batch(frames[0], centres, sizes, out_size, avg, quantize=quantize)
    used = np.unique(frame_index)
    if len({tuple(frames[i].shape) for i in used}) == 1:
        stacked = torch.cat([frames[i] for i in used], dim=0)
        local = torch.as_tensor(np.searchsorted(used, frame_index), device=stacked.device)
        return crop_batch(stacked, centres, sizes, out_size, avg, frame_index=local, quantize=quantize)
    out = torch.empty((len(frame_index), frames[0].shape[1], out_size, out_size), device=centres.device)
    for i in used:
        sel = np.nonzero(frame_index == i)[0]
        t = torch.as_tensor(sel, device=centres.device)
        out[t] = crop_batch(frames[i], centres[t], sizes[t], out_size, avg[t], quantize=quantize)
    return out


def frame_means(frames: Sequence[torch.Tensor], frame_index: np.ndarray) -> torch.Tensor:
    """Per-channel mean colour (float64) of each target's frame: B×3 (the padding colour)."""
    means = [f[0].to(torch.float64).mean(dim=(1, 2)) for f in frames]
    return torch.stack([means[i] for i in np.asarray(frame_index, dtype=np.int64)])


# --------------------------------------------------------------------------- the core protocol


class Core(ABC):
    """A tracking algorithm over B targets at once; holds the model and config, no target state."""

    name = "core"

    def __init__(self, model: torch.nn.Module, config: Any, device: torch.device):
        self.model = model
        self.config = config
        self.device = device

    @abstractmethod
    def start(self, frames: Sequence[torch.Tensor], frame_index: np.ndarray, boxes: np.ndarray) -> State:
        """State of new targets (``boxes`` B×4 xywh, already validated) in their first frames."""

    @abstractmethod
    def step(
        self, frames: Sequence[torch.Tensor], frame_index: np.ndarray, state: State
    ) -> tuple[State, list[TrackResult]]:
        """Advance every target of ``state`` by one frame; return the new state and results."""


def frames_to_device(frames: Sequence[Any], device: torch.device) -> list[torch.Tensor]:
    """H×W×3 uint8 frames (numpy or torch) → list of 1×3×H×W tensors on ``device``."""
    return [frame_to_tensor(f, device) for f in frames]


def result_from_row(row: np.ndarray, **kwargs: Any) -> TrackResult:
    """TrackResult from a host row [x, y, w, h, score, …]."""
    return TrackResult(box=np.asarray(row[:4], dtype=np.float64).copy(), score=float(row[4]), **kwargs)


# --------------------------------------------------------------------------- single-target front end


class SiameseTracker(Tracker):
    """Single-target tracker: a batch of one through a :class:`Core`."""

    def __init__(self, core: Core, name: str | None = None):
        super().__init__()
        self.core = core
        self.name = name or core.name
        self._state: State | None = None

    @property
    def model(self) -> torch.nn.Module:
        return self.core.model

    @property
    def config(self) -> Any:
        return self.core.config

    @property
    def device(self) -> torch.device:
        return self.core.device

    def _init(self, frame: Any, box: np.ndarray) -> None:
        with torch.no_grad():
            frames = frames_to_device([frame], self.device)
            self._state = self.core.start(frames, np.zeros(1, np.int64), np.asarray(box, np.float64)[None])

    def _track(self, frame: Any) -> TrackResult:
        with torch.no_grad():
            frames = frames_to_device([frame], self.device)
            self._state, results = self.core.step(frames, np.zeros(1, np.int64), self._state)
        return results[0]


# --------------------------------------------------------------------------- many-target front end


class BatchedTracker:
    """Track N targets with one batched forward pass per step.

    Targets may live in the same frame (several objects in one video) or in different frames
    (several videos advanced in lock-step). ``frames`` is one H×W×3 uint8 frame or a list of
    them; ``frame_index[i]`` says which of them target ``i`` uses (default: all use the only
    frame, or target ``i`` uses frame ``i`` when there are as many frames as targets).

    >>> bt = BatchedTracker.create("siamrpnpp_alexnet", device="cpu")   # doctest: +SKIP
    >>> ids = bt.add(first_frame, [[10, 20, 30, 40], [100, 50, 20, 60]])  # doctest: +SKIP
    >>> results = bt.track(next_frame)                                  # doctest: +SKIP
    """

    def __init__(self, tracker: SiameseTracker | Core):
        self.core = tracker.core if isinstance(tracker, SiameseTracker) else tracker
        self._state: State | None = None
        self._ids: list[int] = []
        self._sizes: list[tuple[int, int]] = []
        self._next_id = 0

    @classmethod
    def create(cls, name: str, weights: str | None = None, device: str | None = None, **options: Any):
        """Build the tracker ``name`` (see :func:`siamkit.trackers.create_tracker`) for many targets."""
        from siamkit.trackers import create_tracker

        tracker = create_tracker(name, weights=weights, device=device, **options)
        if not isinstance(tracker, SiameseTracker):
            raise ConfigError(f"Tracker {name!r} cannot run batched.", hint="Use one of siamkit's Siamese trackers.")
        return cls(tracker)

    @property
    def ids(self) -> list[int]:
        """Ids of the live targets, in the order results are returned."""
        return list(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def _frames(self, frames: Any) -> list[Any]:
        if isinstance(frames, (list, tuple)):
            if not frames:
                raise FrameError("No frames were given.", hint="Pass one frame or a list of frames.")
            return list(frames)
        return [frames]

    def _index(self, frame_index: Any, n_frames: int, n_targets: int) -> np.ndarray:
        if frame_index is None:
            if n_frames == 1:
                return np.zeros(n_targets, np.int64)
            if n_frames == n_targets:
                return np.arange(n_targets, dtype=np.int64)
            raise FrameError(
                f"{n_frames} frames for {n_targets} targets: cannot tell which frame each target uses.",
                hint="Pass frame_index=[…] with one frame number per target.",
            )
        idx = np.asarray(frame_index, dtype=np.int64).reshape(-1)
        if idx.size != n_targets or (idx.size and (idx.min() < 0 or idx.max() >= n_frames)):
            raise FrameError(
                f"frame_index must hold {n_targets} numbers in 0…{n_frames - 1}, got {idx.tolist()}.",
            )
        return idx

    def add(self, frames: Any, boxes: Any, frame_index: Any = None) -> list[int]:
        """Start tracking new targets (boxes N×4, x,y,w,h) in their first frames; returns their ids."""
        frames = self._frames(frames)
        sizes = [check_frame(f, "first frame") for f in frames]
        arr = np.asarray(boxes, dtype=np.float64) if not isinstance(boxes, np.ndarray) else boxes.astype(np.float64)
        if arr.ndim == 1:
            arr = arr[None]
        if arr.ndim != 2 or arr.shape[1] != 4 or arr.shape[0] == 0:
            raise BoxError(f"Expected boxes as N×4 (x, y, w, h), got shape {arr.shape}.")
        idx = self._index(frame_index, len(frames), arr.shape[0])
        checked = np.stack(
            [check_box(b, image_size=sizes[i], name=f"box {k}") for k, (b, i) in enumerate(zip(arr, idx, strict=True))]
        )
        with torch.no_grad():
            tensors = frames_to_device(frames, self.core.device)
            new = self.core.start(tensors, idx, checked)
        self._state = new if self._state is None else cat_states([self._state, new])
        ids = list(range(self._next_id, self._next_id + len(idx)))
        self._next_id += len(idx)
        self._ids += ids
        self._sizes += [sizes[i] for i in idx]
        return ids

    def init(self, frames: Any, boxes: Any, frame_index: Any = None) -> list[int]:
        """Forget all targets and start the given ones."""
        self._state, self._ids, self._sizes = None, [], []
        return self.add(frames, boxes, frame_index)

    def remove(self, ids: Sequence[int]) -> None:
        """Stop tracking the targets ``ids``."""
        unknown = sorted(set(ids) - set(self._ids))
        if unknown:
            raise TrackerStateError(f"Unknown target id(s) {unknown}.", hint=f"Live targets: {self._ids}.")
        keep = [k for k, i in enumerate(self._ids) if i not in set(ids)]
        self._ids = [self._ids[k] for k in keep]
        self._sizes = [self._sizes[k] for k in keep]
        self._state = take_state(self._state, keep) if keep else None

    def track(self, frames: Any, frame_index: Any = None) -> list[TrackResult]:
        """Advance every target by one frame; results follow :attr:`ids`."""
        if self._state is None:
            raise TrackerStateError("BatchedTracker.track() was called with no targets.", hint="Call add() first.")
        frames = self._frames(frames)
        sizes = [check_frame(f) for f in frames]
        idx = self._index(frame_index, len(frames), len(self._ids))
        for k, i in enumerate(idx):
            if sizes[i] != self._sizes[k]:
                raise FrameError(
                    f"Target {self._ids[k]} started in a {self._sizes[k]} frame but got a {sizes[i]} frame.",
                    hint="Each target must keep frames of one video (same size).",
                )
        with torch.no_grad():
            tensors = frames_to_device(frames, self.core.device)
            self._state, results = self.core.step(tensors, idx, self._state)
        return results


# --------------------------------------------------------------------------- shared plumbing


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
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ConfigError(
                f"Unknown option(s) for {tracker}: {', '.join(unknown)}.",
                hint=f"Valid options: config, preset, {', '.join(sorted(names))}.",
            )
        cfg = from_dict(cls, {**dataclasses.asdict(cfg), **overrides}, where=tracker)
    return cfg


def _from_file(cls: type, path: Path, preset: str | None) -> Any:
    data = load_yaml(path)
    if "presets" in data:
        presets = data["presets"]
        name = preset or data.get("default")
        if name not in presets:
            raise ConfigError(f"{path}: no preset {name!r}.", hint=f"Available presets: {', '.join(sorted(presets))}.")
        return from_dict(cls, presets[name], where=f"{path}:{name}")
    if preset is not None:
        raise ConfigError(f"{path} holds a single configuration; it has no preset {preset!r}.")
    if "TRACK" in data:
        return from_pysot(cls, data, where=str(path))
    return from_dict(cls, data, where=str(path))


def _pysot_model(data: dict[str, Any]) -> str | None:
    """The siamkit network a pysot/siamban experiment file describes (None when unclear)."""

    def get(section: str, key: str) -> Any:
        body = data.get(section)
        return body.get(key) if isinstance(body, dict) else None

    backbone = str(get("BACKBONE", "TYPE") or "").lower()
    if get("MASK", "MASK"):
        return "siammask_r50"
    if "BAN" in data and get("BAN", "BAN") is not False:
        return "siamban_r50"
    if backbone.startswith("resnet50"):
        return "siamrpnpp_r50"
    if backbone.startswith("mobilenetv2"):
        return "siamrpnpp_mobilev2"
    if backbone.startswith("alexnet"):
        return "siamrpn_alexnet" if get("RPN", "TYPE") == "UPChannelRPN" else "siamrpnpp_alexnet"
    return None


# pysot / siamban experiment files (yacs, upper case): TRACK/ANCHOR/POINT keys → siamkit fields.
PYSOT_KEYS = {
    ("TRACK", "PENALTY_K"): "penalty_k",
    ("TRACK", "WINDOW_INFLUENCE"): "window_influence",
    ("TRACK", "LR"): "lr",
    ("TRACK", "EXEMPLAR_SIZE"): "exemplar_size",
    ("TRACK", "INSTANCE_SIZE"): "instance_size",
    ("TRACK", "BASE_SIZE"): "base_size",
    ("TRACK", "CONTEXT_AMOUNT"): "context_amount",
    ("TRACK", "LOST_INSTANCE_SIZE"): "lost_instance_size",
    ("TRACK", "CONFIDENCE_LOW"): "confidence_low",
    ("TRACK", "CONFIDENCE_HIGH"): "confidence_high",
    ("TRACK", "MASK_THERSHOLD"): "mask_threshold",  # sic: pysot's spelling
    ("TRACK", "MASK_THRESHOLD"): "mask_threshold",
    ("ANCHOR", "STRIDE"): "stride",
    ("ANCHOR", "RATIOS"): "ratios",
    ("ANCHOR", "SCALES"): "scales",
    ("POINT", "STRIDE"): "stride",
}


def from_pysot(cls: type, data: dict[str, Any], where: str = "pysot config") -> Any:
    """Translate a pysot/siamban experiment ``config.yaml`` into the tracker config ``cls``.

    Tracking values (``TRACK``, ``ANCHOR``, ``POINT``) are taken over; the fusion flag
    ``RPN``/``BAN.KWARGS.weighted`` and the neck widths ``ADJUST.KWARGS.out_channels`` go to
    ``model_options``; ``BACKBONE.TYPE``/``RPN.TYPE``/``MASK``/``BAN`` pick the network;
    ``TRACK.TYPE: SiamRPNLTTracker`` turns on ``long_term``. Everything
    else (training, data sets, legacy keys such as ``BACKBONE.LAYERS``) is ignored with one
    warning naming it, so old files that pysot's strict loader rejects still load.
    """
    fields = {f.name for f in dataclasses.fields(cls)}
    values = dataclasses.asdict(cls())
    model = _pysot_model(data)
    if model is not None and model != values.get("model"):
        values["model"], values["model_options"] = model, {}
    ignored = []
    for section, body in data.items():
        if not isinstance(body, dict):
            ignored.append(section)
            continue
        for key, value in body.items():
            name = PYSOT_KEYS.get((section, key))
            if name in fields:
                values[name] = value
            elif (section, key) == ("TRACK", "TYPE") and value == "SiamRPNLTTracker" and "long_term" in fields:
                values["long_term"] = True
            elif (section, key) in (("RPN", "KWARGS"), ("BAN", "KWARGS")) and isinstance(value, dict):
                if "weighted" in value:
                    values["model_options"] = {**values.get("model_options", {}), "weighted": bool(value["weighted"])}
            elif (section, key) == ("ADJUST", "KWARGS") and isinstance(value.get("out_channels"), list):
                channels = [int(c) for c in value["out_channels"]]
                values["model_options"] = {**values.get("model_options", {}), "neck_channels": channels}
            elif (section, key) != ("TRACK", "TYPE"):
                ignored.append(f"{section}.{key}")
    if ignored:
        log.warning("%s: ignored pysot settings that do not affect tracking: %s", where, ", ".join(ignored))
    if "adaptive" in fields:
        values["adaptive"] = False  # DaSiamRPN's adaptive search is not part of pysot
    values["source"] = f"translated from {where}"
    return from_dict(cls, values, where=where)


def preset_names(tracker: str) -> list[str]:
    """Names of the published configurations in ``configs/<tracker>.yaml``."""
    path = CONFIG_DIR / f"{tracker}.yaml"
    return sorted(load_yaml(path).get("presets", {})) if path.is_file() else []


__all__ = [
    "BatchedTracker",
    "Core",
    "SiameseTracker",
    "build_model",
    "resolve_config",
    "resolve_device",
]
