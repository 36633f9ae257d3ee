"""Miners: choose which pairs / triplets of a batch a loss should use, as index tuples.

A miner takes ``(embeddings, labels)`` and returns an index tuple that every loss in
:mod:`siamkit.losses.metric` accepts as ``indices_tuple``:

* triplets ``(a, p, n)`` — anchor, positive, negative row indices;
* pairs ``(a1, p, a2, n)`` — positive pairs ``(a1[i], p[i])`` and negative pairs ``(a2[j], n[j])``.

With ``ref_emb`` / ``ref_labels`` (a reference set: another view, a memory bank, other ranks'
embeddings) anchors index ``embeddings`` and positives/negatives index ``ref_emb``; no entry is
excluded as "self".

Everything is computed from B×B masks and the B×B distance matrix — never a B×B×B tensor
(B = 4096 would need 69 G elements). The functional cores (``batch_hard``, ``semi_hard``,
``all_triplets``) take a *dissimilarity* matrix (larger = farther) so they work unchanged for
distances and for negated similarities. Each miner keeps the counts of its last call in
``last_stats`` (e.g. how many anchors had no positive or no negative and were dropped).
"""

from __future__ import annotations

import torch
from torch import nn

from siamkit.errors import ConfigError
from siamkit.losses.distances import Distance, dissimilarity, get_distance

Triplets = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
Pairs = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def check_labels(labels: torch.Tensor | None, batch: int) -> torch.Tensor:
    """Validate ``labels`` as a 1-D integer tensor of length ``batch``."""
    if labels is None:
        raise ConfigError("This loss/miner needs labels (one identity per embedding).",
                          hint="Pass labels, or an explicit indices_tuple.")
    if not isinstance(labels, torch.Tensor):
        labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.shape[0] != batch:
        raise ConfigError(f"labels must have shape ({batch},), got {tuple(labels.shape)}.",
                          hint="Give exactly one label per embedding row.")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ConfigError(f"labels must be integers, got {labels.dtype}.")
    return labels


