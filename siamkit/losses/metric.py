"""Metric-learning losses: contrastive, triplet (all / mined / batch-hard), improved triplet,
quadruplet, adaptive-weight triplet, verification (binary head), ID (softmax), combinations.

Every loss is an ``nn.Module`` called as ``loss(embeddings, labels, indices_tuple=None)``:

* ``embeddings`` (B, D) float (fp16/bf16 are computed in fp32), ``labels`` (B,) integers;
* ``indices_tuple`` — optional pairs ``(a1, p, a2, n)`` or triplets ``(a, p, n)`` from a miner
  (:mod:`siamkit.losses.miners`); when omitted the loss uses every valid pair/triplet of the batch
  or its own mining, computed from B×B matrices (never a B×B×B tensor);
* contrastive, triplet and batch-hard also take ``ref_emb``/``ref_labels``: compare each embedding
  with a reference set (another view, a memory bank, other ranks) instead of its own batch.
  Explicit (x1, x2, same) pairs go through ``ContrastiveLoss.pairs`` / ``VerificationLoss.pairs``.

The distance is explicit (``distance=`` a :class:`~siamkit.losses.distances.Distance`, a name
or ``{"name": ..., **options}``); similarities are handled by negation. ``reduction`` is one of
``mean``, ``sum``, ``mean_nonzero`` (average over terms > 0, 0 when none) or ``none``.
``Loss.preset(name, **overrides)`` reproduces a published reference's defaults. After each call
``last_stats`` holds counts (e.g. triplets used, anchors dropped for lack of a positive/negative).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from siamkit.config import LOSSES
from siamkit.errors import ConfigError
from siamkit.losses import miners as M
from siamkit.losses.distances import Distance, compute_dtype, dissimilarity, get_distance

REDUCTIONS = ("mean", "sum", "mean_nonzero", "none")


# --------------------------------------------------------------------------- helpers


def _distance(spec: Any) -> Distance:
    if isinstance(spec, dict):
        spec = dict(spec)
        return get_distance(spec.pop("name", None), **spec)
    return get_distance(spec)


def _check_embeddings(embeddings: Any) -> torch.Tensor:
    if not isinstance(embeddings, torch.Tensor) or embeddings.dim() != 2 or not embeddings.is_floating_point():
        got = tuple(embeddings.shape) if isinstance(embeddings, torch.Tensor) else type(embeddings).__name__
        raise ConfigError(f"embeddings must be a float tensor of shape (B, D), got {got}.",
                          hint="Flatten the network output to (batch, dim).")
    return embeddings


def _zero(embeddings: torch.Tensor) -> torch.Tensor:
    """A 0 loss that is still connected to the graph (backward gives zero gradients)."""
    return (embeddings.to(compute_dtype(embeddings)) * 0.0).sum()


def _reduce(losses: torch.Tensor, reduction: str, embeddings: torch.Tensor) -> torch.Tensor:
    if reduction == "none":
        return losses
    if losses.numel() == 0:
        return _zero(embeddings)
    if reduction == "sum":
        return losses.sum()
    if reduction == "mean":
        return losses.mean()
    nonzero = (losses > 0).sum()
    return losses.sum() / nonzero.clamp_min(1).to(losses.dtype)


def _as_triplets(indices_tuple: Sequence[torch.Tensor]) -> M.Triplets:
    if len(indices_tuple) == 3:
        return tuple(indices_tuple)  # type: ignore[return-value]
    raise ConfigError(f"This loss needs triplets (a, p, n), got an index tuple of length {len(indices_tuple)}.",
                      hint="Use a triplet miner (BatchHardMiner, SemiHardMiner, AllTripletsMiner).")


def _as_pairs(indices_tuple: Sequence[torch.Tensor]) -> M.Pairs:
    if len(indices_tuple) == 4:
        return tuple(indices_tuple)  # type: ignore[return-value]
    if len(indices_tuple) == 3:
        a, p, n = indices_tuple
        return a, p, a, n
    raise ConfigError(f"Expected pairs (a1, p, a2, n) or triplets (a, p, n), got length {len(indices_tuple)}.")


class MetricLoss(nn.Module):
    """Base class: distance + reduction, named presets, ``last_stats``."""

    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    reductions: ClassVar[tuple[str, ...]] = REDUCTIONS

    def __init__(self, distance: Any = None, reduction: str = "mean"):
        super().__init__()
        if reduction not in self.reductions:
            raise ConfigError(f"{type(self).__name__}: unknown reduction {reduction!r}.",
                              hint=f"Use one of: {', '.join(self.reductions)}.")
        self.distance = _distance(distance)
        self.reduction = reduction
        self.last_stats: dict[str, Any] = {}

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> MetricLoss:
        """Build the loss with a named reference's defaults; keyword arguments override them."""
        if name not in cls.presets:
            raise ConfigError(f"{cls.__name__} has no preset {name!r}.",
                              hint=f"Available: {', '.join(sorted(cls.presets)) or '(none)'}.")
        return cls(**{**cls.presets[name], **overrides})

    def _dis_matrix(self, embeddings: torch.Tensor) -> torch.Tensor:
        return dissimilarity(self.distance, self.distance.pairwise(embeddings))

    def _dis_paired(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return dissimilarity(self.distance, self.distance.paired(x, y))


# --------------------------------------------------------------------------- contrastive


class ContrastiveLoss(MetricLoss):
    """Contrastive loss on positive and negative pairs.

    Forms (``d`` the distance, ``m`` the margin, ``m_pos`` the positive margin, default 0):

    * ``plain``:   positives [d − m_pos]₊, negatives [m − d]₊  (ℓ = y·d + (1−y)·[m − d]₊ when m_pos = 0;
      PML's ``ContrastiveLoss``);
    * ``hadsell``: positives ½[d − m_pos]₊², negatives ½[m − d]₊²  (Hadsell, Chopra, LeCun 2006);
    * ``squared``: positives [d − m_pos]₊², negatives [m − d]₊²  (SigNet).

    For similarities the inequalities flip (positives [m_pos − s]₊, negatives [s − m]₊).
    ``separate_terms=True`` reduces the positive and negative terms separately and adds them (PML).
    Without ``indices_tuple`` every ordered pair (i ≠ j) of the batch is used.
    """

    FORMS = ("plain", "hadsell", "squared")
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "hadsell2006": {"form": "hadsell", "margin": 1.0, "distance": "euclidean", "reduction": "mean"},
        "signet": {"form": "squared", "margin": 1.0, "distance": "euclidean", "reduction": "mean"},
        "pml": {"form": "plain", "margin": 1.0, "pos_margin": 0.0, "distance": {"name": "euclidean", "normalize": True},
                "reduction": "mean_nonzero", "separate_terms": True},
    }

    def __init__(self, margin: float = 1.0, pos_margin: float = 0.0, form: str = "plain", distance: Any = None,
                 reduction: str = "mean", separate_terms: bool = False):
        super().__init__(distance, reduction)
        if form not in self.FORMS:
            raise ConfigError(f"Unknown contrastive form {form!r}.", hint=f"Use one of: {', '.join(self.FORMS)}.")
        self.margin, self.pos_margin, self.form = float(margin), float(pos_margin), form
        self.separate_terms = bool(separate_terms)

    def _terms(self, raw: torch.Tensor, positive: bool) -> torch.Tensor:
        x = raw - self.pos_margin if positive else self.margin - raw
        x = F.relu(-x if self.distance.inverted else x)
        if self.form == "plain":
            return x
        return 0.5 * x * x if self.form == "hadsell" else x * x

    def _combine(self, pos: torch.Tensor, neg: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        self.last_stats = {"positive_pairs": int(pos.numel()), "negative_pairs": int(neg.numel())}
        if self.separate_terms and self.reduction != "none":
            return _reduce(pos, self.reduction, embeddings) + _reduce(neg, self.reduction, embeddings)
        return _reduce(torch.cat([pos, neg]), self.reduction, embeddings)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None,
                indices_tuple: Sequence[torch.Tensor] | None = None, ref_emb: torch.Tensor | None = None,
                ref_labels: torch.Tensor | None = None) -> torch.Tensor:
        """``ref_emb``/``ref_labels``: pair each embedding with a reference set instead of its own batch
        (index tuples then point into ``ref_emb`` for the second member)."""
        embeddings = _check_embeddings(embeddings)
        if indices_tuple is not None:
            ref = embeddings if ref_emb is None else _check_embeddings(ref_emb)
            a1, p, a2, n = _as_pairs(indices_tuple)
            pos_raw = self.distance.paired(embeddings[a1], ref[p])
            neg_raw = self.distance.paired(embeddings[a2], ref[n])
            return self._combine(self._terms(pos_raw, True), self._terms(neg_raw, False), embeddings)
        labels, ref, ref_labels, other = M.check_reference(embeddings, labels, ref_emb, ref_labels)
        pos_mask, neg_mask = M.label_masks(labels, ref_labels)
        a1, p = pos_mask.nonzero(as_tuple=True)  # few in a P×K batch: gather them
        raw = self.distance.pairwise(embeddings, other)
        if self.reduction == "none":
            return self._combine(self._terms(raw[a1, p], True), self._terms(raw[neg_mask], False), embeddings)
        dim = embeddings.shape[1]
        n_neg = int(neg_mask.sum())
        with torch.no_grad():
            active = neg_mask & (self._terms(raw.detach(), False) > 0)
            n_active = int(active.sum())
        self.last_stats = {"positive_pairs": int(a1.numel()), "negative_pairs": n_neg, "active_negatives": n_active}
        if (n_active + a1.numel()) * dim <= raw.numel():
            # Inactive negatives contribute exactly 0 (value and gradient): recompute only the active
            # pairs row-wise, so backward is O(active·D) instead of a pass through the B×B matrix.
            a2, n = active.nonzero(as_tuple=True)
            pos = self._terms(self.distance.paired(embeddings[a1], ref[p]), True)
            neg = self._terms(self.distance.paired(embeddings[a2], ref[n]), False)
            return self._finish(pos.sum(), pos, neg.sum(), neg, n_neg, embeddings)
        pos = self._terms(raw[a1, p], True)
        neg_full = self._terms(raw, False)
        return self._finish(pos.sum(), pos, torch.where(neg_mask, neg_full, 0.0).sum(), neg_full[active], n_neg,
                            embeddings)

    def _finish(self, pos_sum: torch.Tensor, pos: torch.Tensor, neg_sum: torch.Tensor, neg_active: torch.Tensor,
                n_neg: int, embeddings: torch.Tensor) -> torch.Tensor:
        """Reduce from the sums; ``neg_active`` holds (at least) every non-zero negative term."""
        if self.reduction == "mean":
            counts = (pos.numel(), n_neg)
        else:
            counts = (int((pos > 0).sum()), int((neg_active > 0).sum()))
        parts = [(pos_sum, counts[0]), (neg_sum, counts[1])]
        if not self.separate_terms:
            parts = [(pos_sum + neg_sum, counts[0] + counts[1])]
        out = _zero(embeddings)
        for total, count in parts:
            out = out + (total if self.reduction == "sum" else total / max(count, 1))
        return out

    def pairs(self, x1: torch.Tensor, x2: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
        """Loss on explicit pairs (classic Siamese input): rows of x1 and x2, ``same`` (B,) bool/0-1."""
        x1, x2 = _check_embeddings(x1), _check_embeddings(x2)
        same = torch.as_tensor(same, device=x1.device).bool()
        if same.shape != (x1.shape[0],):
            raise ConfigError(f"same must have shape ({x1.shape[0]},), got {tuple(same.shape)}.")
        raw = self.distance.paired(x1, x2)
        return self._combine(self._terms(raw[same], True), self._terms(raw[~same], False), x1)


# --------------------------------------------------------------------------- triplet family


def all_triplet_hinge(dis: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, margin: float
                      ) -> tuple[torch.Tensor, int, int]:
    """Σ over all triplets of [D(a,p) − D(a,n) + margin]₊ without enumerating triplets.

    Per anchor, negatives are sorted once; for each positive the number c of negatives with
    D(a,n) < D(a,p) + margin comes from a binary search and their sum from a prefix sum, so the
    row contributes c·(D(a,p) + margin) − prefix[c]. O(B² log B) time, O(B²) memory. Returns
    (sum, number of triplets, number of non-zero triplets). Sums are accumulated in float64.
    """
    big = torch.finfo(dis.dtype).max
    b = dis.shape[1]
    values, order = torch.where(neg, dis, torch.full_like(dis, big)).sort(dim=1)
    n_count = neg.sum(1)
    thresh = dis + margin
    count = torch.searchsorted(values, thresh.detach().contiguous(), right=False)
    count = torch.minimum(count, n_count[:, None])
    valid = torch.arange(b, device=dis.device)[None, :] < n_count[:, None]
    values64 = torch.where(valid, values, torch.zeros_like(values)).double()
    prefix = torch.cat([values64.new_zeros(dis.shape[0], 1), values64.cumsum(1)], dim=1)
    per_pair = count.double() * thresh.double() - prefix.gather(1, count)
    per_pair = torch.where(pos, per_pair, torch.zeros_like(per_pair))
    total = per_pair.sum().to(dis.dtype)
    n_triplets = int((pos.sum(1) * n_count).sum())
    n_nonzero = int(torch.where(pos, count, torch.zeros_like(count)).sum())
    return total, n_triplets, n_nonzero


def _all_triplet_soft(dis: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, margin: float,
                      block_elems: int = 1 << 22) -> tuple[torch.Tensor, int]:
    """Σ over all triplets of softplus(D(a,p) − D(a,n) + margin), anchor-blockwise (b×B×B blocks)."""
    b = dis.shape[1]
    step = max(1, block_elems // max(1, b * b))
    total = dis.new_zeros(())
    for s in range(0, dis.shape[0], step):
        blk = slice(s, s + step)
        mask = pos[blk, :, None] & neg[blk, None, :]
        x = dis[blk, :, None] - dis[blk, None, :] + margin
        total = total + torch.where(mask, F.softplus(x), torch.zeros_like(x)).sum()
    return total, int((pos.sum(1) * neg.sum(1)).sum())


class TripletLoss(MetricLoss):
    """Triplet margin loss [d(a,p) − d(a,n) + m]₊, or ``soft=True``: softplus(d(a,p) − d(a,n) + m).

    Triplets come from ``indices_tuple``, else from ``miner`` (e.g. :class:`SemiHardMiner`), else
    every valid triplet of the batch — reduced in closed form from the B×B matrix (never
    enumerated). ``mean`` averages over all triplets, ``mean_nonzero`` over the active ones.
    """

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # FaceNet: squared L2 on unit-norm embeddings, α = 0.2, semi-hard negatives.
        "facenet": {"margin": 0.2, "distance": {"name": "sqeuclidean", "normalize": True},
                    "miner": "semihard", "reduction": "mean"},
        # PML TripletMarginLoss defaults: margin 0.05, L2 on normalised embeddings, all triplets, avg non-zero.
        "pml": {"margin": 0.05, "distance": {"name": "euclidean", "normalize": True}, "reduction": "mean_nonzero"},
        # ReID codebases (torchreid/BoT/fast-reid MarginRankingLoss): margin 0.3, raw features.
        "reid": {"margin": 0.3, "distance": "euclidean", "reduction": "mean"},
    }

    def __init__(self, margin: float = 0.2, distance: Any = None, soft: bool = False, miner: Any = None,
                 reduction: str = "mean"):
        super().__init__(distance, reduction)
        self.margin, self.soft = float(margin), bool(soft)
        if isinstance(miner, str):
            miner = _named_miner(miner, self.distance, self.margin)
        self.miner = miner

    def _per_triplet(self, d_ap: torch.Tensor, d_an: torch.Tensor) -> torch.Tensor:
        x = d_ap - d_an + self.margin
        return F.softplus(x) if self.soft else F.relu(x)

    def _from_tuple(self, embeddings: torch.Tensor, triplets: M.Triplets, ref: torch.Tensor | None = None
                    ) -> torch.Tensor:
        a, p, n = triplets
        ref = embeddings if ref is None else _check_embeddings(ref)
        anchors = embeddings[a]
        d_ap = self._dis_paired(anchors, ref[p])
        d_an = self._dis_paired(anchors, ref[n])
        self.last_stats = {**self.last_stats, "triplets": int(a.numel())}
        return _reduce(self._per_triplet(d_ap, d_an), self.reduction, embeddings)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None,
                indices_tuple: Sequence[torch.Tensor] | None = None, ref_emb: torch.Tensor | None = None,
                ref_labels: torch.Tensor | None = None) -> torch.Tensor:
        """``ref_emb``/``ref_labels``: anchors from ``embeddings``, positives/negatives from the reference set."""
        embeddings = _check_embeddings(embeddings)
        self.last_stats = {}
        if indices_tuple is None and self.miner is not None:
            extra = () if ref_emb is None else (ref_emb, ref_labels)  # plain (emb, labels) miners stay valid
            indices_tuple = self.miner(embeddings, labels, *extra)
            self.last_stats = dict(getattr(self.miner, "last_stats", {}))
        if indices_tuple is not None:
            return self._from_tuple(embeddings, _as_triplets(indices_tuple), ref_emb)
        if self.reduction == "none":
            raise ConfigError("reduction='none' needs explicit triplets.",
                              hint="Pass indices_tuple or a miner (e.g. AllTripletsMiner for small batches).")
        labels, _, ref_labels, other = M.check_reference(embeddings, labels, ref_emb, ref_labels)
        pos, neg = M.label_masks(labels, ref_labels)
        dis = dissimilarity(self.distance, self.distance.pairwise(embeddings, other))
        if self.soft:
            total, n = _all_triplet_soft(dis, pos, neg, self.margin)
            nonzero = n
        else:
            total, n, nonzero = all_triplet_hinge(dis, pos, neg, self.margin)
        self.last_stats = {"triplets": n, "nonzero": nonzero}
        if n == 0:
            return _zero(embeddings)
        denom = {"mean": n, "sum": 1, "mean_nonzero": max(nonzero, 1)}[self.reduction]
        return total / denom


