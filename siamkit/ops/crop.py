"""Square sub-window crops with mean-colour padding, resized to the network input size.

The crop of side ``s`` centred on ``(cx, cy)`` covers pixel columns ``xmin … xmin + s − 1``
with ``xmin = floor(cx − (s + 1)/2 + 0.5)`` (the convention of the published Siamese
trackers); pixels outside the image take the padding colour ``avg``. The square is then
resized bilinearly (half-pixel centres, no antialiasing, edge pixels of the square replicated)
to ``out × out``.

:func:`crop_numpy` is the float reference (NumPy + OpenCV on one image). :func:`crop_batch`
is the batched torch version: it crops many squares from many frames at once, on the device
the frames live on, and agrees with the reference to about 1e-4.

``quantize=True`` crops like the reference implementations (pysot, siamban, SiamMask, DaSiamRPN,
NanoTrack): the padding colour is truncated to uint8 and the square is resized by OpenCV on uint8, so
the network sees exactly their pixels (the float crop differs by up to ±1 grey level). On the host
that is OpenCV itself (:func:`crop_numpy`, :func:`crop_cv2_uint8`); on any other device
:func:`crop_like_original` computes OpenCV's fixed-point arithmetic in torch, bit for bit.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from siamkit.errors import FrameError


def crop_origin(centre: float, size: int) -> int:
    """First pixel index of a crop of ``size`` pixels centred on ``centre``."""
    return int(math.floor(centre - (size + 1) / 2 + 0.5))


def siamfc_crop_centres(centres: torch.Tensor, sizes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """siamfc-pytorch's crop convention, as the centres and sides that give it in :func:`crop_batch`.

    siamfc-pytorch (``ops.crop_and_resize``) starts a crop of side ``s = round(size)`` at
    ``round(c − (s − 1)/2)`` (round half to even), i.e. centred on ``c``; the convention above starts it at
    ``floor(c − s/2)``, one pixel further left/up. The returned centre ``origin + s/2`` makes
    :func:`crop_origin` land on siamfc-pytorch's origin exactly.
    """
    s = torch.clamp(torch.round(sizes.to(torch.float64)), min=1)
    origin = torch.round(centres.to(torch.float64) - (s[:, None] - 1) / 2)
    return origin + s[:, None] / 2, s


def origin_centres(origins: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """Centres that make :func:`crop_origin` start crops of side ``round(sizes)`` at ``origins`` (B×2), exactly.

    For crops placed by their top-left pixel (cv2.TrackerNano's ``int(c) − (side + 1)//2``): the centre
    ``origin + (s + 1)/2`` gives ``floor(origin + 0.5) = origin`` in every crop function here.
    """
    s = torch.clamp(torch.round(sizes.to(torch.float64)), min=1)
    return origins.to(torch.float64) + (s[:, None] + 1) / 2


def crop_numpy(
    image: np.ndarray,
    centre: tuple[float, float],
    size: float,
    out_size: int,
    avg: np.ndarray | tuple[float, float, float] | None = None,
    quantize: bool = False,
    origin: tuple[int, int] | None = None,
) -> np.ndarray:
    """Crop a ``size``-pixel square centred on ``centre`` = (cx, cy) and resize to ``out_size``.

    ``image`` is H×W×C (any dtype); the result is ``out_size × out_size × C`` float32.
    ``avg`` is the padding colour (default: the image's per-channel mean). ``quantize``: uint8
    padding colour (truncated) and uint8 resize, as the reference trackers (``image`` must be uint8).
    ``origin`` (x0, y0): the crop's top-left pixel, instead of the one :func:`crop_origin` gives.
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise FrameError(f"Expected an H×W×C image, got shape {image.shape}.")
    s = max(int(round(size)), 1)
    height, width, channels = image.shape
    avg = image.reshape(-1, channels).mean(0) if avg is None else np.asarray(avg, dtype=np.float64)
    if origin is None:
        x0, y0 = crop_origin(centre[0], s), crop_origin(centre[1], s)
    else:
        x0, y0 = int(origin[0]), int(origin[1])
    dtype = np.uint8 if quantize else np.float32
    patch = np.empty((s, s, channels), dtype)
    patch[:] = avg.astype(dtype)  # float → uint8 truncates, as assigning into the references' uint8 canvas
    ix0, iy0 = max(x0, 0), max(y0, 0)
    ix1, iy1 = min(x0 + s, width), min(y0 + s, height)
    if ix1 > ix0 and iy1 > iy0:
        patch[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0] = image[iy0:iy1, ix0:ix1]
    if s != out_size:
        patch = cv2.resize(patch, (out_size, out_size), interpolation=cv2.INTER_LINEAR)
        if patch.ndim == 2:
            patch = patch[:, :, None]
    return patch.astype(np.float32, copy=False)


def _axis_coords(origin: torch.Tensor, size: torch.Tensor, out_size: int) -> torch.Tensor:
    """Source coordinates (B × out) along one axis, in float64, clamped to the crop square."""
    i = torch.arange(out_size, device=origin.device, dtype=torch.float64)
    scale = size.to(torch.float64)[:, None] / out_size
    u = origin.to(torch.float64)[:, None] + (i[None, :] + 0.5) * scale - 0.5
    lo = origin.to(torch.float64)[:, None]
    hi = lo + size.to(torch.float64)[:, None] - 1
    return torch.minimum(torch.maximum(u, lo), hi)


def crop_batch(
    frames: torch.Tensor,
    centres: torch.Tensor,
    sizes: torch.Tensor,
    out_size: int,
    avg: torch.Tensor,
    frame_index: torch.Tensor | None = None,
    backend: str = "auto",
    quantize: bool = False,
) -> torch.Tensor:
    """Crop B squares from N frames in one go.

    Args:
        frames: N×C×H×W tensor (uint8 or float), on the compute device.
        centres: B×2 crop centres (cx, cy) in image pixels.
        sizes: B crop sides in pixels (rounded to integers, as the trackers do).
        out_size: side of the resized crops.
        avg: B×C padding colours.
        frame_index: B indices into ``frames`` (default: box b uses frame b, or frame 0 when N == 1).
        backend: ``"torch"`` samples on the frames' device (the GPU path); ``"opencv"`` crops each
            window on the host with :func:`crop_numpy`; ``"auto"`` (default) picks OpenCV for CPU
            frames, where it is several times faster, and torch elsewhere. Both agree to ~1e-4.
        quantize: crop like the reference trackers (see the module docstring); on the torch
            backend each crop is OpenCV's fixed-point uint8 resize computed on the device.

    Returns:
        B×C×out×out float32 tensor.
    """
    if frames.ndim != 4:
        raise FrameError(f"Expected frames as N×C×H×W, got shape {tuple(frames.shape)}.")
    device = frames.device
    n, c, height, width = frames.shape
    b = centres.shape[0]
    if frame_index is None:
        frame_index = torch.zeros(b, dtype=torch.long, device=device) if n == 1 else torch.arange(b, device=device)
    if backend not in ("auto", "torch", "opencv"):
        raise ValueError(f"backend must be 'auto', 'torch' or 'opencv', not {backend!r}")
    if backend == "opencv" or (backend == "auto" and device.type == "cpu"):
        return _crop_on_host(frames.cpu(), centres, sizes, out_size, avg, frame_index, quantize).to(device)
    if quantize:
        return _crop_uint8_on_device(frames, centres, sizes, out_size, avg, frame_index)
    sizes = torch.clamp(torch.round(sizes.to(torch.float64)), min=1)
    cen = centres.to(device=device, dtype=torch.float64)
    x0 = torch.floor(cen[:, 0] - (sizes + 1) / 2 + 0.5)
    y0 = torch.floor(cen[:, 1] - (sizes + 1) / 2 + 0.5)
    if (sizes == out_size).all():
        offs = torch.arange(out_size, device=device, dtype=torch.float64)
        u = x0[:, None] + offs
        v = y0[:, None] + offs
    else:
        u = _axis_coords(x0, sizes, out_size)
        v = _axis_coords(y0, sizes, out_size)

    def split(coord: torch.Tensor, limit: int):
        lo = torch.floor(coord)
        frac = (coord - lo).to(torch.float32)
        lo = lo.to(torch.long)
        hi = lo + 1
        valid_lo = (lo >= 0) & (lo < limit)
        valid_hi = (hi >= 0) & (hi < limit)
        return lo.clamp(0, limit - 1), hi.clamp(0, limit - 1), frac, valid_lo, valid_hi

    xl, xh, fx, vxl, vxh = split(u, width)
    yl, yh, fy, vyl, vyh = split(v, height)
    avg = avg.to(device=device, dtype=torch.float32).reshape(b, 1, 1, c)
    fi = frame_index.to(device=device, dtype=torch.long)[:, None, None]

    def gather(ys: torch.Tensor, xs: torch.Tensor, vy: torch.Tensor, vx: torch.Tensor) -> torch.Tensor:
        # Advanced indexing picks exactly B×out×out pixels (channels last) without copying frames.
        vals = frames[fi, :, ys[:, :, None], xs[:, None, :]].to(torch.float32)
        mask = (vy[:, :, None] & vx[:, None, :])[..., None]
        return torch.where(mask, vals, avg)

    fx = fx[:, None, :, None]
    fy = fy[:, :, None, None]
    top = gather(yl, xl, vyl, vxl) * (1 - fx) + gather(yl, xh, vyl, vxh) * fx
    bottom = gather(yh, xl, vyh, vxl) * (1 - fx) + gather(yh, xh, vyh, vxh) * fx
    return (top * (1 - fy) + bottom * fy).permute(0, 3, 1, 2).contiguous()


def _crop_uint8_on_device(frames, centres, sizes, out_size, avg, frame_index) -> torch.Tensor:
    """Torch path of ``quantize``: OpenCV's uint8 bilinear arithmetic, one crop at a time, on the device."""
    index = [int(i) for i in frame_index]
    crops = [
        crop_like_original(frames[j : j + 1], centres[i], sizes[i], out_size, avg[i]) for i, j in enumerate(index)
    ]
    return torch.cat(crops)


def _crop_on_host(frames, centres, sizes, out_size, avg, frame_index, quantize=False) -> torch.Tensor:
    """CPU path: the same crops through OpenCV, touching only each crop's window (several times faster)."""
    images = frames.permute(0, 2, 3, 1).numpy()  # N×H×W×C views, no copy for channels-last storage
    cen = centres.detach().to(torch.float64).cpu().numpy()
    side = sizes.detach().to(torch.float64).cpu().numpy()
    colour = avg.detach().to(torch.float64).cpu().numpy()
    index = frame_index.cpu().numpy()
    crops = [crop_numpy(images[index[i]], cen[i], side[i], out_size, colour[i], quantize) for i in range(len(index))]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()


# --------------------------------------------------------------------------- uint8 crops, bit-exact


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
    """The reference trackers' uint8 crop (``quantize``), bit for bit, computed on ``frame``'s device.

    The reference trackers (NanoTrack's original, pysot, …) pad the frame with the uint8-truncated mean
    colour, cut the ``side``-pixel square at ``floor(c − (side + 1)/2 + 0.5)`` (this module's convention)
    and resize it with ``cv2.resize`` on uint8. Here the resize is OpenCV's fixed-point arithmetic (horizontal 11-bit
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
    """CPU twin of :func:`crop_like_original` on an H×W×3 uint8 array: :func:`crop_numpy` with ``quantize``.

    ``origin`` (x0, y0) overrides the top-left pixel (OpenCV's TrackerNano places its crops differently).
    Returns a 1×C×out×out float32 tensor.
    """
    patch = crop_numpy(frame, centre, side, out_size, avg, quantize=True, origin=origin)
    return torch.from_numpy(np.ascontiguousarray(patch.transpose(2, 0, 1)))[None]


def frame_to_tensor(frame: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """H×W×3 uint8 frame (numpy BGR or torch) → 1×3×H×W uint8 tensor on ``device``."""
    t = torch.from_numpy(np.ascontiguousarray(frame)) if isinstance(frame, np.ndarray) else frame
    return t.to(device, non_blocking=True).permute(2, 0, 1).unsqueeze(0)
