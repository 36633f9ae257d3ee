"""Post-processing of Siamese tracker outputs, batched over targets and kept on the device.

Every function takes tensors whose first dimension is the target (B) and never leaves the
device of its inputs. Geometry runs in float64 (as the NumPy reference trackers do) so that
batched and single-target runs agree to well below a pixel.

Layouts (pysot): an anchor head gives ``cls`` B×2A×S×S whose channel ``c·A + a`` is class
``c`` (0 background, 1 target) of anchor ``a``, and ``loc`` B×4A×S×S whose channel ``j·A + a``
is coordinate ``j`` (dx, dy, dw, dh); a point head is the same with A = 1 and ``loc`` =
(l, t, r, b) distances. Flattened candidates are indexed ``a·S·S + i·S + j``, matching
:func:`siamkit.ops.anchors.anchor_grid`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from siamkit.ops.windows import change_penalty


def foreground_scores(cls: torch.Tensor, anchor_num: int = 1) -> torch.Tensor:
    """Target probability of every candidate: B×(A·S·S).

    Two channels per anchor → softmax over (background, target); one channel per anchor →
    sigmoid.
    """
    b, c, h, w = cls.shape
    cls = cls.to(torch.float64)
    if c == 2 * anchor_num:
        return F.softmax(cls.reshape(b, 2, anchor_num * h * w), dim=1)[:, 1]
    if c == anchor_num:
        return torch.sigmoid(cls.reshape(b, -1))
    raise ValueError(f"cls has {c} channels; expected {2 * anchor_num} or {anchor_num} for {anchor_num} anchor(s).")


def decode_deltas(loc: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Anchor deltas B×4A×S×S → boxes B×N×4 (cx, cy, w, h) in crop pixels from the centre."""
    b = loc.shape[0]
    d = loc.to(torch.float64).reshape(b, 4, -1)
    a = anchors.to(d)
    cx = d[:, 0] * a[:, 2] + a[:, 0]
    cy = d[:, 1] * a[:, 3] + a[:, 1]
    w = torch.exp(d[:, 2]) * a[:, 2]
    h = torch.exp(d[:, 3]) * a[:, 3]
    return torch.stack([cx, cy, w, h], dim=2)


