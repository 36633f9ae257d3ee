"""SiamRPN and SiamRPN++: the shared Siamese inference core with anchor boxes (reference §1, §4, §6).

:class:`SiamCore` is the algorithm every region-proposal / box-regression Siamese tracker
shares (SiamRPN, DaSiamRPN, SiamRPN++, SiamMask, SiamBAN): crop a context square around the
previous centre, run the network against the cached template features, penalise size and
aspect-ratio changes, mix in a cosine window, move to the best candidate and blend the size
with a score-weighted learning rate. It runs on B targets at once and keeps everything on the
model's device; one host transfer per step brings back the boxes and scores.

:class:`AnchorCore` decodes anchor deltas. Registered trackers: ``siamrpn`` (AlexNet with
up-channel correlation, DaSiamRPN's released SiamRPN models), ``siamrpnpp_alexnet``,
``siamrpnpp_r50``, ``siamrpnpp_mobilev2``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from siamkit.config import TRACKERS
from siamkit.errors import ConfigError
from siamkit.ops.anchors import anchor_grid, point_grid, score_size
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
from siamkit.trackers.base import TrackResult
from siamkit.trackers.batched import (
    Core,
    SiameseTracker,
    State,
    build_model,
    crop_targets,
    frame_means,
    resolve_config,
    resolve_device,
    result_from_row,
    take_state,
    write_targets,
)

# --------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class CoreConfig:
    """Inference settings shared by the §1 trackers (defaults: pysot ``core/config.py``)."""

    model: str = "siamrpnpp_r50"
    model_options: dict[str, Any] = field(default_factory=dict)
    exemplar_size: int = 127
    instance_size: int = 255
    base_size: int = 8
    context_amount: float = 0.5
    stride: int = 8
    penalty_k: float = 0.04
    window_influence: float = 0.44
    lr: float = 0.4
    min_size: float = 10.0
    rgb: bool = False  # channel order the network was trained on: BGR (pysot, siamban) or RGB
    keep_aspect: bool = False  # update the box's scale only (its area), keeping the first frame's aspect ratio
    # Crop like pysot / siamban / DaSiamRPN: uint8 padding colour and uint8 resize (same pixels, same boxes);
    # False keeps the float crop (±1 grey level from theirs; trajectories drift apart by tenths of a pixel).
    uint8_crops: bool = False
    source: str = "STVIR/pysot pysot/core/config.py (defaults)"


@dataclass(frozen=True)
class SiamRPNConfig(CoreConfig):
    """Anchor-based trackers: the core plus the anchor shapes."""

    ratios: tuple[float, ...] = (0.33, 0.5, 1.0, 2.0, 3.0)
    scales: tuple[float, ...] = (8.0,)


@dataclass(frozen=True)
class SiamRPNPPR50Config(SiamRPNConfig):
    """pysot ``siamrpn_r50_l234_dwxcorr`` (VOT)."""

    penalty_k: float = 0.05
    window_influence: float = 0.42
    lr: float = 0.38
    source: str = "STVIR/pysot experiments/siamrpn_r50_l234_dwxcorr/config.yaml"


@dataclass(frozen=True)
class SiamRPNPPAlexConfig(SiamRPNConfig):
    """pysot ``siamrpn_alex_dwxcorr``: searched at 287 (trained at 255), no base size."""

    model: str = "siamrpnpp_alexnet"
    instance_size: int = 287
    base_size: int = 0
    penalty_k: float = 0.16
    window_influence: float = 0.40
    lr: float = 0.30
    source: str = "STVIR/pysot experiments/siamrpn_alex_dwxcorr/config.yaml"


@dataclass(frozen=True)
class SiamRPNPPMobileConfig(SiamRPNConfig):
    """pysot ``siamrpn_mobilev2_l234_dwxcorr``."""

    model: str = "siamrpnpp_mobilev2"
    penalty_k: float = 0.04
    window_influence: float = 0.4
    lr: float = 0.5
    source: str = "STVIR/pysot experiments/siamrpn_mobilev2_l234_dwxcorr/config.yaml"


@dataclass(frozen=True)
class SiamRPNAlexConfig(SiamRPNConfig):
    """DaSiamRPN's released ``SiamRPNvot`` (AlexNet, up-channel correlation, search 271)."""

    model: str = "siamrpn_alexnet"
    instance_size: int = 271
    base_size: int = 0
    penalty_k: float = 0.04
    window_influence: float = 0.44
    lr: float = 0.45
    source: str = "foolwood/DaSiamRPN code/net.py SiamRPNvot"


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
    """§1 with anchor-free points and (l, t, r, b) distances (SiamBAN, SiamBAN-ACM)."""

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


# --------------------------------------------------------------------------- builders


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


@TRACKERS.register("siamrpn")
def build_siamrpn(weights=None, device=None, **options) -> SiameseTracker:
    """SiamRPN: AlexNet + up-channel RPN (DaSiamRPN's SiamRPNvot / SiamRPNotb settings)."""
    return make_tracker(
        "siamrpn", SiamRPNAlexConfig, AnchorCore, weights, device, importer=dasiamrpn_importer, **options
    )


@TRACKERS.register("siamrpnpp_alexnet")
def build_siamrpnpp_alexnet(weights=None, device=None, **options) -> SiameseTracker:
    """SiamRPN++ with the AlexNet backbone and a depth-wise RPN (pysot ``siamrpn_alex_dwxcorr``)."""
    return make_tracker(
        "siamrpnpp_alexnet", SiamRPNPPAlexConfig, AnchorCore, weights, device, importer=pysot_importer, **options
    )


@TRACKERS.register("siamrpnpp_r50")
def build_siamrpnpp_r50(weights=None, device=None, **options) -> SiameseTracker:
    """SiamRPN++ with ResNet-50 and three fused depth-wise RPNs (pysot ``siamrpn_r50_l234_dwxcorr``)."""
    return make_tracker(
        "siamrpnpp_r50", SiamRPNPPR50Config, AnchorCore, weights, device, importer=pysot_importer, **options
    )


@TRACKERS.register("siamrpnpp_mobilev2")
def build_siamrpnpp_mobilev2(weights=None, device=None, **options) -> SiameseTracker:
    """SiamRPN++ with MobileNetV2 (pysot ``siamrpn_mobilev2_l234_dwxcorr``)."""
    return make_tracker(
        "siamrpnpp_mobilev2", SiamRPNPPMobileConfig, AnchorCore, weights, device, importer=pysot_importer, **options
    )
