"""NanoTrack tracker (v1, v2, v3): the pretrained HonglinChu models with their published test-time procedure.

NanoTrack is a point-based core of the engine (:class:`NanoCore`, a
:class:`~siamkit.trackers.engine.PointCore`): per frame it crops a square of side s_x = round(s_z · 255/127)
around the previous centre (mean-colour padding), runs the search branch against the cached template
features, scores the grid points (softmax channel 1), decodes each point's (l, t, r, b) into a box,
penalises scale and aspect-ratio changes, mixes in a Hann window, takes the best point and moves the box
there with a learning rate — the engine's window, points, decoding, penalty and update, batched over
targets (:class:`~siamkit.trackers.engine.BatchedTracker`). What is NanoTrack's own: the stride and the
16×16 (v3: 15×15) score map come from the network, not from the config; the result carries the
penalised score (``extra["pscore"]``); and cv2.TrackerNano's procedure (below).

Constants follow the authors' ``configv{1,2,3}.yaml`` (TRACK), kept as presets ``v1``/``v2``/``v3`` in
``configs/nanotrack.yaml``; the builder picks the preset of the loaded weights' version.

``cv2.TrackerNano`` (OpenCV ``modules/video/src/tracking/tracker_nano.cpp``) runs the same v2 graphs
but is a different tracker; :data:`OPENCV_STEPS` names each place it departs from the original, and
``NanoTrackConfig.opencv`` adopts any of them (preset ``opencv`` adopts all, with OpenCV's constants
window 0.455, penalty_k 0.055, lr 0.37). The original's behaviour stays the default.
By default the crops are made like the original's (``uint8_crops``, the engine's ``quantize`` crop of
:mod:`siamkit.ops.crop`): padding colour truncated to uint8 and the square resized with OpenCV's uint8
bilinear arithmetic (OpenCV itself on the CPU, :func:`~siamkit.ops.crop.crop_like_original` bit for bit on
other devices), so the network sees the very same pixels. ``uint8_crops=False`` uses the float crop
instead (differs by up to ±1 grey level, and the trajectories then drift apart by a few tenths of a pixel).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import torch

from siamkit.config import PUBLISHED, TRACKERS, Published
from siamkit.errors import ConfigError, WeightsError
from siamkit.ops.anchors import point_grid
from siamkit.ops.crop import origin_centres
from siamkit.ops.windows import change, hann_window, padded_side
from siamkit.trackers.engine import (
    Core,
    PointCore,
    SiameseTracker,
    State,
    crop_targets,
    frame_means,
    result_from_row,
)
from siamkit.utils.device import resolve_device

WEIGHTS_ENV = "SIAMKIT_NANOTRACK"
ZOO_NAMES = ("nanotrack_v2", "nanotrack_v3", "nanotrack_v1")  # looked up in this order when no path is given


# Where cv2.TrackerNano departs from the original NanoTrack tracker (each adoptable on its own):
#   rgb           the network gets RGB crops (blobFromImage swapRB=true); it was trained on BGR (cv2.imread).
#   window        the cosine window is cv2.createHanningWindow's, which is the SQUARE ROOT of the Hann
#                 outer product (flatter: 0.25 → 0.5 half-way out).
#   scale_penalty the scale change is measured against sizeCal(targetPos), the target's CENTRE
#                 coordinates in frame pixels, instead of its (crop-scaled) size.
#   geometry      integer Rect input (outward-rounded like siamkit's opencv:nano wrapper), centre x + w/2,
#                 template side truncated, context from int(w + h), search side int(2·s_z) (255/127 is
#                 integer division) with the scale still 127/s_z, crop origin int(c) − (side+1)//2,
#                 float32 arithmetic throughout.
#   padding       the padding colour is the CURRENT frame's mean, rounded (the original: frame 1's, truncated).
#   int_box       the box returned is truncated to integers (cv::Rect); the state stays float.
OPENCV_STEPS = ("rgb", "window", "scale_penalty", "geometry", "padding", "int_box")


@dataclass(frozen=True)
class NanoTrackConfig(Published):
    """Test-time hyper-parameters of NanoTrack (``configv{1,2,3}.yaml``, section TRACK).

    The values (``PUBLISHED``) are written only in ``configs/nanotrack.yaml``; left out they are preset
    ``v2``'s. ``output_size`` is the score-map side the config was made for (checked against the model;
    ``None`` takes the model's). ``opencv`` lists the :data:`OPENCV_STEPS` to adopt (empty: the original tracker).
    """

    TRACKER = "nanotrack"
    PRESET = "v2"

    exemplar_size: int = PUBLISHED
    instance_size: int = PUBLISHED
    context_amount: float = PUBLISHED
    penalty_k: float = PUBLISHED
    window_influence: float = PUBLISHED
    lr: float = PUBLISHED
    min_size: float = PUBLISHED
    uint8_crops: bool = True
    output_size: int | None = None
    opencv: tuple[str, ...] = ()
    source: str = ""

    # Engine options NanoTrack does not have (not fields: not in its presets nor its builder's options).
    keep_aspect: ClassVar[bool] = False
    rgb: ClassVar[bool] = False  # BGR crops; cv2.TrackerNano's RGB is the ``rgb`` step of ``opencv``

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = sorted(set(self.opencv) - set(OPENCV_STEPS))
        if unknown:
            raise ConfigError(
                f"Unknown OpenCV step(s) {', '.join(unknown)} in NanoTrackConfig.opencv.",
                hint=f"Known: {', '.join(OPENCV_STEPS)}.",
            )


grid_points = point_grid  # NanoTrack's points: (S·S)×2 offsets (x, y) from the crop centre, from −(S//2)·stride


def opencv_window(score_size: int, device: Any = None) -> torch.Tensor:
    """``cv2.createHanningWindow`` flattened: the square root of the Hann outer product, float32."""
    window = cv2.createHanningWindow((score_size, score_size), cv2.CV_32F)
    return torch.from_numpy(np.ascontiguousarray(window).reshape(-1)).to(device)


def opencv_rect(box: np.ndarray, frame_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Integer (x, y, w, h) that covers ``box`` (floor the corner, ceil the far edge, stay inside the frame).

    The rule of siamkit's ``opencv:nano`` wrapper, so both trackers start from the same cv::Rect.
    """
    width, height = frame_size
    x1 = int(np.clip(np.floor(box[0]), 0, width - 1))
    y1 = int(np.clip(np.floor(box[1]), 0, height - 1))
    x2 = int(np.clip(np.ceil(box[0] + box[2]), x1 + 1, width))
    y2 = int(np.clip(np.ceil(box[1] + box[3]), y1 + 1, height))
    return x1, y1, x2 - x1, y2 - y1