def _named_miner(name: str, distance: Distance, margin: float) -> nn.Module:
    if name == "semihard":
        return M.SemiHardMiner(distance, margin=margin)
    if name == "batch_hard":
        return M.BatchHardMiner(distance)
    if name == "all":
        return M.AllTripletsMiner(distance)
    raise ConfigError(f"Unknown miner {name!r}.", hint="Use 'semihard', 'batch_hard' or 'all', or pass a miner.")


class BatchHardTripletLoss(TripletLoss):
    """Batch-hard triplet loss (TriHard; Hermans, Beyer, Leibe 2017) over a P×K batch.

    For every anchor: [m + max_p d(a,p) − min_n d(a,n)]₊ (or softplus with ``soft=True``), with
    the anchor itself excluded from its positives. Anchors with no positive (single-image
    identity) or no negative (one identity in the batch) are dropped; ``last_stats`` reports
    how many. K need not be equal across identities. ``mean`` averages over kept anchors.
    Mining uses the B×B matrix without gradient; the loss recomputes only the 2B mined distances
    (row-wise), so backward costs O(B·D) instead of a pass through the whole matrix.
    """

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "hermans2017": {"soft": True, "margin": 0.0, "distance": "euclidean", "reduction": "mean"},
        "bot": {"margin": 0.3, "distance": "euclidean", "reduction": "mean"},
        "pml": {"margin": 0.05, "distance": {"name": "euclidean", "normalize": True}, "reduction": "mean_nonzero"},
    }

    def __init__(self, margin: float = 0.3, distance: Any = None, soft: bool = False, reduction: str = "mean"):
        super().__init__(margin=margin, distance=distance, soft=soft, miner=None, reduction=reduction)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None,
                indices_tuple: Sequence[torch.Tensor] | None = None, ref_emb: torch.Tensor | None = None,
                ref_labels: torch.Tensor | None = None) -> torch.Tensor:
        embeddings = _check_embeddings(embeddings)
        if indices_tuple is not None:
            self.last_stats = {}
            return self._from_tuple(embeddings, _as_triplets(indices_tuple), ref_emb)
        labels, ref, ref_labels, other = M.check_reference(embeddings, labels, ref_emb, ref_labels)
        pos, neg = M.label_masks(labels, ref_labels)
        with torch.no_grad():
            dis = dissimilarity(self.distance, self.distance.pairwise(
                embeddings.detach(), None if other is None else other.detach()))
        (a, p, n), stats = M.batch_hard(dis, pos, neg)
        self.last_stats = {**stats, "triplets": int(a.numel())}
        anchors = embeddings[a]
        d_ap = self._dis_paired(anchors, ref[p])
        d_an = self._dis_paired(anchors, ref[n])
        return _reduce(self._per_triplet(d_ap, d_an), self.reduction, embeddings)


