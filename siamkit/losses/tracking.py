"""Training targets and losses of the Siamese trackers (SiamFC, SiamRPN/++, SiamBAN, SiamMask).

Targets are built per training pair in NumPy from the target box in *search-crop pixels*
(``x1, y1, x2, y2``, pixel-index coordinates: the crop's centre pixel is ``search_size // 2``)
and a ``numpy.random.Generator`` (so a pair's targets are reproducible under a seed). Losses
take the network outputs as torch tensors.

* **SiamFC** — positives within ``r_pos / stride`` cells (16 px / 8 = 2 cells, Euclidean) of the
  target centre on the S×S response; balanced logistic loss with weights 0.5/#pos, 0.5/#neg.
* **RPN** (SiamRPN, DaSiamRPN, SiamRPN++, SiamMask box branch) — pysot anchor targets: IoU > 0.6
  positive, < 0.3 negative, at most 16 positives and 64 anchors in all; regression deltas
  ``(dx, dy, ln dw, ln dh)``; NLL averaged separately over positives and negatives (0.5/0.5);
  L1 on the deltas weighted 1/#pos; total ``1.0·cls + 1.2·loc``.
* **BAN** — ellipse labels: positive inside E(w/4, h/4), negative outside E(w/2, h/2); linear IoU
  loss ``1 − (inter + 1)/(union + 1)`` on (l, t, r, b) distances of positives; ``1.0·cls + 1.0·loc``.
* **SiamMask** — per positive cell the 127×127 window of the ±1 search mask (unfold with stride 8,
  padding 32) against the 63×63 logits upsampled bilinearly; soft-margin loss; weights
  ``[cls, loc, mask] = [1, 1.2, 36]``.

Network output layouts follow pysot: RPN ``cls`` is B×2A×S×S viewed as B×2×A×S×S (class-major),
``loc`` is B×4A×S×S viewed as B×4×A×S×S; BAN ``cls`` is B×2×S×S, ``loc`` B×4×S×S (distances in
crop pixels, positive); SiamFC ``cls`` is B×1×S×S logits; SiamMask ``mask`` is B×(63·63)×S×S.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from siamkit.config import LOSSES
from siamkit.errors import ConfigError
from siamkit.geometry import iou
from siamkit.ops.anchors import DEFAULT_RATIOS, DEFAULT_SCALES, anchor_grid, point_grid

IGNORE, NEGATIVE, POSITIVE = -1, 0, 1


def _box_centre(box: Sequence[float]) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1


def _check_box(box: Sequence[float]) -> None:
    b = np.asarray(box, dtype=np.float64)
    if b.shape != (4,) or not np.isfinite(b).all() or b[2] <= b[0] or b[3] <= b[1]:
        raise ConfigError(
            f"Target box {box!r} is not a valid (x1, y1, x2, y2) box.",
            hint="Pass the target in search-crop pixels with x2 > x1 and y2 > y1.",
        )


def _sample(index: tuple[np.ndarray, ...], keep: int, rng: np.random.Generator) -> tuple[tuple[np.ndarray, ...], int]:
    """Keep at most ``keep`` of the positions in ``index`` (a random subset, as pysot's ``select``)."""
    count = int(index[0].shape[0])
    if count <= keep:
        return index, count
    chosen = rng.permutation(count)[:keep]
    return tuple(i[chosen] for i in index), keep


# =========================================================================== SiamFC


def siamfc_labels(
    score_size: int, stride: int = 8, r_pos: float = 16.0, offset: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """S×S float32 map: 1 where the cell lies within ``r_pos`` crop pixels of the target centre.

    ``offset`` is the target centre relative to the crop centre in crop pixels (0 for the
    classic centred pairs). Cell (i, j) sits at ``((j − (S−1)/2)·stride, (i − (S−1)/2)·stride)``.
    """
    c = (score_size - 1) / 2
    ii, jj = np.mgrid[0:score_size, 0:score_size].astype(np.float64)
    dx = (jj - c) * stride - offset[0]
    dy = (ii - c) * stride - offset[1]
    # distances compared in cells (r_pos / stride), with a small tolerance for exact radii
    return (np.hypot(dx, dy) / stride <= r_pos / stride + 1e-9).astype(np.float32)


def balanced_weights(labels: np.ndarray | torch.Tensor, valid=None):
    """Weights 0.5/#pos on positives and 0.5/#neg on negatives (1/#neg when there is no positive).

    Works on one map or a batch (first axis = batch, each map balanced on its own).
    """
    is_torch = isinstance(labels, torch.Tensor)
    lab = labels.detach().cpu().numpy() if is_torch else np.asarray(labels)
    single = lab.ndim == 2
    lab = lab[None] if single else lab
    ok = np.ones_like(lab, dtype=bool) if valid is None else np.asarray(valid, dtype=bool).reshape(lab.shape)
    w = np.zeros(lab.shape, dtype=np.float64)
    for b in range(lab.shape[0]):
        pos = (lab[b] == 1) & ok[b]
        neg = (lab[b] == 0) & ok[b]
        npos, nneg = int(pos.sum()), int(neg.sum())
        if npos:
            w[b][pos] = 0.5 / npos
        if nneg:
            w[b][neg] = (0.5 if npos else 1.0) / nneg
    w = w[0] if single else w
    w = w.astype(np.float32)
    return torch.from_numpy(w).to(labels.device) if is_torch else w


def balanced_logistic_loss(
    logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """SiamFC loss: Σ w·log(1 + e^{−y·v}) per map (y = ±1), averaged over the batch.

    ``labels`` are 1 (positive) / 0 (negative) maps shaped like ``logits`` (B×1×S×S or B×S×S);
    ``weights`` default to :func:`balanced_weights`, so each map's weights sum to 1.
    """
    if logits.shape != labels.shape:
        labels = labels.reshape(logits.shape)
    if weights is None:
        weights = balanced_weights(labels.reshape(labels.shape[0], -1, labels.shape[-1]))
    weights = weights.reshape(logits.shape).to(logits.dtype)
    y = labels.to(logits.dtype) * 2 - 1
    per = F.softplus(-y * logits)  # log(1 + exp(−y·v)), numerically stable
    return (weights * per).sum() / logits.shape[0]


@dataclass(frozen=True)
class SiamFCTargets:
    """Label maps for SiamFC pairs: ``label`` (1×S×S, 0/1) and ``label_weight`` (balanced)."""

    score_size: int = 17
    stride: int = 8
    search_size: int = 255
    r_pos: float = 16.0

    def __call__(self, box: Sequence[float], neg: bool, rng: np.random.Generator) -> dict[str, np.ndarray]:
        _check_box(box)
        cx, cy, _, _ = _box_centre(box)
        centre = self.search_size // 2
        if neg:
            label = np.zeros((self.score_size, self.score_size), np.float32)
        else:
            label = siamfc_labels(self.score_size, self.stride, self.r_pos, (cx - centre, cy - centre))
        return {"label": label[None], "label_weight": balanced_weights(label)[None]}


# =========================================================================== RPN (anchors)


def anchors_in_crop(
    score_size: int, search_size: int = 255, stride: int = 8, ratios=DEFAULT_RATIOS, scales=DEFAULT_SCALES
) -> np.ndarray:
    """Anchors as a 4×A×S×S array of (cx, cy, w, h) in absolute search-crop pixels."""
    grid = anchor_grid(score_size, stride, ratios, scales).numpy()  # (A·S·S)×4, centre-relative
    a = grid.shape[0] // (score_size * score_size)
    grid = grid.reshape(a, score_size, score_size, 4).transpose(3, 0, 1, 2).copy()
    grid[:2] += search_size // 2
    return grid


@dataclass(frozen=True)
class AnchorTargets:
    """pysot anchor targets for one pair.

    Returns ``label_cls`` (A×S×S int64: 1 pos, 0 neg, −1 ignore), ``label_loc`` (4×A×S×S deltas),
    ``label_loc_weight`` (A×S×S, 1/#pos on positives). Negative pairs: the anchors of the 7×7
    cells around the unrelated object (``neg_window="object"``, pysot) or around the crop centre
    (``"centre"``, SiamMask) are candidate negatives, at most ``neg_num`` kept. ``fill_negatives``
    keeps ``total_num − #pos`` negatives (SiamMask) instead of ``total_num − pos_num`` (pysot).
    ``with_mask`` adds ``label_mask_weight`` (1×S×S: 1 where any anchor of the cell is positive).
    """

    score_size: int = 25
    search_size: int = 255
    stride: int = 8
    ratios: tuple[float, ...] = DEFAULT_RATIOS
    scales: tuple[float, ...] = DEFAULT_SCALES
    thr_high: float = 0.6
    thr_low: float = 0.3
    pos_num: int = 16
    total_num: int = 64
    neg_num: int = 16
    neg_window: str = "object"
    fill_negatives: bool = False
    with_mask: bool = False

    def __post_init__(self):
        if self.neg_window not in ("object", "centre"):
            raise ConfigError(f"neg_window must be 'object' or 'centre', got {self.neg_window!r}.")
        object.__setattr__(
            self, "_anchors", anchors_in_crop(self.score_size, self.search_size, self.stride, self.ratios, self.scales)
        )

    @property
    def anchors(self) -> np.ndarray:
        """4×A×S×S (cx, cy, w, h) in search-crop pixels."""
        return self._anchors

    def negative_cell(self, box: Sequence[float]) -> tuple[int, int]:
        """Score-map cell (column, row) of an unrelated object, as pysot computes it."""
        cx, cy, _, _ = _box_centre(box)
        half = self.search_size // 2
        col = self.score_size // 2 + int(math.ceil((cx - half) / self.stride + 0.5))
        row = self.score_size // 2 + int(math.ceil((cy - half) / self.stride + 0.5))
        return col, row

    def __call__(self, box: Sequence[float], neg: bool, rng: np.random.Generator) -> dict[str, np.ndarray]:
        _check_box(box)
        a = self._anchors.shape[1]
        s = self.score_size
        cls = np.full((a, s, s), IGNORE, np.int64)
        delta = np.zeros((4, a, s, s), np.float32)
        weight = np.zeros((a, s, s), np.float32)
        out = {"label_cls": cls, "label_loc": delta, "label_loc_weight": weight}
        if neg:
            col, row = self.negative_cell(box) if self.neg_window == "object" else (s // 2, s // 2)
            window = np.zeros((a, s, s), bool)
            window[:, max(0, row - 3) : min(s, row + 4), max(0, col - 3) : min(s, col + 4)] = True
            chosen, _ = _sample(np.where(window), self.neg_num, rng)
            cls[chosen] = NEGATIVE
            if self.with_mask:
                out["label_mask_weight"] = np.zeros((1, s, s), np.float32)
            return out
        tcx, tcy, tw, th = _box_centre(box)
        acx, acy, aw, ah = self._anchors
        delta[0] = (tcx - acx) / aw
        delta[1] = (tcy - acy) / ah
        delta[2] = np.log(tw / aw)
        delta[3] = np.log(th / ah)
        corners = np.stack([acx - aw / 2, acy - ah / 2, acx + aw / 2, acy + ah / 2], axis=-1)
        overlap = iou(corners, np.asarray(box, dtype=np.float64), fmt="xyxy")
        pos, npos = _sample(np.where(overlap > self.thr_high), self.pos_num, rng)
        keep_neg = self.total_num - (npos if self.fill_negatives else self.pos_num)
        negs, _ = _sample(np.where(overlap < self.thr_low), keep_neg, rng)
        cls[pos] = POSITIVE
        weight[pos] = 1.0 / (npos + 1e-6)
        cls[negs] = NEGATIVE
        if self.with_mask:
            out["label_mask_weight"] = (cls == POSITIVE).any(axis=0, keepdims=True).astype(np.float32)
        return out


def select_cross_entropy(cls: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """0.5·NLL(positives) + 0.5·NLL(negatives), each averaged over the batch's selected cells.

    ``cls``: B×2A×S×S logits (class-major, as pysot; A = 1 for BAN's B×2×S×S).
    ``labels``: B×A×S×S (or B×S×S for A = 1) with 1/0/−1.
    """
    b, c, h, w = cls.shape
    a = c // 2
    logp = F.log_softmax(cls.reshape(b, 2, a, h, w).permute(0, 2, 3, 4, 1), dim=-1).reshape(-1, 2)
    lab = labels.reshape(-1).long()
    if lab.numel() != logp.shape[0]:
        raise ConfigError(f"Labels of shape {tuple(labels.shape)} do not match cls {tuple(cls.shape)}.")
    loss = logp.new_zeros(())
    for value in (POSITIVE, NEGATIVE):
        sel = lab == value
        if sel.any():
            loss = loss + 0.5 * -logp[sel, value].mean()
    return loss


def weighted_l1_loss(loc: torch.Tensor, delta: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Σ over anchors of weight · Σ_coords |pred − delta|, divided by the batch size (pysot)."""
    b, c, h, w = loc.shape
    diff = (loc.reshape(b, 4, c // 4, h, w) - delta.reshape(b, 4, c // 4, h, w)).abs().sum(dim=1)
    return (diff * weight.reshape(b, c // 4, h, w)).sum() / b


# =========================================================================== BAN (points)


@dataclass(frozen=True)
class PointTargets:
    """SiamBAN ellipse targets: ``label_cls`` (S×S: 1/0/−1) and ``label_loc`` (4×S×S l,t,r,b)."""

    score_size: int = 25
    search_size: int = 255
    stride: int = 8
    pos_num: int = 16
    total_num: int = 64
    neg_num: int = 16

    @property
    def points(self) -> np.ndarray:
        """2×S×S (x, y) point positions in search-crop pixels."""
        g = point_grid(self.score_size, self.stride).numpy() + self.search_size // 2
        return g.T.reshape(2, self.score_size, self.score_size)

    def __call__(self, box: Sequence[float], neg: bool, rng: np.random.Generator) -> dict[str, np.ndarray]:
        _check_box(box)
        s = self.score_size
        px, py = self.points
        tcx, tcy, tw, th = _box_centre(box)
        cls = np.full((s, s), IGNORE, np.int64)
        delta = np.zeros((4, s, s), np.float32)
        inner = ((tcx - px) / (tw / 4)) ** 2 + ((tcy - py) / (th / 4)) ** 2 < 1
        if neg:
            chosen, _ = _sample(np.where(inner), self.neg_num, rng)
            cls[chosen] = NEGATIVE
            return {"label_cls": cls, "label_loc": delta}
        x1, y1, x2, y2 = (float(v) for v in box)
        delta[0], delta[1], delta[2], delta[3] = px - x1, py - y1, x2 - px, y2 - py
        outer = ((tcx - px) / (tw / 2)) ** 2 + ((tcy - py) / (th / 2)) ** 2 > 1
        pos, _ = _sample(np.where(inner), self.pos_num, rng)
        negs, _ = _sample(np.where(outer), self.total_num - self.pos_num, rng)
        cls[pos] = POSITIVE
        cls[negs] = NEGATIVE
        return {"label_cls": cls, "label_loc": delta}


def linear_iou_losses(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 − (inter + 1)/(union + 1)`` per row of N×4 (l, t, r, b) distances from shared points."""
    pl, pt, pr, pb = pred.unbind(-1)
    tl, tt, tr, tb = target.unbind(-1)
    inter = (torch.minimum(pl, tl) + torch.minimum(pr, tr)) * (torch.minimum(pt, tt) + torch.minimum(pb, tb))
    union = (pl + pr) * (pt + pb) + (tl + tr) * (tt + tb) - inter
    return 1 - (inter + 1) / (union + 1)


def linear_iou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean of :func:`linear_iou_losses` (SiamBAN's regression loss)."""
    return linear_iou_losses(pred, target).mean()


def ban_loc_loss(loc: torch.Tensor, ltrb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """IoU loss over the positive points of B×4×S×S predictions (0 when there is none)."""
    pos = labels.reshape(-1) == POSITIVE
    if not pos.any():
        return loc.sum() * 0
    pred = loc.permute(0, 2, 3, 1).reshape(-1, 4)[pos]
    gt = ltrb.permute(0, 2, 3, 1).reshape(-1, 4)[pos].to(pred.dtype)
    return linear_iou_loss(pred, gt)


# =========================================================================== SiamMask


def mask_loss(
    pred: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    out_size: int = 63,
    window: int = 127,
    stride: int = 8,
    padding: int = 32,
) -> torch.Tensor:
    """SiamMask soft-margin loss on the cells with a positive anchor.

    ``pred``: B×(o·o)×S×S logits; ``mask``: B×1×H×W search-crop mask in ±1; ``weight``: B×1×S×S
    (1 = the cell has a positive anchor). The cell's logits are upsampled to ``window``² with
    bilinear ``align_corners=True`` and compared with the mask window the cell sees.
    """
    sel = weight.reshape(-1) == 1
    if not sel.any():
        return pred.sum() * 0
    b, _, s, _ = pred.shape
    logits = pred.permute(0, 2, 3, 1).reshape(-1, 1, out_size, out_size)[sel]
    logits = F.interpolate(logits, size=(window, window), mode="bilinear", align_corners=True).reshape(-1, window**2)
    windows = F.unfold(mask.to(logits.dtype), (window, window), padding=padding, stride=stride)  # B×win²×L
    if windows.shape[-1] != s * s:
        raise ConfigError(
            f"Mask of shape {tuple(mask.shape)} gives {windows.shape[-1]} windows, expected {s * s}.",
            hint="Use a 255×255 search mask with window 127, stride 8 and padding 32 for a 25×25 map.",
        )
    target = windows.transpose(1, 2).reshape(-1, window**2)[sel]
    return F.soft_margin_loss(logits, target)


def mask_window_targets(mask: torch.Tensor, cells: torch.Tensor, window: int = 127, stride: int = 8,
                        padding: int = 32) -> torch.Tensor:
    """The ``window``² part of each B×1×H×W search-crop mask that response-map cell ``cells[b]`` = (row, col) sees
    (the search crop zero-padded by ``padding``, window at ``stride · cell``). Targets are ±1; the padding's 0
    adds a constant to the soft-margin loss and no gradient, as :func:`mask_loss`'s unfolding does."""
    padded = F.pad(mask, [padding] * 4)
    rows = [padded[b, 0, stride * r : stride * r + window, stride * c : stride * c + window]
            for b, (r, c) in enumerate(cells.tolist())]
    return torch.stack(rows)


def refine_mask_loss(logits: torch.Tensor, mask: torch.Tensor, cells: torch.Tensor, stride: int = 8,
                     padding: int = 32) -> torch.Tensor:
    """SiamMask's refined-mask loss: soft margin between B×O×O logits (O = the window, 127) at one cell per
    sample and the ±1 mask window that cell sees (:func:`mask_window_targets`)."""
    target = mask_window_targets(mask.to(logits.dtype), cells, logits.shape[-1], stride, padding)
    return F.soft_margin_loss(logits.reshape(len(logits), -1), target.reshape(len(target), -1))


# =========================================================================== combining


def fuse_levels(outputs: Sequence[torch.Tensor], weights: torch.Tensor | None = None) -> torch.Tensor:
    """Fuse per-layer outputs: softmax-normalised learnable ``weights`` (pysot ``weighted``) or the mean."""
    stacked = torch.stack(list(outputs))
    if weights is None:
        return stacked.mean(0)
    w = F.softmax(weights.reshape(-1), dim=0).to(stacked.dtype)
    return (stacked * w.reshape(-1, *([1] * (stacked.ndim - 1)))).sum(0)


def weighted_total(terms: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """Σ weights[name]·terms[name] over the names in ``weights`` (every name must be present)."""
    missing = [k for k in weights if k not in terms]
    if missing:
        raise ConfigError(f"Loss terms {missing} are weighted but were not computed; have {sorted(terms)}.")
    total = None
    for name, w in weights.items():
        if w:
            total = terms[name] * w if total is None else total + terms[name] * w
    if total is None:
        raise ConfigError("Every loss weight is zero; nothing to train.")
    return total


# Published loss weights (tracking.md §6–§8).
RPN_WEIGHTS = {"cls": 1.0, "loc": 1.2}
MASK_WEIGHTS = {"cls": 1.0, "loc": 1.2, "mask": 36.0}
BAN_WEIGHTS = {"cls": 1.0, "loc": 1.0}

LOSSES.register("siamfc_balanced_logistic")(lambda: balanced_logistic_loss)
LOSSES.register("rpn_select_cross_entropy")(lambda: select_cross_entropy)
LOSSES.register("rpn_weighted_l1")(lambda: weighted_l1_loss)
LOSSES.register("ban_linear_iou")(lambda: ban_loc_loss)
LOSSES.register("siammask_soft_margin")(lambda: mask_loss)
