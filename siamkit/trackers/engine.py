"""The tracking engine: N targets advance with one batched forward pass per step.

Every Siamese tracker of siamkit is written once, as a :class:`Core` that updates the state of
B targets at once (centres, sizes, cached template features, … as batch-first tensors on the
model's device). Two front ends drive a core:

* :class:`SiameseTracker` — the single-target :class:`~siamkit.trackers.base.Tracker`
  (``init(frame, box)`` / ``track(frame)``), i.e. a batch of one;
* :class:`BatchedTracker` — many targets, in one frame or in several frames/videos at once,
  each with its own box, for multi-object tracking or for evaluating many sequences in
  parallel. Its result equals running one tracker per target.

The per-frame loop every region-proposal / box-regression Siamese tracker shares (SiamRPN,
DaSiamRPN, SiamRPN++, SiamMask, SiamBAN; reference §1) is :class:`SiamCore`: crop a context
square around the previous centre, run the network against the cached template features,
penalise size and aspect-ratio changes, mix in a cosine window, move to the best candidate and
blend the size with a score-weighted learning rate. It keeps everything on the model's device;
one host transfer per step brings back the boxes and scores. :class:`AnchorCore` decodes anchor
deltas, :class:`PointCore` anchor-free (l, t, r, b) distances (SiamBAN, SiamBAN-ACM, and NanoTrack's
:class:`~siamkit.trackers.nanotrack.NanoCore` on the network's own grid). Building a tracker (device,
weights, published configurations) is :mod:`siamkit.trackers.build`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from siamkit.config import PUBLISHED, Published
from siamkit.errors import BoxError, ConfigError, FrameError, TrackerStateError
from siamkit.geometry import check_box
from siamkit.ops.anchors import anchor_grid, point_grid, score_size
from siamkit.ops.crop import crop_batch, frame_to_tensor
from siamkit.ops.postprocess import (
    Selection,
    clip_state,
    decode_deltas,
    decode_ltrb,
    exemplar_side,
    foreground_scores,
    select_best,
    smooth_update,
    state_to_xywh,
)
from siamkit.ops.windows import anchor_window, hann_window
from siamkit.trackers.base import Tracker, TrackResult, check_frame

State = dict[str, Any]


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


# --------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class CoreConfig(Published):
    """Inference settings shared by the §1 trackers.

    Values marked ``PUBLISHED`` are written only in ``configs/*.yaml``; left out they take the class's
    preset (here pysot's ``core/config.py`` defaults: preset ``pysot_defaults`` of ``configs/siamrpnpp_r50.yaml``).
    """

    TRACKER = "siamrpnpp_r50"
    PRESET = "pysot_defaults"

    model: str = PUBLISHED
    model_options: dict[str, Any] = PUBLISHED
    exemplar_size: int = PUBLISHED
    instance_size: int = PUBLISHED
    base_size: int = PUBLISHED
    context_amount: float = PUBLISHED
    stride: int = PUBLISHED
    penalty_k: float = PUBLISHED
    window_influence: float = PUBLISHED
    lr: float = PUBLISHED
    min_size: float = PUBLISHED
    rgb: bool = False  # channel order the network was trained on: BGR (pysot, siamban) or RGB
    keep_aspect: bool = False  # update the box's scale only (its area), keeping the first frame's aspect ratio
    # Crop like pysot / siamban / DaSiamRPN: uint8 padding colour and uint8 resize (same pixels, same boxes);
    # False keeps the float crop (±1 grey level from theirs; trajectories drift apart by tenths of a pixel).
    uint8_crops: bool = False
    source: str = PUBLISHED  # where the values come from


@dataclass(frozen=True)
class SiamRPNConfig(CoreConfig):
    """Anchor-based trackers: the core plus the anchor shapes."""

    ratios: tuple[float, ...] = PUBLISHED
    scales: tuple[float, ...] = PUBLISHED


# --------------------------------------------------------------------------- the shared core


class SiamCore(Core):
    """Reference §1 over B targets. Subclasses say how to turn network outputs into candidates.

    State (batch-first): ``centre`` B×2 and ``size`` B×2 (float64, image px), ``avg`` B×3
    padding colour, ``frame_size`` B×2 (W, H), ``zf`` template features, ``instance`` (host
    int array) the search size each target uses next.
    """

    name = "siamcore"
    anchor_num = 1
    uses_anchors = False

    def __init__(self, model: torch.nn.Module, config: CoreConfig, device: torch.device):
        super().__init__(model, config, device)
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        checks = [("stride", config.stride)] + ([("anchor_num", self.anchor_num)] if self.uses_anchors else [])
        for attr, want in checks:
            have = getattr(model, attr, want)
            if have != want:
                raise ConfigError(
                    f"The {type(model).__name__} model has {attr} {have}, but the tracker config expects {want}.",
                    hint="Use the config that belongs to this model.",
                )

    # ---- geometry of one search size
    def score_size(self, instance: int) -> int:
        c = self.config
        return score_size(instance, c.exemplar_size, c.stride, c.base_size)

    def grid(self, instance: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(candidate grid, cosine window) for a search size, cached per size."""
        if instance not in self._cache:
            self._cache[instance] = self._make_grid(self.score_size(instance))
        return self._cache[instance]

    def _make_grid(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def decode(self, out: dict[str, torch.Tensor], instance: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Network outputs → (scores B×N, boxes B×N×4 cx,cy,w,h from the crop centre)."""
        raise NotImplementedError

    # ---- hooks
    def _crop(self, frames, frame_index, centres, sizes, out_size, avg) -> torch.Tensor:
        """:func:`crop_targets`, in uint8 like the references when ``config.uint8_crops``."""
        if self.config.uint8_crops:
            return crop_targets(frames, frame_index, centres, sizes, out_size, avg, quantize=True)
        return crop_targets(frames, frame_index, centres, sizes, out_size, avg)

    def _channels(self, crops: torch.Tensor) -> torch.Tensor:
        """Crops are BGR like the frames; flip them for a network trained on RGB."""
        return crops[:, [2, 1, 0]] if self.config.rgb else crops

    def initial_instance(self, boxes: np.ndarray, frame_sizes: np.ndarray) -> np.ndarray:
        return np.full(len(boxes), self.config.instance_size, np.int64)

    def template(self, z: torch.Tensor, size: torch.Tensor, s_z: torch.Tensor) -> Any:
        return self.model.template(z)

    def extra_state(self, boxes: np.ndarray, frame_sizes: np.ndarray) -> State:
        return {}

    def window_influence(self, sub: State, instance: int) -> float | torch.Tensor:
        return self.config.window_influence

    def rescore(self, sub: State, x: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Scores used to rank candidates (DaSiamRPN subtracts distractor similarity here)."""
        return scores

    # ---- protocol
    def start(self, frames, frame_index, boxes) -> State:
        c = self.config
        b = torch.as_tensor(boxes, dtype=torch.float64, device=self.device)
        centre = b[:, :2] + (b[:, 2:] - 1) / 2
        size = b[:, 2:].clone()
        avg = frame_means(frames, frame_index)
        s_z = torch.round(exemplar_side(size, c.context_amount))
        z = self._channels(self._crop(frames, frame_index, centre, s_z, c.exemplar_size, avg))
        zf = self.template(z, size, s_z)
        frame_sizes = np.array([[frames[i].shape[3], frames[i].shape[2]] for i in frame_index], np.int64)
        state = {
            "centre": centre,
            "size": size,
            "avg": avg,
            "frame_size": torch.as_tensor(frame_sizes, dtype=torch.float64, device=self.device),
            "zf": zf,
            "instance": self.initial_instance(np.asarray(boxes), frame_sizes),
        }
        state.update(self.extra_state(np.asarray(boxes), frame_sizes))
        return state

    def step(self, frames, frame_index, state):
        inst = state["instance"]
        total = len(inst)
        results: list[TrackResult | None] = [None] * total
        new_state = dict(state)
        for value in np.unique(inst):
            idx = np.nonzero(inst == value)[0]
            whole = len(idx) == total
            sub = state if whole else take_state(state, idx)
            updates, group_results = self.step_group(frames, np.asarray(frame_index)[idx], sub, int(value))
            for key, val in updates.items():
                if whole:
                    new_state[key] = val
                else:
                    new_state[key] = write_targets(new_state[key], idx, val)
            for k, i in enumerate(idx):
                results[i] = group_results[k]
        return new_state, results  # type: ignore[return-value]

    def step_group(self, frames, frame_index: np.ndarray, sub: State, instance: int) -> tuple[State, list[TrackResult]]:
        """One step of targets that share a search size: crop, forward, select, update."""
        c = self.config
        centre, size = sub["centre"], sub["size"]
        s_z = exemplar_side(size, c.context_amount)
        scale_z = c.exemplar_size / s_z
        s_x = torch.round(s_z * (instance / c.exemplar_size))
        x = self._channels(self._crop(frames, frame_index, centre, s_x, instance, sub["avg"]))
        out = self.model.search(x, sub["zf"])
        scores, boxes = self.decode(out, instance)
        _, window = self.grid(instance)
        ranking = self.rescore(sub, x, scores)
        sel = select_best(
            ranking, boxes, size * scale_z[:, None], c.penalty_k, window, self.window_influence(sub, instance)
        )
        if ranking is not scores:  # the re-scored map only ranks; size update and report use the raw score
            rows = torch.arange(scores.shape[0], device=scores.device)
            sel.score = torch.where(sel.valid, scores[rows, sel.index], torch.zeros_like(sel.score))
        new_centre, new_size = smooth_update(centre, size, sel, scale_z, c.lr)
        if c.keep_aspect:
            new_size = size * torch.sqrt(new_size.prod(dim=1, keepdim=True) / size.prod(dim=1, keepdim=True))
        return self.finish(frames, frame_index, sub, instance, out, sel, scale_z, s_x, new_centre, new_size)

    def finish(
        self, frames, frame_index, sub, instance, out, sel: Selection, scale_z, s_x, new_centre, new_size
    ) -> tuple[State, list[TrackResult]]:
        """Clip, store and report (the plain §1.9 update). Variants override this."""
        centre, size = clip_state(new_centre, new_size, sub["frame_size"], self.config.min_size)
        rows = torch.cat([state_to_xywh(centre, size), sel.score[:, None]], dim=1).cpu().numpy()
        return {"centre": centre, "size": size}, [result_from_row(r) for r in rows]


class AnchorCore(SiamCore):
    """§1 with anchor boxes (SiamRPN, DaSiamRPN, SiamRPN++, SiamMask)."""

    name = "siamrpn"
    uses_anchors = True

    def __init__(self, model, config: SiamRPNConfig, device):
        self.anchor_num = len(config.ratios) * len(config.scales)
        super().__init__(model, config, device)

    def _make_grid(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        grid = anchor_grid(size, c.stride, c.ratios, c.scales, device=self.device)
        return grid, anchor_window(size, self.anchor_num, device=self.device)

    def decode(self, out, instance):
        grid, _ = self.grid(instance)
        cls, loc = out["cls"], out["loc"]
        _check_map(cls, self.score_size(instance), "cls")
        return foreground_scores(cls, self.anchor_num), decode_deltas(loc, grid)


class PointCore(SiamCore):
    """§1 with anchor-free points and (l, t, r, b) distances (SiamBAN, SiamBAN-ACM, NanoTrack)."""

    name = "siamban"

    def _make_grid(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        grid = point_grid(size, self.config.stride, device=self.device)
        return grid, hann_window(size, device=self.device).reshape(-1)

    def decode(self, out, instance):
        grid, _ = self.grid(instance)
        cls, loc = out["cls"], out["loc"]
        _check_map(cls, self.score_size(instance), "cls")
        return foreground_scores(cls, 1), decode_ltrb(loc, grid)


def _check_map(t: torch.Tensor, size: int, name: str) -> None:
    if t.shape[-1] != size or t.shape[-2] != size:
        raise ConfigError(
            f"The network's {name} map is {tuple(t.shape[-2:])}, but the tracker config implies {size}×{size}.",
            hint="Check instance_size / base_size / stride against the model.",
        )


__all__ = [
    "AnchorCore",
    "BatchedTracker",
    "Core",
    "CoreConfig",
    "PointCore",
    "SiamCore",
    "SiamRPNConfig",
    "SiameseTracker",
    "State",
    "cat_states",
    "crop_targets",
    "frame_means",
    "frames_to_device",
    "result_from_row",
    "take_state",
    "write_targets",
]