class ImprovedTripletLoss(TripletLoss):
    """Improved triplet loss (Cheng et al., CVPR 2016):

    ℓ = max{d(a,p) − d(a,n), τ₁} + β·max{d(a,p), τ₂}, averaged over triplets. The second term
    pulls positives below an absolute bound τ₂. All triplets are reduced in closed form unless a
    miner or ``indices_tuple`` gives them. (Preset constants are from the reference doc's
    unverified [M] entry: τ₁ = −1, τ₂ = 0.01, β = 0.002, squared L2 on normalised features.)
    """

    reductions = ("mean", "sum", "none")
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "cheng2016": {"tau1": -1.0, "tau2": 0.01, "beta": 0.002,
                      "distance": {"name": "sqeuclidean", "normalize": True}},
    }

    def __init__(self, tau1: float = -1.0, tau2: float = 0.01, beta: float = 0.002, distance: Any = None,
                 miner: Any = None, reduction: str = "mean"):
        super().__init__(margin=-tau1, distance=distance, soft=False, miner=miner, reduction=reduction)
        self.tau1, self.tau2, self.beta = float(tau1), float(tau2), float(beta)

    def _per_triplet(self, d_ap, d_an):
        return torch.clamp_min(d_ap - d_an, self.tau1) + self.beta * torch.clamp_min(d_ap, self.tau2)

    def forward(self, embeddings, labels=None, indices_tuple=None):
        embeddings = _check_embeddings(embeddings)
        self.last_stats = {}
        if indices_tuple is None and self.miner is not None:
            indices_tuple = self.miner(embeddings, labels)
        if indices_tuple is not None:
            return self._from_tuple(embeddings, _as_triplets(indices_tuple))
        if self.reduction == "none":
            raise ConfigError("reduction='none' needs explicit triplets.", hint="Pass indices_tuple or a miner.")
        labels = M.check_labels(labels, embeddings.shape[0]).to(embeddings.device)
        pos, neg = M.label_masks(labels)
        dis = self._dis_matrix(embeddings)
        # Σ max(x, τ₁) = Σ [x − τ₁]₊ + τ₁·N  (the hinge sum is the closed-form all-triplet sum)
        hinge, n, _ = all_triplet_hinge(dis, pos, neg, -self.tau1)
        pull = torch.where(pos, torch.clamp_min(dis, self.tau2) * neg.sum(1, keepdim=True), torch.zeros_like(dis))
        self.last_stats = {"triplets": n}
        if n == 0:
            return _zero(embeddings)
        total = hinge + self.tau1 * n + self.beta * pull.sum()
        return total / n if self.reduction == "mean" else total