class NanoCore(PointCore):
    """NanoTrack over B targets: the engine's point-based core on the network's own grid.

    With ``config.opencv`` empty it is the original tracker (the engine's float64 §1 loop, uint8 crops);
    any :data:`OPENCV_STEPS` switch it to cv2.TrackerNano's float32 procedure with those steps adopted
    (:meth:`start` / :meth:`step` below, batched the same way).
    """

    name = "nanotrack"

    def __init__(self, model: torch.nn.Module, config: NanoTrackConfig, device: torch.device):
        Core.__init__(self, model, config, device)  # stride and score map are the network's: no config check
        self._cache = {}
        size = int(model.score_size)
        if config.output_size is not None and config.output_size != size:
            raise ConfigError(
                f"The config is for a {config.output_size}×{config.output_size} score map, "
                f"the model gives {size}×{size}.",
                hint="Use the preset of the weights' version (v1, v2: 16; v3: 15).",
            )
        self.stride = int(model.stride)
        self.steps = frozenset(config.opencv)

    def score_size(self, instance: int) -> int:
        return int(self.model.score_size)

    def _make_grid(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        grid = point_grid(size, self.stride, device=self.device)
        window = hann_window(size, device=self.device).reshape(-1)
        if self.steps:  # cv2.TrackerNano's float32 procedure
            window = opencv_window(size, self.device) if "window" in self.steps else window.to(torch.float32)
        return grid, window

    def finish(self, frames, frame_index, sub, instance, out, sel, scale_z, s_x, new_centre, new_size):
        """The engine's update; the result also carries the penalised score of the chosen point."""
        state, results = super().finish(frames, frame_index, sub, instance, out, sel, scale_z, s_x, new_centre,
                                        new_size)
        _, window = self.grid(instance)
        lam = self.config.window_influence
        pscore = sel.penalty * sel.score * (1 - lam) + window[sel.index] * lam
        for result, value in zip(results, pscore.tolist(), strict=True):
            result.extra["pscore"] = value
        return state, results

    # ------------------------------------------------------------------ cv2.TrackerNano's steps

    def _frames_in(self, frames):
        """The frames the network path sees: channels reversed under the ``rgb`` step."""
        return [f.flip(1) for f in frames] if "rgb" in self.steps else list(frames)

    def _crop_at(self, frames, frame_index, centre, side, out_size, avg) -> torch.Tensor:
        """uint8 crops; under ``geometry`` each starts at int(c) − (side + 1)//2."""
        centre, side = centre.to(torch.float64), side.to(torch.float64)
        if "geometry" in self.steps:
            centre = origin_centres(torch.trunc(centre) - torch.floor((side[:, None] + 1) / 2), side)
        return crop_targets(frames, frame_index, centre, side, out_size, avg, quantize=True)

    def _pad_colours(self, frames, frame_index) -> torch.Tensor:
        """The frames' mean colours, rounded half to even like ``saturate_cast<uchar>`` (``padding``)."""
        return torch.round(frame_means(frames, frame_index))

    def start(self, frames, frame_index, boxes) -> State:
        if not self.steps:
            return super().start(frames, frame_index, boxes)
        steps, f32 = self.steps, torch.float32
        frames = self._frames_in(frames)
        frame_index = np.asarray(frame_index, dtype=np.int64)
        frame_sizes = np.array([[frames[i].shape[3], frames[i].shape[2]] for i in frame_index], np.int64)
        boxes = np.asarray(boxes, dtype=np.float64)
        if "geometry" in steps:
            rects = [opencv_rect(b, (int(fs[0]), int(fs[1]))) for b, fs in zip(boxes, frame_sizes, strict=True)]
            rect = torch.tensor(rects, dtype=f32).reshape(-1, 4)
            size = rect[:, 2:]
            pos = rect[:, :2] + size * 0.5
        else:
            pos = torch.from_numpy(boxes[:, :2] + (boxes[:, 2:] - 1) / 2).to(f32)
            size = torch.from_numpy(boxes[:, 2:].copy()).to(f32)
        total = size.sum(dim=1)
        extent = torch.sqrt((size[:, 0] + 0.5 * total) * (size[:, 1] + 0.5 * total))
        s_z = torch.trunc(extent) if "geometry" in steps else torch.round(extent)
        pos, size = pos.to(self.device), size.to(self.device)
        avg = self._pad_colours(frames, frame_index) if "padding" in steps else frame_means(frames, frame_index).floor()
        z = self._crop_at(frames, frame_index, pos, s_z.to(self.device), self.config.exemplar_size, avg)
        return {
            "centre": pos,
            "size": size,
            "avg": avg,
            "frame_size": torch.as_tensor(frame_sizes, dtype=torch.float64, device=self.device),
            "zf": self.model.template(z),
            "instance": np.full(len(boxes), self.config.instance_size, np.int64),
        }

    def step(self, frames, frame_index, state):
        if not self.steps:
            return super().step(frames, frame_index, state)
        cfg, steps, f32 = self.config, self.steps, torch.float32
        frames = self._frames_in(frames)
        pos, size = state["centre"], state["size"]
        if "geometry" in steps:
            total = torch.trunc(size.sum(dim=1))
            s_z = torch.sqrt((size[:, 0] + cfg.context_amount * total) * (size[:, 1] + cfg.context_amount * total))
            s_x = torch.trunc(s_z * (cfg.instance_size // cfg.exemplar_size))
        else:
            pad = cfg.context_amount * size.sum(dim=1)
            s_z = torch.sqrt((size[:, 0] + pad) * (size[:, 1] + pad))
            s_x = torch.round(s_z * (cfg.instance_size / cfg.exemplar_size))
        scale_z = (cfg.exemplar_size / s_z)[:, None]
        target = size * scale_z
        avg = self._pad_colours(frames, frame_index) if "padding" in steps else state["avg"]
        x = self._crop_at(frames, frame_index, pos, s_x, cfg.instance_size, avg)
        out = self.model.search(x, state["zf"])
        b = x.shape[0]
        score = torch.softmax(out["cls"].reshape(b, 2, -1).to(f32), dim=1)[:, 1]
        ltrb = out["loc"].reshape(b, 4, -1).to(f32)
        half = cfg.instance_size // 2
        points, window = self.grid(cfg.instance_size)
        grid = points.to(f32) + half
        x1, y1 = grid[:, 0] - ltrb[:, 0], grid[:, 1] - ltrb[:, 1]
        x2, y2 = grid[:, 0] + ltrb[:, 2], grid[:, 1] + ltrb[:, 3]
        pw, ph = x2 - x1, y2 - y1
        reference = pos if "scale_penalty" in steps else target
        s_c = change(padded_side(pw, ph) / padded_side(reference[:, :1], reference[:, 1:]))
        r_c = change((target[:, :1] / target[:, 1:]) / (pw / ph))
        penalty = torch.exp((r_c * s_c - 1) * cfg.penalty_k * -1)
        pscore = penalty * score * (1.0 - cfg.window_influence) + window * cfg.window_influence
        best = torch.argmax(pscore, dim=1)  # first maximum in row-major order, like cv::minMaxIdx
        rows = torch.arange(b, device=best.device)

        def at(t: torch.Tensor) -> torch.Tensor:
            return t[rows, best]

        centre = torch.stack([(at(x1) + at(x2)) / 2, (at(y1) + at(y2)) / 2], dim=1)
        shift = (centre - half) / scale_z
        pred = torch.stack([at(pw), at(ph)], dim=1) / scale_z
        previous = target / scale_z if "geometry" in steps else size
        lr = (at(penalty) * at(score) * cfg.lr)[:, None]
        limit = state["frame_size"].to(f32)
        new_pos = torch.minimum(torch.clamp(pos + shift, min=0), limit)
        new_size = torch.minimum(torch.clamp(pred * lr + (1 - lr) * previous, min=cfg.min_size), limit)
        box = torch.cat([new_pos - new_size / 2, new_size], dim=1)
        if "int_box" in steps:
            box = torch.trunc(box)
        host = torch.cat([box, at(score)[:, None], at(pscore)[:, None]], dim=1).to(torch.float64).cpu().numpy()
        new_state = {**state, "centre": new_pos, "size": new_size, "avg": avg}
        return new_state, [result_from_row(r, extra={"pscore": float(r[5])}) for r in host]


class NanoTrackTracker(SiameseTracker):
    """Single-object NanoTrack tracker over any model with ``template``, ``search``, ``score_size``, ``stride``.

    A batch of one through :class:`NanoCore`; ``BatchedTracker(tracker)`` tracks many targets at once.
    """

    def __init__(self, model: torch.nn.Module, config: NanoTrackConfig | None = None, device: Any = None):
        config = config or NanoTrackConfig()
        device = torch.device(device) if device is not None else next(model.parameters()).device
        super().__init__(NanoCore(model.to(device).eval(), config, device), name="nanotrack")


def resolve_weights(weights: str | Path | None) -> str | Path:
    """The weights to load: the argument (a path or a zoo name), else ``$SIAMKIT_NANOTRACK``, else a zoo entry.

    The zoo entry is one made by :func:`siamkit.importers.nanotrack.convert_to_zoo` and named
    ``nanotrack_v2`` (or ``nanotrack_v3``, ``nanotrack_v1``) in a zoo folder (``SIAMKIT_ZOO``).
    """
    if weights is not None:
        return weights
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        if not Path(env).is_file():
            raise WeightsError(f"{WEIGHTS_ENV} points to {env}, which is not a file.")
        return Path(env)
    from siamkit import zoo

    names = {entry.name for entry in zoo.list_models()}
    for name in ZOO_NAMES:
        if name in names:
            return name
    raise WeightsError(
        "No NanoTrack weights: siamkit does not ship them (third-party, Apache-2.0).",
        hint=(
            "Download nanotrackv2.pth (or v1/v3) from https://github.com/HonglinChu/SiamTrackers "
            "(NanoTrack/models/pretrained/) and pass weights=PATH, or set SIAMKIT_NANOTRACK=PATH; "
            "siamkit.importers.nanotrack.convert_to_zoo turns it into a zoo entry (nanotrack_v2) that is "
            "then found by name."
        ),
    )


def load_nanotrack_model(weights: str | Path | None = None, device: Any = None) -> torch.nn.Module:
    """NanoTrack v1, v2 or v3 from a ``nanotrackv*.pth`` checkpoint, a converted ``.safetensors`` file or a zoo name."""
    from siamkit import zoo
    from siamkit.importers.nanotrack import ARCHITECTURES, load_nanotrack

    weights = resolve_weights(weights)
    if Path(weights).suffix in (".pth", ".pt", ".tar"):
        return load_nanotrack(weights, device=device)
    model, entry = zoo.load_model(weights, device=device)
    if entry.architecture not in ARCHITECTURES.values():
        raise WeightsError(
            f"{weights} holds a {entry.architecture!r} model, not a NanoTrack one "
            f"({', '.join(ARCHITECTURES.values())}).",
            hint="Pass nanotrackv{1,2,3}.pth or the zoo entry made from it by convert_to_zoo.",
        )
    return model


def _opencv_option(value: Any) -> tuple[str, ...] | bool | None:
    """``opencv=`` builder option: True/"all" → True (preset ``opencv``), False/"" → (), else the listed steps."""
    if value is None or value is True:
        return value
    if value is False:
        return ()
    if isinstance(value, str):
        if value.strip().lower() in ("all", "true", "1", "yes"):
            return True
        value = [v for v in value.replace(" ", "").split(",") if v and v.lower() not in ("false", "0", "no", "none")]
    return tuple(value)


@TRACKERS.register("nanotrack")
def builder(
    weights: str | Path | None = None,
    device: Any = None,
    config: Any = None,
    preset: str | None = None,
    **options: Any,
) -> NanoTrackTracker:
    """Create the NanoTrack tracker for v1, v2 or v3 weights (told by the checkpoint's keys).

    The config is ``config`` (a :class:`NanoTrackConfig` or YAML path), else the ``preset`` of
    ``configs/nanotrack.yaml``, else the preset of the weights' version (``v1``, ``v2``, ``v3``);
    ``opencv=True`` picks preset ``opencv`` (cv2.TrackerNano's procedure and constants); a list of
    :data:`OPENCV_STEPS` adopts only those steps (the constants stay the preset's). Other ``options``
    override :class:`NanoTrackConfig` fields.
    """
    from siamkit.trackers.build import reject_unknown_options, resolve_config

    steps = _opencv_option(options.pop("opencv", None))
    reject_unknown_options(NanoTrackConfig, "nanotrack", options)  # before the weights load
    device = resolve_device(device)
    model = load_nanotrack_model(weights, device=device)
    if config is None and preset is None:
        preset = "opencv" if steps is True else f"v{getattr(model, 'version', 2)}"
    if steps is not None and steps is not True:
        options["opencv"] = steps
    cfg = resolve_config(NanoTrackConfig, "nanotrack", config=config, preset=preset, overrides=options or None)
    return NanoTrackTracker(model, cfg, device=device)