def decode_ltrb(loc: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Point distances B×4×S×S (l, t, r, b) → boxes B×N×4 (cx, cy, w, h) from the centre."""
    b = loc.shape[0]
    d = loc.to(torch.float64).reshape(b, 4, -1)
    p = points.to(d)
    x1 = p[:, 0] - d[:, 0]
    y1 = p[:, 1] - d[:, 1]
    x2 = p[:, 0] + d[:, 2]
    y2 = p[:, 1] + d[:, 3]
    return torch.stack([(x1 + x2) * 0.5, (y1 + y2) * 0.5, x2 - x1, y2 - y1], dim=2)


@dataclass
class Selection:
    """The chosen candidate per target: index, box (crop px), raw score and penalty."""

    index: torch.Tensor  # B (long)
    box: torch.Tensor  # B×4 (cx, cy, w, h) relative to the crop centre, crop pixels
    score: torch.Tensor  # B raw target probability (0 when no candidate was valid)
    penalty: torch.Tensor  # B
    valid: torch.Tensor  # B bool: False when every candidate was NaN/inf or had no area


def select_best(
    scores: torch.Tensor,
    boxes: torch.Tensor,
    ref_size: torch.Tensor,
    penalty_k: float | torch.Tensor,
    window: torch.Tensor,
    window_influence: float | torch.Tensor,
) -> Selection:
    """Penalise size/ratio change, mix in the cosine window and take the arg-max (§1.7–1.8).

    ``scores`` B×N, ``boxes`` B×N×4, ``ref_size`` B×2 = previous size × scale_z, ``window`` N,
    ``penalty_k`` / ``window_influence`` scalars or B-vectors.
    """
    k = torch.as_tensor(penalty_k, dtype=scores.dtype, device=scores.device).reshape(-1, 1)
    lam = torch.as_tensor(window_influence, dtype=scores.dtype, device=scores.device).reshape(-1, 1)
    penalty = change_penalty(boxes[..., 2], boxes[..., 3], ref_size[:, :1], ref_size[:, 1:2], k)
    pscore = penalty * scores
    pscore = pscore * (1 - lam) + window.to(pscore)[None] * lam
    # Candidates a diverged network made non-finite (or without area) can never win.
    ok = torch.isfinite(boxes).all(dim=2) & (boxes[..., 2] > 0) & (boxes[..., 3] > 0) & torch.isfinite(pscore)
    pscore = torch.where(ok, pscore, torch.full_like(pscore, -torch.inf))
    index = pscore.argmax(dim=1)
    rows = torch.arange(scores.shape[0], device=scores.device)
    valid = ok[rows, index]
    zero = torch.zeros((), dtype=scores.dtype, device=scores.device)
    return Selection(
        index=index,
        box=torch.where(valid[:, None], boxes[rows, index], zero),
        score=torch.where(valid, scores[rows, index], zero),
        penalty=torch.where(valid, penalty[rows, index], zero),
        valid=valid,
    )


def smooth_update(
    centre: torch.Tensor, size: torch.Tensor, sel: Selection, scale_z: torch.Tensor, lr: float | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Move the centre to the chosen box and blend the size with β = penalty·score·lr (§1.9).

    Targets without a valid candidate keep their state.
    """
    box = sel.box / scale_z.reshape(-1, 1)
    beta = (sel.penalty * sel.score * torch.as_tensor(lr, dtype=box.dtype, device=box.device)).reshape(-1, 1)
    new_centre = centre + box[:, :2]
    new_size = size * (1 - beta) + box[:, 2:] * beta
    keep = ~sel.valid[:, None]
    return torch.where(keep, centre, new_centre), torch.where(keep, size, new_size)


def clip_state(
    centre: torch.Tensor, size: torch.Tensor, frame_size: torch.Tensor, min_size: float = 10.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the centre inside [0, W]×[0, H] and the size within [min_size, W]×[min_size, H].

    ``frame_size`` is B×2 (W, H).
    """
    fs = frame_size.to(centre)
    centre = torch.minimum(torch.maximum(centre, torch.zeros_like(centre)), fs)
    size = torch.minimum(torch.maximum(size, torch.full_like(size, min_size)), fs)
    return centre, size


def state_to_xywh(centre: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """(cx, cy), (w, h) → (cx − w/2, cy − h/2, w, h), the published trackers' output box."""
    return torch.cat([centre - size / 2, size], dim=1)


def exemplar_side(size: torch.Tensor, context_amount: float) -> torch.Tensor:
    """Side of the context square around a target: √((w + p)(h + p)), p = context·(w + h)."""
    p = context_amount * size.sum(dim=1, keepdim=True)
    return torch.sqrt((size + p).prod(dim=1))


def exemplar_box_prior(size: torch.Tensor, exemplar_size: int, s_z: torch.Tensor | None = None,
                       context_amount: float = 0.5) -> torch.Tensor:
    """The target's box in the exemplar crop, B×4 (cx, cy, w, h): SiamBAN-ACM's box prior.

    The exemplar crop is the context square of side ``s_z`` around the target resized to ``exemplar_size``, so
    the target there is ``size · exemplar_size / s_z``, centred. The tracker passes the (rounded) side it
    cropped; without one, ``s_z = exemplar_side(size, context_amount)`` and the prior depends on the box's
    aspect ratio only (training, from a search-crop box).
    """
    size = torch.as_tensor(size, dtype=torch.float64)
    if s_z is None:
        s_z = exemplar_side(size, context_amount)
    ex = float(exemplar_size)
    wh = size * (ex / torch.as_tensor(s_z, dtype=size.dtype, device=size.device))[:, None]
    return torch.cat([torch.full_like(wh, ex / 2), wh], dim=1)


# --------------------------------------------------------------------------- SiamFC


def upsample_responses(response: torch.Tensor, factor: int) -> torch.Tensor:
    """Bicubic ×factor upsampling of M×1×S×S responses (OpenCV INTER_CUBIC, a = −0.75) → M×U×U."""
    size = response.shape[-1] * factor
    response = response.to(torch.float64)
    big = torch.finfo(torch.float32).max
    response = torch.nan_to_num(response, nan=0.0, posinf=big, neginf=-big)  # a diverged net must not crash
    up = F.interpolate(response, size=(size, size), mode="bicubic", align_corners=False)
    return up[:, 0]


def siamfc_select(
    responses: torch.Tensor, scale_penalty: float, window: torch.Tensor, window_influence: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pick scale and peak of upsampled SiamFC responses B×K×U×U (K scales, centre one unpenalised).

    Returns (scale index B, peak row B, peak column B, raw peak value B). The chosen map is
    shifted to a minimum of 0, normalised to sum 1 and mixed with the sum-1 ``window``.
    """
    b, k, u, _ = responses.shape
    weights = torch.full((k,), scale_penalty, dtype=responses.dtype, device=responses.device)
    weights[k // 2] = 1.0
    penalised = responses * weights[None, :, None, None]
    scale = penalised.reshape(b, k, -1).amax(dim=2).argmax(dim=1)
    rows = torch.arange(b, device=responses.device)
    chosen = penalised[rows, scale]  # B×U×U
    raw_peak = responses[rows, scale].reshape(b, -1).amax(dim=1)
    chosen = chosen - chosen.reshape(b, -1).amin(dim=1)[:, None, None]
    chosen = chosen / (chosen.reshape(b, -1).sum(dim=1)[:, None, None] + 1e-16)
    mixed = (1 - window_influence) * chosen + window_influence * window.to(chosen)[None]
    flat = mixed.reshape(b, -1).argmax(dim=1)
    return scale, flat // u, flat % u, raw_peak