# --------------------------------------------------------------------------- quadruplet


class QuadrupletLoss(MetricLoss):
    """Quadruplet loss (Chen et al., CVPR 2017):

    [d(a,p) − d(a,n₁) + α₁]₊ + [d(a,p) − d(n₁,n₂) + α₂]₊ with y_n₁ ≠ y_n₂ and both ≠ y_a, α₂ < α₁.
    With ``indices_tuple = (a, p, n1, n2)`` the given quadruplets are used; otherwise online hard
    mining per anchor: hardest positive, hardest negative, and the closest pair of two other
    identities (computed with three masked B×B minima). The two terms are reduced separately and
    summed; anchors without a positive/negative are dropped, and the second term is skipped for
    anchors with fewer than two other identities in the batch. Fixed margins (the paper's
    batch-adaptive margins are not implemented).
    """

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "chen2017": {"margin": 1.0, "margin2": 0.5, "distance": "sqeuclidean"},
    }

    def __init__(self, margin: float = 1.0, margin2: float = 0.5, distance: Any = "sqeuclidean",
                 reduction: str = "mean"):
        super().__init__(distance, reduction)
        self.margin, self.margin2 = float(margin), float(margin2)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None,
                indices_tuple: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        embeddings = _check_embeddings(embeddings)
        if indices_tuple is not None:
            if len(indices_tuple) != 4:
                raise ConfigError("QuadrupletLoss needs indices_tuple = (a, p, n1, n2).")
            a, p, n1, n2 = indices_tuple
            d_ap = self._dis_paired(embeddings[a], embeddings[p])
            t1 = F.relu(d_ap - self._dis_paired(embeddings[a], embeddings[n1]) + self.margin)
            t2 = F.relu(d_ap - self._dis_paired(embeddings[n1], embeddings[n2]) + self.margin2)
            self.last_stats = {"quadruplets": int(a.numel())}
        else:
            labels = M.check_labels(labels, embeddings.shape[0]).to(embeddings.device)
            pos, neg = M.label_masks(labels)
            with torch.no_grad():
                dis = self._dis_matrix(embeddings.detach())
            (a, p, n), stats = M.batch_hard(dis, pos, neg)
            i, j, ok = _hardest_other_pair(dis, labels, neg)
            d_ap = self._dis_paired(embeddings[a], embeddings[p])
            t1 = F.relu(d_ap - self._dis_paired(embeddings[a], embeddings[n]) + self.margin)
            ok = ok[a]
            t2 = F.relu(d_ap[ok] - self._dis_paired(embeddings[i[a][ok]], embeddings[j[a][ok]]) + self.margin2)
            self.last_stats = {**stats, "second_term": int(ok.sum())}
        if self.reduction == "none":
            return torch.cat([t1, t2])
        return _reduce(t1, self.reduction, embeddings) + _reduce(t2, self.reduction, embeddings)