def label_masks(labels: torch.Tensor, ref_labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(positive, negative) B×B' boolean masks. Within one batch (``ref_labels`` None) an embedding
    is never its own positive; against a separate reference set every same-label entry counts."""
    if ref_labels is not None:
        same = labels[:, None] == ref_labels[None, :]
        return same, ~same
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def check_reference(embeddings: torch.Tensor, labels, ref_emb: torch.Tensor | None, ref_labels
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Validate (labels, ref_emb, ref_labels); returns labels, the reference rows (``embeddings``
    itself when there is no reference) and the reference labels (None within one batch)."""
    labels = check_labels(labels, embeddings.shape[0]).to(embeddings.device)
    if ref_emb is None:
        if ref_labels is not None:
            raise ConfigError("ref_labels given without ref_emb.", hint="Pass both, or neither.")
        return labels, embeddings, None, None
    if not isinstance(ref_emb, torch.Tensor) or ref_emb.dim() != 2 or ref_emb.shape[1] != embeddings.shape[1]:
        got = tuple(ref_emb.shape) if isinstance(ref_emb, torch.Tensor) else type(ref_emb).__name__
        raise ConfigError(f"ref_emb must have shape (N, {embeddings.shape[1]}), got {got}.")
    ref_labels = check_labels(ref_labels, ref_emb.shape[0]).to(embeddings.device)
    return labels, ref_emb, ref_labels, ref_emb


def _big(t: torch.Tensor) -> float:
    return torch.finfo(t.dtype).max


def batch_hard(dis: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> tuple[Triplets, dict]:
    """For every anchor, its farthest positive and closest negative (Hermans et al. 2017).

    Anchors without a positive (single-image identity) or without a negative (one identity in
    the batch) are dropped and counted in the returned stats.
    """
    big = _big(dis)
    hard_p = torch.where(pos, dis, torch.full_like(dis, -big)).argmax(1)
    hard_n = torch.where(neg, dis, torch.full_like(dis, big)).argmin(1)
    has_p, has_n = pos.any(1), neg.any(1)
    keep = has_p & has_n
    anchors = keep.nonzero().squeeze(1)
    stats = {"anchors": int(dis.shape[0]), "kept": int(anchors.numel()),
             "no_positive": int((~has_p).sum()), "no_negative": int((~has_n).sum())}
    stats["dropped"] = stats["anchors"] - stats["kept"]
    return (anchors, hard_p[anchors], hard_n[anchors]), stats


def _sorted_negatives(dis: torch.Tensor, neg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per anchor row: negatives' dissimilarities sorted ascending (non-negatives pushed to the end),
    their column indices, and the number of negatives per row."""
    values, order = torch.where(neg, dis, torch.full_like(dis, _big(dis))).sort(dim=1)
    return values, order, neg.sum(1)


def semi_hard(dis: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, margin: float | None,
              fallback: str = "drop") -> tuple[Triplets, dict]:
    """For every positive pair (a, p), the closest negative with d(a, n) > d(a, p) (FaceNet).

    ``margin``: if given, the negative must also satisfy d(a, n) < d(a, p) + margin (strictly
    semi-hard). ``fallback`` for pairs without such a negative: ``"drop"`` them, or ``"largest"``
    — use the anchor's farthest negative (TensorFlow Addons' ``triplet_semihard_loss``).
    """
    if fallback not in ("drop", "largest"):
        raise ConfigError(f"Unknown semi-hard fallback {fallback!r}.", hint="Use 'drop' or 'largest'.")
    values, order, n_count = _sorted_negatives(dis, neg)
    a, p = pos.nonzero(as_tuple=True)
    # first sorted negative strictly farther than the positive, per (anchor, positive)
    first = torch.searchsorted(values, dis.contiguous(), right=True)[a, p]
    d_ap = dis[a, p]
    found = first < n_count[a]
    idx = first.clamp_max(dis.shape[1] - 1)
    if margin is not None:
        found = found & (values[a, idx] < d_ap + margin)
    has_neg = n_count[a] > 0
    if fallback == "largest":
        idx = torch.where(found, idx, (n_count[a] - 1).clamp_min(0))
        keep = has_neg
    else:
        keep = found
    n = order[a, idx]
    stats = {"positive_pairs": int(a.numel()), "semi_hard": int(found.sum()), "kept": int(keep.sum())}
    return (a[keep], p[keep], n[keep]), stats


def all_pairs(pos: torch.Tensor, neg: torch.Tensor) -> Pairs:
    """Every ordered positive pair and every ordered negative pair, as ``(a1, p, a2, n)``."""
    a1, p = pos.nonzero(as_tuple=True)
    a2, n = neg.nonzero(as_tuple=True)
    return a1, p, a2, n


def all_triplets(pos: torch.Tensor, neg: torch.Tensor) -> Triplets:
    """Every valid triplet (a, p, n), enumerated from the B×B masks in O(#triplets) memory.

    The number of triplets itself grows like B³; prefer losses' built-in all-triplet
    reduction (which never enumerates them) for large batches.
    """
    a_p, p = pos.nonzero(as_tuple=True)  # row-major: sorted by anchor
    a_n, n = neg.nonzero(as_tuple=True)
    n_count = neg.sum(1)
    start = torch.cumsum(n_count, 0) - n_count  # offset of each anchor's negatives in n
    reps = n_count[a_p]
    a = torch.repeat_interleave(a_p, reps)
    pp = torch.repeat_interleave(p, reps)
    group_start = torch.repeat_interleave(torch.cumsum(reps, 0) - reps, reps)
    within = torch.arange(a.numel(), device=a.device) - group_start
    return a, pp, n[start[a] + within]


class Miner(nn.Module):
    """Base miner: computes the dissimilarity matrix with ``distance`` and the label masks."""

    def __init__(self, distance: Distance | str | None = None):
        super().__init__()
        self.distance = get_distance(distance)
        self.last_stats: dict = {}

    def _setup(self, embeddings: torch.Tensor, labels, ref_emb=None, ref_labels=None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        labels, _, ref_labels, ref = check_reference(embeddings, labels, ref_emb, ref_labels)
        with torch.no_grad():
            other = None if ref is None else ref.detach()
            dis = dissimilarity(self.distance, self.distance.pairwise(embeddings.detach(), other))
        pos, neg = label_masks(labels, ref_labels)
        return dis, pos, neg


class BatchHardMiner(Miner):
    """Hardest positive and hardest negative per anchor → triplets ``(a, p, n)``."""

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor, ref_emb=None, ref_labels=None) -> Triplets:
        dis, pos, neg = self._setup(embeddings, labels, ref_emb, ref_labels)
        triplets, self.last_stats = batch_hard(dis, pos, neg)
        return triplets


class SemiHardMiner(Miner):
    """FaceNet semi-hard negatives for every positive pair → triplets ``(a, p, n)``."""

    def __init__(self, distance: Distance | str | None = None, margin: float | None = 0.2,
                 fallback: str = "drop"):
        super().__init__(distance)
        self.margin = margin
        self.fallback = fallback

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor, ref_emb=None, ref_labels=None) -> Triplets:
        dis, pos, neg = self._setup(embeddings, labels, ref_emb, ref_labels)
        triplets, self.last_stats = semi_hard(dis, pos, neg, self.margin, self.fallback)
        return triplets


class AllPairsMiner(Miner):
    """All ordered positive and negative pairs → ``(a1, p, a2, n)``."""

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor, ref_emb=None, ref_labels=None) -> Pairs:
        labels, _, ref_labels, _ = check_reference(embeddings, labels, ref_emb, ref_labels)
        pos, neg = label_masks(labels, ref_labels)
        out = all_pairs(pos, neg)
        self.last_stats = {"positive_pairs": int(out[0].numel()), "negative_pairs": int(out[2].numel())}
        return out


class AllTripletsMiner(Miner):
    """All valid triplets → ``(a, p, n)`` (memory grows with the number of triplets)."""

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor, ref_emb=None, ref_labels=None) -> Triplets:
        labels, _, ref_labels, _ = check_reference(embeddings, labels, ref_emb, ref_labels)
        pos, neg = label_masks(labels, ref_labels)
        out = all_triplets(pos, neg)
        self.last_stats = {"triplets": int(out[0].numel())}
        return out
