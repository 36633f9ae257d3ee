"""NanoTrack tracker (v1, v2, v3): the pretrained HonglinChu models with their published test-time procedure.

Per frame: crop a square of side s_x = round(s_z · 255/127) around the previous centre (mean-colour
padding), run the search branch against the cached template features, score the 16×16 grid points
(softmax channel 1), decode each point's (l, t, r, b) into a box, penalise scale and aspect-ratio
changes, mix in a Hann window, take the best point and move the box there with a learning rate.
The state, network and post-processing stay in torch on the model's device; one small copy per frame
(box and score) leaves it.

Constants follow the authors' ``configv{1,2,3}.yaml`` (TRACK), kept as presets ``v1``/``v2``/``v3`` in
``configs/nanotrack.yaml``; the builder picks the preset of the loaded weights' version. v2: penalty_k 0.150,
window_influence 0.490, lr 0.385, exemplar 127, instance 255, context 0.5, stride 16, 16×16 points at
−128, −112, …, +112 px (v3: 15×15 points at −112 … +112).

``cv2.TrackerNano`` (OpenCV ``modules/video/src/tracking/tracker_nano.cpp``) runs the same v2 graphs
but is a different tracker; :data:`OPENCV_STEPS` names each place it departs from the original, and
``NanoTrackConfig.opencv`` adopts any of them (preset ``opencv`` adopts all, with OpenCV's constants
window 0.455, penalty_k 0.055, lr 0.37). The original's behaviour stays the default.
By default the crops are made like the original's: padding colour truncated to uint8 and the square
resized with OpenCV's fixed-point uint8 bilinear arithmetic (:func:`crop_like_original`, in torch on the
device, bit-exact with ``cv2.resize`` of OpenCV 5.0 on x86), so the network sees the very same pixels. For
NumPy frames on a CPU the same crop is taken with OpenCV itself (:func:`crop_cv2_uint8`, ~0.2 ms instead of
several ms of gathers). ``uint8_crops=False`` uses
the float crop of :func:`siamkit.ops.crop.crop_batch` instead (differs by up to ±1 grey level, and the
trajectories then drift apart by a few tenths of a pixel).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from siamkit.config import TRACKERS
from siamkit.errors import ConfigError, WeightsError
from siamkit.ops.crop import crop_batch, frame_to_tensor
from siamkit.trackers.base import Tracker, TrackResult
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
class NanoTrackConfig:
    """Test-time hyper-parameters of NanoTrack (``configv{1,2,3}.yaml``, section TRACK; defaults: v2).

    ``output_size`` is the score-map side the config was made for (checked against the model; ``None``
    takes the model's). ``opencv`` lists the :data:`OPENCV_STEPS` to adopt (empty: the original tracker).
    """

    exemplar_size: int = 127
    instance_size: int = 255
    context_amount: float = 0.5
    penalty_k: float = 0.150
    window_influence: float = 0.490
    lr: float = 0.385
    min_size: float = 10.0
    uint8_crops: bool = True
    output_size: int | None = None
    opencv: tuple[str, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.opencv) - set(OPENCV_STEPS))
        if unknown:
            raise ConfigError(
                f"Unknown OpenCV step(s) {', '.join(unknown)} in NanoTrackConfig.opencv.",
                hint=f"Known: {', '.join(OPENCV_STEPS)}.",
            )


_COEF_SCALE = 1 << 11  # OpenCV's INTER_RESIZE_COEF_SCALE (11-bit fixed-point weights)


def _cv2_linear_taps(src: torch.Tensor, dst: int, clamp: bool) -> tuple[torch.Tensor, ...]:
    """Source indices and fixed-point weights of ``cv2.resize`` INTER_LINEAR along one axis.

    ``src`` is the source length (0-d tensor). OpenCV computes the offset in float32 and rounds the
    weights to 11 bits; columns are clamped (weight moved onto the border pixel) while rows keep
    their weights and only have their index clamped.
    """
    i = torch.arange(dst, device=src.device, dtype=torch.float64)
    pos = ((i + 0.5) * (src.to(torch.float64) / dst) - 0.5).to(torch.float32)
    start = torch.floor(pos)
    frac = pos - start
    start = start.to(torch.long)
    last = src.to(torch.long) - 1
    if clamp:
        low, high = start < 0, start >= last
        frac = torch.where(low | high, torch.zeros_like(frac), frac)
        start = torch.where(low, torch.zeros_like(start), torch.minimum(start, last))
    w0 = torch.round((1 - frac) * _COEF_SCALE).to(torch.int32)
    w1 = torch.round(frac * _COEF_SCALE).to(torch.int32)
    return start.clamp(min=0), torch.minimum(start + 1, last).clamp(min=0), w0, w1


def crop_like_original(
    frame: torch.Tensor,
    centre: torch.Tensor,
    side: torch.Tensor,
    out_size: int,
    avg: torch.Tensor,
    origin: torch.Tensor | None = None,
) -> torch.Tensor:
    """The original tracker's crop, bit for bit, computed on ``frame``'s device.

    The original pads the frame with the uint8-truncated mean colour, cuts the ``side``-pixel square
    at ``floor(c − (side + 1)/2 + 0.5)`` (the :mod:`siamkit.ops.crop` convention) and resizes it with
    ``cv2.resize`` on uint8. Here the resize is OpenCV's fixed-point arithmetic (horizontal 11-bit
    weights, then the SIMD vertical rounding ``(((b0·(S0>>4))>>16) + ((b1·(S1>>4))>>16) + 2) >> 2``)
    and only the pixels it reads are gathered, so the cost is O(out²) whatever the crop size.

    Args:
        frame: 1×C×H×W uint8 frame. centre: (cx, cy). side: crop side (rounded here).
        out_size: output side. avg: C padding colours (truncated to integers here).
        origin: optional (x0, y0) top-left pixel replacing the one computed from ``centre``.

    Returns:
        1×C×out×out float32 crop with integer values 0–255.
    """
    _, channels, height, width = frame.shape
    side = torch.clamp(torch.round(side.to(torch.float64)), min=1)
    if origin is None:
        origin = torch.floor(centre.to(torch.float64) - (side + 1) / 2 + 0.5).to(torch.long)
    origin = origin.to(torch.long)
    x0, x1, a0, a1 = _cv2_linear_taps(side, out_size, clamp=True)
    y0, y1, b0, b1 = _cv2_linear_taps(side, out_size, clamp=False)
    fill = avg.to(torch.float64).floor().to(torch.int32)
    # Gather the (2·out)×(2·out) pixels the resize reads — rows y0 ∪ y1, columns x0 ∪ x1 — in H×W×C
    # order (the frame's memory layout when it came from an H×W×3 array).
    rows = torch.cat([y0, y1]) + origin[1]
    cols = torch.cat([x0, x1]) + origin[0]
    inside = ((rows >= 0) & (rows < height))[:, None, None] & ((cols >= 0) & (cols < width))[None, :, None]
    hwc = frame[0].permute(1, 2, 0)
    vals = hwc.index_select(0, rows.clamp(0, height - 1)).index_select(1, cols.clamp(0, width - 1))
    vals = torch.where(inside, vals.to(torch.int32), fill)
    n = out_size
    # Horizontal pass (values ≤ 255·2048), then OpenCV's vertical fixed-point rounding.
    horiz = (vals[:, :n] * a0[:, None] + vals[:, n:] * a1[:, None]) >> 4
    out = (((b0[:, None, None] * horiz[:n]) >> 16) + ((b1[:, None, None] * horiz[n:]) >> 16) + 2) >> 2
    out = out.permute(2, 0, 1)
    return out.clamp(0, 255).to(torch.float32)[None]


def crop_cv2_uint8(
    frame: np.ndarray, centre, side: int, out_size: int, avg: np.ndarray, origin: tuple[int, int] | None = None
) -> torch.Tensor:
    """CPU twin of :func:`crop_like_original` on an H×W×3 uint8 array: uint8 padding, ``cv2.resize``.

    ``origin`` (x0, y0) overrides the top-left pixel (OpenCV's TrackerNano places its crops differently).
    """
    side = max(int(side), 1)
    height, width = frame.shape[:2]
    if origin is None:
        x0 = math.floor(centre[0] - (side + 1) / 2 + 0.5)
        y0 = math.floor(centre[1] - (side + 1) / 2 + 0.5)
    else:
        x0, y0 = int(origin[0]), int(origin[1])
    xs, ys, xe, ye = max(x0, 0), max(y0, 0), min(x0 + side, width), min(y0 + side, height)
    if xs == x0 and ys == y0 and xe == x0 + side and ye == y0 + side:
        patch = frame[ys:ye, xs:xe]
    else:
        patch = np.empty((side, side, frame.shape[2]), np.uint8)
        patch[:] = np.floor(avg).astype(np.uint8)
        if xe > xs and ye > ys:
            patch[ys - y0 : ye - y0, xs - x0 : xe - x0] = frame[ys:ye, xs:xe]
    if side != out_size:
        patch = cv2.resize(patch, (out_size, out_size), interpolation=cv2.INTER_LINEAR)
    return torch.from_numpy(np.ascontiguousarray(patch.transpose(2, 0, 1))).to(torch.float32)[None]


def grid_points(score_size: int, stride: int, device: Any = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(S·S)×2 point offsets (x, y) from the search-crop centre, row-major; starts at −(S//2)·stride."""
    offsets = (torch.arange(score_size, device=device, dtype=dtype) - score_size // 2) * stride
    ys, xs = torch.meshgrid(offsets, offsets, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)


def hann_window(score_size: int, device: Any = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Flattened outer product of two symmetric Hann windows (peak 1 for odd S, like ``numpy.hanning``)."""
    if score_size == 1:
        return torch.ones(1, device=device, dtype=dtype)
    n = torch.arange(score_size, device=device, dtype=dtype)
    h = 0.5 - 0.5 * torch.cos(2 * math.pi * n / (score_size - 1))
    return torch.outer(h, h).reshape(-1)


def decode(cls: torch.Tensor, loc: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """2×S×S logits and 4×S×S (l, t, r, b) → target scores (S·S) and boxes (S·S)×4 (cx, cy, w, h).

    Boxes are in search-crop pixels relative to the crop centre; order is row-major over the grid.
    """
    score = torch.softmax(cls.reshape(2, -1).to(points.dtype), dim=0)[1]
    ltrb = loc.reshape(4, -1).to(points.dtype)
    x1 = points[:, 0] - ltrb[0]
    y1 = points[:, 1] - ltrb[1]
    x2 = points[:, 0] + ltrb[2]
    y2 = points[:, 1] + ltrb[3]
    boxes = torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=1)
    return score, boxes


def _change(r: torch.Tensor) -> torch.Tensor:
    return torch.maximum(r, 1.0 / r)


def _padded_size(w: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    pad = (w + h) * 0.5
    return torch.sqrt((w + pad) * (h + pad))


def penalised_scores(
    score: torch.Tensor,
    boxes: torch.Tensor,
    target_size: torch.Tensor,
    window: torch.Tensor,
    penalty_k: float,
    window_influence: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale/aspect penalty and cosine window → (pscore, penalty), both of length S·S.

    ``target_size`` is the current (w, h) already scaled into search-crop pixels.
    """
    w, h = boxes[:, 2], boxes[:, 3]
    s_c = _change(_padded_size(w, h) / _padded_size(target_size[0], target_size[1]))
    r_c = _change((target_size[0] / target_size[1]) / (w / h))
    penalty = torch.exp(-(r_c * s_c - 1) * penalty_k)
    pscore = penalty * score * (1 - window_influence) + window * window_influence
    return pscore, penalty


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


class NanoTrackTracker(Tracker):
    """Single-object NanoTrack tracker over any model with ``template``, ``search``, ``score_size``, ``stride``.

    With ``config.opencv`` empty it is the original tracker (float64 state, bit-exact crops); any
    :data:`OPENCV_STEPS` switch it to cv2.TrackerNano's float32 procedure with those steps adopted.
    """

    name = "nanotrack"

    def __init__(self, model: torch.nn.Module, config: NanoTrackConfig | None = None, device: Any = None):
        super().__init__()
        self.config = config or NanoTrackConfig()
        if device is None:
            device = next(model.parameters()).device
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        size = int(model.score_size)
        if self.config.output_size is not None and self.config.output_size != size:
            raise ConfigError(
                f"The config is for a {self.config.output_size}×{self.config.output_size} score map, "
                f"the model gives {size}×{size}.",
                hint="Use the preset of the weights' version (v1, v2: 16; v3: 15).",
            )
        self.points = grid_points(size, int(model.stride), self.device)
        self.window = hann_window(size, self.device)
        self._state: torch.Tensor | None = None  # cx, cy, w, h (float64, on device)
        self._avg: torch.Tensor | None = None
        self._zf: torch.Tensor | None = None

    def _crop(self, frame: Any, centre: torch.Tensor, side: torch.Tensor, out_size: int) -> torch.Tensor:
        if isinstance(frame, np.ndarray) and self.device.type == "cpu" and self.config.uint8_crops:
            # Same pixels as crop_like_original (tested bit-exact), ~100× cheaper on a CPU: OpenCV itself.
            return crop_cv2_uint8(frame, centre.tolist(), int(torch.round(side)), out_size, self._avg.numpy())
        frame_t = frame_to_tensor(frame, self.device)
        if not self.config.uint8_crops:
            return crop_batch(frame_t, centre[None], side.reshape(1), out_size, self._avg[None])
        return crop_like_original(frame_t, centre, side, out_size, self._avg)

    def _context_side(self) -> torch.Tensor:
        w, h = self._state[2], self._state[3]
        extra = self.config.context_amount * (w + h)
        return torch.sqrt((w + extra) * (h + extra))

    @torch.no_grad()
    def _init(self, frame: Any, box: np.ndarray) -> None:
        if self.config.opencv:
            self._init_opencv(frame, box)
            return
        x, y, w, h = (float(v) for v in box)
        self._state = torch.tensor([x + (w - 1) / 2, y + (h - 1) / 2, w, h], dtype=torch.float64, device=self.device)
        frame_t = frame_to_tensor(frame, self.device)
        self._avg = frame_t.to(torch.float64).mean(dim=(0, 2, 3))
        s_z = torch.round(self._context_side())
        z = self._crop(frame, self._state[:2], s_z, self.config.exemplar_size)
        self._zf = self.model.template(z)

    @torch.no_grad()
    def _track(self, frame: Any) -> TrackResult:
        if self.config.opencv:
            return self._track_opencv(frame)
        cfg = self.config
        s_z = self._context_side()
        scale_z = cfg.exemplar_size / s_z
        s_x = torch.round(s_z * (cfg.instance_size / cfg.exemplar_size))
        x = self._crop(frame, self._state[:2], s_x, cfg.instance_size)
        out = self.model.search(x, self._zf)
        score, boxes = decode(out["cls"][0], out["loc"][0], self.points)
        pscore, penalty = penalised_scores(
            score, boxes, self._state[2:] * scale_z, self.window, cfg.penalty_k, cfg.window_influence
        )
        best = torch.argmax(pscore)
        bbox = boxes[best] / scale_z
        lr = penalty[best] * score[best] * cfg.lr
        width, height = self._frame_size
        cx = torch.clamp(self._state[0] + bbox[0], 0, width)
        cy = torch.clamp(self._state[1] + bbox[1], 0, height)
        w = torch.clamp(self._state[2] * (1 - lr) + bbox[2] * lr, cfg.min_size, width)
        h = torch.clamp(self._state[3] * (1 - lr) + bbox[3] * lr, cfg.min_size, height)
        self._state = torch.stack([cx, cy, w, h])
        result = torch.stack([cx - w / 2, cy - h / 2, w, h, score[best], pscore[best]]).cpu().numpy()
        return TrackResult(box=result[:4].copy(), score=float(result[4]), extra={"pscore": float(result[5])})

    # ------------------------------------------------------------------ cv2.TrackerNano's steps

    def _steps(self) -> frozenset[str]:
        return frozenset(self.config.opencv)

    def _frame_in(self, frame: Any) -> Any:
        """The frame the network path sees: channels reversed under the ``rgb`` step."""
        if "rgb" not in self._steps():
            return frame
        if isinstance(frame, np.ndarray):
            return np.ascontiguousarray(frame[:, :, ::-1])
        return frame.flip(-1)

    def _pad_colour(self, frame: Any) -> torch.Tensor:
        """Padding colour: the frame's mean, rounded half to even like ``saturate_cast<uchar>`` (``padding``)."""
        if isinstance(frame, np.ndarray):
            mean = torch.from_numpy(frame.reshape(-1, frame.shape[2]).mean(0, dtype=np.float64))
        else:
            mean = frame.reshape(-1, frame.shape[2]).to(torch.float64).mean(0)
        return torch.round(mean).to(self.device)

    def _crop_at(self, frame: Any, centre: torch.Tensor, side: int, out_size: int) -> torch.Tensor:
        """Crop for the OpenCV-step path; under ``geometry`` the origin is int(c) − (side + 1)//2."""
        origin = None
        if "geometry" in self._steps():
            origin = (int(torch.trunc(centre[0])) - (side + 1) // 2, int(torch.trunc(centre[1])) - (side + 1) // 2)
        if isinstance(frame, np.ndarray) and self.device.type == "cpu" and self.config.uint8_crops:
            return crop_cv2_uint8(frame, centre.tolist(), side, out_size, self._avg.cpu().numpy(), origin=origin)
        frame_t = frame_to_tensor(frame, self.device)
        side_t = torch.tensor(float(side), dtype=torch.float64, device=self.device)
        origin_t = None if origin is None else torch.tensor(origin, device=self.device)
        return crop_like_original(frame_t, centre.to(torch.float64), side_t, out_size, self._avg, origin=origin_t)

    def _init_opencv(self, frame: Any, box: np.ndarray) -> None:
        steps, f32 = self._steps(), torch.float32
        frame = self._frame_in(frame)
        if "geometry" in steps:
            x, y, w, h = (float(v) for v in opencv_rect(box, self._frame_size))
            pos = torch.tensor([x, y], dtype=f32) + torch.tensor([w, h], dtype=f32) * 0.5
        else:
            x, y, w, h = (float(v) for v in box)
            pos = torch.tensor([x + (w - 1) / 2, y + (h - 1) / 2], dtype=f32)
        size = torch.tensor([w, h], dtype=f32)
        total = size.sum()
        extent = torch.sqrt((size[0] + 0.5 * total) * (size[1] + 0.5 * total))
        s_z = int(torch.trunc(extent)) if "geometry" in steps else int(torch.round(extent))
        self._state = torch.cat([pos, size]).to(self.device)
        if "padding" in steps:
            self._avg = self._pad_colour(frame)
        else:
            self._avg = frame_to_tensor(frame, self.device).to(torch.float64).mean(dim=(0, 2, 3)).floor()
        z = self._crop_at(frame, self._state[:2], s_z, self.config.exemplar_size)
        self._zf = self.model.template(z)
        self._window32 = (
            opencv_window(int(self.model.score_size), self.device)
            if "window" in steps
            else self.window.to(f32)
        )

    def _track_opencv(self, frame: Any) -> TrackResult:
        cfg, steps, f32 = self.config, self._steps(), torch.float32
        frame = self._frame_in(frame)
        pos, size = self._state[:2], self._state[2:]
        if "geometry" in steps:
            total = torch.trunc(size.sum())
            s_z = torch.sqrt((size[0] + cfg.context_amount * total) * (size[1] + cfg.context_amount * total))
            s_x = int(torch.trunc(s_z * (cfg.instance_size // cfg.exemplar_size)))
        else:
            pad = cfg.context_amount * size.sum()
            s_z = torch.sqrt((size[0] + pad) * (size[1] + pad))
            s_x = int(torch.round(s_z * (cfg.instance_size / cfg.exemplar_size)))
        scale_z = cfg.exemplar_size / s_z
        target = size * scale_z
        if "padding" in steps:
            self._avg = self._pad_colour(frame)
        x = self._crop_at(frame, pos, s_x, cfg.instance_size)
        out = self.model.search(x, self._zf)
        score = torch.softmax(out["cls"][0].reshape(2, -1).to(f32), dim=0)[1]
        ltrb = out["loc"][0].reshape(4, -1).to(f32)
        half = cfg.instance_size // 2
        grid = self.points.to(f32) + half
        x1, y1 = grid[:, 0] - ltrb[0], grid[:, 1] - ltrb[1]
        x2, y2 = grid[:, 0] + ltrb[2], grid[:, 1] + ltrb[3]
        pw, ph = x2 - x1, y2 - y1
        reference = pos if "scale_penalty" in steps else target
        s_c = _change(_padded_size(pw, ph) / _padded_size(reference[0], reference[1]))
        r_c = _change((target[0] / target[1]) / (pw / ph))
        penalty = torch.exp((r_c * s_c - 1) * cfg.penalty_k * -1)
        pscore = penalty * score * (1.0 - cfg.window_influence) + self._window32 * cfg.window_influence
        best = torch.argmax(pscore)  # first maximum in row-major order, like cv::minMaxIdx
        centre = torch.stack([(x1[best] + x2[best]) / 2, (y1[best] + y2[best]) / 2])
        shift = (centre - half) / scale_z
        pred = torch.stack([pw[best], ph[best]]) / scale_z
        previous = target / scale_z if "geometry" in steps else size
        lr = penalty[best] * score[best] * cfg.lr
        width, height = self._frame_size
        limit = torch.tensor([width, height], dtype=f32, device=self.device)
        new_pos = torch.minimum(torch.clamp(pos + shift, min=0), limit)
        new_size = torch.minimum(torch.clamp(pred * lr + (1 - lr) * previous, min=cfg.min_size), limit)
        self._state = torch.cat([new_pos, new_size])
        box = torch.cat([new_pos - new_size / 2, new_size])
        if "int_box" in steps:
            box = torch.trunc(box)
        result = torch.cat([box, score[best][None], pscore[best][None]]).to(torch.float64).cpu().numpy()
        return TrackResult(box=result[:4].copy(), score=float(result[4]), extra={"pscore": float(result[5])})


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
    from siamkit.trackers.build import resolve_config

    steps = _opencv_option(options.pop("opencv", None))
    known = {f.name for f in dataclasses.fields(NanoTrackConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(
            f"Unknown NanoTrack option(s): {', '.join(unknown)}.",
            hint=f"Known: config, preset, opencv, {', '.join(sorted(known))}.",
        )
    device = resolve_device(device)
    model = load_nanotrack_model(weights, device=device)
    if config is None and preset is None:
        preset = "opencv" if steps is True else f"v{getattr(model, 'version', 2)}"
    if steps is not None and steps is not True:
        options["opencv"] = steps
    cfg = resolve_config(NanoTrackConfig, "nanotrack", config=config, preset=preset, overrides=options or None)
    return NanoTrackTracker(model, cfg, device=device)