def _hardest_other_pair(dis: torch.Tensor, labels: torch.Tensor, neg: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each anchor, the closest pair (i, j) with y_i ≠ y_j and neither label equal to y_a.

    The global closest negative pair (labels c1, c2) is valid for every anchor whose label is
    neither c1 nor c2; those two classes get a second masked minimum each. Returns per-anchor
    i, j and whether such a pair exists.
    """
    big = torch.finfo(dis.dtype).max
    b = dis.shape[0]
    zeros = torch.zeros(b, dtype=torch.long, device=dis.device)
    if not bool(neg.any()):
        return zeros, zeros, torch.zeros(b, dtype=torch.bool, device=dis.device)

    def argmin_excluding(excluded: torch.Tensor | None):
        mask = neg if excluded is None else neg & ~excluded[:, None] & ~excluded[None, :]
        flat = torch.where(mask, dis, torch.full_like(dis, big)).flatten().argmin()
        return flat // b, flat % b, bool(mask.any())

    gi, gj, _ = argmin_excluding(None)
    c1, c2 = labels[gi], labels[gj]
    i = gi.expand(b).clone()
    j = gj.expand(b).clone()
    ok = torch.ones(b, dtype=torch.bool, device=dis.device)
    for c in (c1, c2):
        rows = labels == c
        ci, cj, exists = argmin_excluding(rows)
        i[rows], j[rows] = ci, cj
        ok[rows] = exists
    return i, j, ok


# --------------------------------------------------------------------------- adaptive weights


def _masked_softmax(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    w = torch.softmax(torch.where(mask, x, torch.full_like(x, -torch.finfo(x.dtype).max)), dim=1)
    return torch.where(mask, w, torch.zeros_like(w))


class AdaptiveWeightTripletLoss(MetricLoss):
    """Softmax-weighted triplet (AGW "WRT", Ye et al. TPAMI 2021).

    Per anchor: positives weighted by softmax(d) (far ones count more), negatives by softmax(−d)
    (close ones count more); D_p = Σ w·d, D_n = Σ w·d; loss softplus(D_p − D_n + m) (``soft``) or
    [D_p − D_n + m]₊. ``include_self`` counts the anchor (d = 0) among its positives, as fast-reid
    does. Anchors with no positive or no negative are dropped. ``indices_tuple`` pairs
    ``(a1, p, a2, n)`` restrict the positive/negative sets.
    """

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "agw": {"soft": True, "margin": 0.0, "include_self": True, "distance": "euclidean"},
    }

    def __init__(self, margin: float = 0.0, soft: bool = True, include_self: bool = False, distance: Any = None,
                 reduction: str = "mean"):
        super().__init__(distance, reduction)
        self.margin, self.soft, self.include_self = float(margin), bool(soft), bool(include_self)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None,
                indices_tuple: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        embeddings = _check_embeddings(embeddings)
        b = embeddings.shape[0]
        if indices_tuple is None:
            labels = M.check_labels(labels, b).to(embeddings.device)
            pos, neg = M.label_masks(labels)
        else:
            a1, p, a2, n = _as_pairs(indices_tuple)
            pos = torch.zeros(b, b, dtype=torch.bool, device=embeddings.device)
            neg = torch.zeros_like(pos)
            pos[a1, p] = True
            neg[a2, n] = True
        if self.include_self:
            pos = pos | torch.eye(b, dtype=torch.bool, device=embeddings.device)
        dis = self._dis_matrix(embeddings)
        d_p = (_masked_softmax(dis, pos) * dis).sum(1)
        d_n = (_masked_softmax(-dis, neg) * dis).sum(1)
        keep = (pos & ~torch.eye(b, dtype=torch.bool, device=pos.device)).any(1) & neg.any(1)
        x = d_p[keep] - d_n[keep] + self.margin
        self.last_stats = {"anchors": b, "kept": int(keep.sum()), "dropped": int(b - keep.sum())}
        return _reduce(F.softplus(x) if self.soft else F.relu(x), self.reduction, embeddings)


# --------------------------------------------------------------------------- verification head


class VerificationLoss(nn.Module):
    """Binary same/different loss on a fused pair feature → linear layer → BCE-with-logits.

    ``fusion``: ``absdiff`` |f1 − f2| (Koch et al. 2015), ``sqdiff`` (f1 − f2)², ``prod`` f1⊙f2, or
    ``absdiff_prod`` (both, concatenated). Pairs come from ``indices_tuple`` (a1, p, a2, n), or
    from labels: ``pairs="all"`` (every unordered pair), ``"hard"`` (each anchor's hardest positive
    and negative). ``balance=True`` weighs the positive and negative means equally (a P×K batch has
    far more negative pairs). :meth:`pairs` takes explicit (x1, x2, same) pairs and
    :meth:`predict` gives the probability of "same".
    """

    FUSIONS = ("absdiff", "sqdiff", "prod", "absdiff_prod")
    presets: ClassVar[dict[str, dict[str, Any]]] = {"koch2015": {"fusion": "absdiff", "balance": False}}

    def __init__(self, embedding_dim: int, fusion: str = "absdiff_prod", balance: bool = True, pairs: str = "all"):
        super().__init__()
        if fusion not in self.FUSIONS:
            raise ConfigError(f"Unknown fusion {fusion!r}.", hint=f"Use one of: {', '.join(self.FUSIONS)}.")
        if pairs not in ("all", "hard"):
            raise ConfigError(f"Unknown pair selection {pairs!r}.", hint="Use 'all' or 'hard'.")
        if embedding_dim <= 0:
            raise ConfigError(f"embedding_dim must be positive, got {embedding_dim}.")
        self.fusion, self.balance, self.pair_mode = fusion, bool(balance), pairs
        self.head = nn.Linear(embedding_dim * (2 if fusion == "absdiff_prod" else 1), 1)
        self.last_stats: dict[str, Any] = {}

    @classmethod
    def preset(cls, name: str, embedding_dim: int, **overrides: Any) -> VerificationLoss:
        if name not in cls.presets:
            raise ConfigError(f"VerificationLoss has no preset {name!r}.", hint=f"Available: {', '.join(cls.presets)}.")
        return cls(embedding_dim, **{**cls.presets[name], **overrides})

    def fuse(self, f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
        dtype = compute_dtype(f1, f2)
        f1, f2 = f1.to(dtype), f2.to(dtype)
        if self.fusion == "absdiff":
            return (f1 - f2).abs()
        if self.fusion == "sqdiff":
            return (f1 - f2).square()
        if self.fusion == "prod":
            return f1 * f2
        return torch.cat([(f1 - f2).abs(), f1 * f2], dim=1)

    def logits(self, f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
        fused = self.fuse(f1, f2)
        return F.linear(fused, self.head.weight.to(fused.dtype), self.head.bias.to(fused.dtype)).squeeze(1)

    def predict(self, f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
        """Probability that each row pair shows the same identity."""
        return torch.sigmoid(self.logits(f1, f2))

    def _bce(self, logits: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
        target = same.to(logits.dtype)
        per = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        n_pos, n_neg = int(same.sum()), int((~same).sum())
        self.last_stats = {"positive_pairs": n_pos, "negative_pairs": n_neg}
        if per.numel() == 0:
            return logits.sum() * 0.0
        if self.balance and n_pos and n_neg:
            return 0.5 * (per[same].mean() + per[~same].mean())
        return per.mean()

    def pairs(self, x1: torch.Tensor, x2: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
        """BCE on explicit pairs: rows of x1, x2 and ``same`` (B,) bool/0-1."""
        x1, x2 = _check_embeddings(x1), _check_embeddings(x2)
        same = torch.as_tensor(same, device=x1.device).bool()
        if same.shape != (x1.shape[0],) or x2.shape != x1.shape:
            raise ConfigError("pairs() needs x1, x2 of equal shape (B, D) and same of shape (B,).")
        return self._bce(self.logits(x1, x2), same)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None,
                indices_tuple: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        embeddings = _check_embeddings(embeddings)
        if indices_tuple is None:
            labels = M.check_labels(labels, embeddings.shape[0]).to(embeddings.device)
            pos, neg = M.label_masks(labels)
            if self.pair_mode == "all":
                upper = torch.ones_like(pos).triu(1)
                a1, p, a2, n = M.all_pairs(pos & upper, neg & upper)
            else:
                with torch.no_grad():
                    dis = get_distance("euclidean").pairwise(embeddings.detach())
                (a, hp, hn), _ = M.batch_hard(dis, pos, neg)
                a1, p, a2, n = a, hp, a, hn
        else:
            a1, p, a2, n = _as_pairs(indices_tuple)
        i = torch.cat([a1, a2])
        j = torch.cat([p, n])
        same = torch.cat([torch.ones_like(a1, dtype=torch.bool), torch.zeros_like(a2, dtype=torch.bool)])
        return self._bce(self.logits(embeddings[i], embeddings[j]), same)


# --------------------------------------------------------------------------- ID loss


class IDLoss(nn.Module):
    """Identity (softmax cross-entropy) loss with label smoothing and an optional classifier.

    With ``num_classes`` and ``embedding_dim`` the loss owns a bias-free linear classifier,
    optionally preceded by a BNNeck (BatchNorm1d with a frozen zero bias; BoT): the metric losses
    use the pre-BN embedding, the ID loss the post-BN one. Without them ``embeddings`` are logits.
    ``smoothing`` ε: ``"uniform"`` targets (1−ε)·onehot + ε/C (torchreid, BoT, PyTorch);
    ``"others"`` puts ε/(C−1) on the non-target classes (fast-reid).
    """

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "bot": {"smoothing": 0.1, "smoothing_form": "uniform", "bnneck": True},
        "torchreid": {"smoothing": 0.1, "smoothing_form": "uniform", "bnneck": False},
        "fastreid": {"smoothing": 0.1, "smoothing_form": "others", "bnneck": True},
    }

    def __init__(self, num_classes: int | None = None, embedding_dim: int | None = None, smoothing: float = 0.0,
                 smoothing_form: str = "uniform", bnneck: bool = False):
        super().__init__()
        if not 0.0 <= smoothing < 1.0:
            raise ConfigError(f"smoothing must be in [0, 1), got {smoothing}.")
        if smoothing_form not in ("uniform", "others"):
            raise ConfigError(f"Unknown smoothing_form {smoothing_form!r}.", hint="Use 'uniform' or 'others'.")
        if (num_classes is None) != (embedding_dim is None):
            raise ConfigError("Give both num_classes and embedding_dim for a built-in classifier, or neither.")
        self.smoothing, self.smoothing_form = float(smoothing), smoothing_form
        self.num_classes = num_classes
        self.neck: nn.Module | None = None
        self.classifier: nn.Linear | None = None
        if num_classes is not None:
            if bnneck:
                self.neck = nn.BatchNorm1d(embedding_dim)
                self.neck.bias.requires_grad_(False)
            self.classifier = nn.Linear(embedding_dim, num_classes, bias=False)
            nn.init.normal_(self.classifier.weight, std=0.001)
        elif bnneck:
            raise ConfigError("bnneck=True needs num_classes and embedding_dim.")
        self.last_stats: dict[str, Any] = {}

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> IDLoss:
        if name not in cls.presets:
            raise ConfigError(f"IDLoss has no preset {name!r}.", hint=f"Available: {', '.join(cls.presets)}.")
        return cls(**{**cls.presets[name], **overrides})

    def features(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Post-BNNeck features (the inference features in BoT); identity without a neck."""
        return embeddings if self.neck is None else self.neck(embeddings)

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        if self.classifier is None:
            return embeddings
        # fp16/bf16 features meet the classifier in its own (fp32) precision
        return self.classifier(self.features(embeddings.to(self.classifier.weight.dtype)))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None,
                indices_tuple: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        embeddings = _check_embeddings(embeddings)
        labels = M.check_labels(labels, embeddings.shape[0]).to(embeddings.device)
        logits = self.logits(embeddings)
        logits = logits.to(compute_dtype(logits))
        c = logits.shape[1]
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= c):
            raise ConfigError(f"ID labels must be in [0, {c}), got range [{int(labels.min())}, {int(labels.max())}].",
                              hint="Map identities to contiguous class indices 0..C-1.")
        logp = F.log_softmax(logits, dim=1)
        eps = self.smoothing
        target = F.one_hot(labels, c).to(logp.dtype)
        if self.smoothing_form == "uniform" or c == 1:
            q = (1 - eps) * target + eps / c
        else:
            q = (1 - eps) * target + eps / (c - 1) * (1 - target)
        loss = -(q * logp).sum(1)
        with torch.no_grad():
            correct = (logits.argmax(1) == labels).float()
            self.last_stats = {"accuracy": float(correct.mean()) if labels.numel() else 0.0}
        return loss.mean() if loss.numel() else _zero(embeddings)


# --------------------------------------------------------------------------- combinations


class CombinedLoss(nn.Module):
    """Weighted sum of losses: ``CombinedLoss([(1.0, IDLoss(...)), (1.0, BatchHardTripletLoss())])``.

    A term may be ``(weight, loss, miner)``: the miner's index tuple is passed to that loss only.
    ``last_stats`` holds each term's (unweighted) value.
    """

    def __init__(self, terms: Sequence[tuple]):
        super().__init__()
        if not terms:
            raise ConfigError("CombinedLoss needs at least one (weight, loss) term.")
        weights, losses, miners = [], [], []
        for k, term in enumerate(terms):
            if not isinstance(term, (tuple, list)) or len(term) not in (2, 3):
                raise ConfigError(f"CombinedLoss term {k} must be (weight, loss) or (weight, loss, miner), "
                                  f"got {term!r}.")
            weights.append(float(term[0]))
            losses.append(term[1])
            miners.append(term[2] if len(term) == 3 else None)
        self.weights = weights
        self.losses = nn.ModuleList(losses)
        self.miners = nn.ModuleList([m if m is not None else nn.Identity() for m in miners])
        self._has_miner = [m is not None for m in miners]
        self.last_stats: dict[str, Any] = {}

    @classmethod
    def preset(cls, name: str, num_classes: int, embedding_dim: int) -> CombinedLoss:
        """``bot``: label-smoothed ID loss with BNNeck + batch-hard triplet (margin 0.3), 1:1."""
        if name != "bot":
            raise ConfigError(f"CombinedLoss has no preset {name!r}.", hint="Available: bot.")
        return cls([(1.0, IDLoss.preset("bot", num_classes=num_classes, embedding_dim=embedding_dim)),
                    (1.0, BatchHardTripletLoss.preset("bot"))])

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None,
                indices_tuple: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        total = None
        stats = {}
        for k, (w, loss, miner, has) in enumerate(zip(self.weights, self.losses, self.miners, self._has_miner,
                                                      strict=True)):
            tup = miner(embeddings, labels) if has else indices_tuple
            value = loss(embeddings, labels, indices_tuple=tup)
            stats[f"{k}_{type(loss).__name__}"] = float(value.detach())
            total = w * value if total is None else total + w * value
        self.last_stats = stats
        return total


# --------------------------------------------------------------------------- registry


def _builder(cls):
    def build(preset: str | None = None, **kwargs: Any):
        return cls.preset(preset, **kwargs) if preset else cls(**kwargs)

    build.__doc__ = f"Build {cls.__name__} (optionally from a named preset)."
    return build


def _build_combined(terms: Sequence[dict[str, Any]]) -> CombinedLoss:
    """Build from config: ``terms: [{name: id, weight: 1.0, ...kwargs}, {name: batch_hard_triplet, ...}]``."""
    built = []
    for term in terms:
        term = dict(term)
        name = term.pop("name", None)
        weight = term.pop("weight", 1.0)
        if name is None or name == "combined":
            raise ConfigError(f"Each combined term needs a loss 'name' (not 'combined'), got {term!r}.")
        built.append((weight, LOSSES.build(name, **term)))
    return CombinedLoss(built)


_REGISTERED = {
    "contrastive": ContrastiveLoss,
    "triplet": TripletLoss,
    "batch_hard_triplet": BatchHardTripletLoss,
    "improved_triplet": ImprovedTripletLoss,
    "quadruplet": QuadrupletLoss,
    "adaptive_weight_triplet": AdaptiveWeightTripletLoss,
    "verification": VerificationLoss,
    "id": IDLoss,
}
for _name, _cls in _REGISTERED.items():
    if _name not in LOSSES:
        LOSSES.register(_name)(_builder(_cls))
if "combined" not in LOSSES:
    LOSSES.register("combined")(_build_combined)
