"""Retrieval metrics: re-ID CMC/mAP/mINP, MAP@R and Recall@K, and k-reciprocal re-ranking.

- :func:`evaluate_reid` follows the Market-1501 protocol used by torchreid and fast-reid: per query,
  gallery entries with the query's pid **and** camera are removed before ranking.
- :func:`map_at_r` / :func:`recall_at_k` follow pytorch-metric-learning's ``AccuracyCalculator`` and
  the Recall@K of deep metric learning papers (CUB, Cars, SOP); the nearest-neighbour search is an
  exact blockwise top-k in numpy, so no FAISS or GPU memory pitfalls.
- :func:`re_ranking` is Zhong et al.'s k-reciprocal re-ranking (CVPR 2017), vectorised with sparse
  matrices; it needs the (N_q + N_g)² joint distance matrix.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from siamkit.errors import DataError

JUNK_PID = -1
DISTRACTOR_PID = 0


# --------------------------------------------------------------------------- re-ID CMC / mAP


def evaluate_reid(
    distmat,
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    max_rank: int = 50,
    ap_mode: str = "noninterpolated",
    chunk: int = 512,
) -> dict:
    """CMC, mAP and mINP for re-identification (lower distance = more similar).

    Protocol (torchreid / fast-reid / BoT): for each query the gallery is sorted by ascending
    distance (stable), entries with the same pid *and* the same camera as the query are removed,
    and gallery entries with pid -1 (Market "junk" detections) are ignored entirely. Distractors
    (pid 0) stay in the ranking as negatives. Queries with no remaining true match are skipped
    and not counted (``num_valid_queries``).

    ``ap_mode``: ``"noninterpolated"`` (torchreid/fast-reid: mean of precision at each hit) or
    ``"trapezoid"`` (the official Market MATLAB code: mean of (precision before + at each hit)/2,
    0.5–1 point lower). ``cmc[k-1]`` is Rank-k.
    """
    d = np.asarray(distmat, dtype=np.float64)
    q_pids, g_pids = np.asarray(q_pids).reshape(-1), np.asarray(g_pids).reshape(-1)
    q_camids, g_camids = np.asarray(q_camids).reshape(-1), np.asarray(g_camids).reshape(-1)
    if d.ndim != 2 or d.shape != (q_pids.size, g_pids.size):
        raise DataError(
            f"distmat has shape {d.shape}, expected (num_query, num_gallery) = ({q_pids.size}, {g_pids.size})."
        )
    if q_camids.size != q_pids.size or g_camids.size != g_pids.size:
        raise DataError("Camera ids must have one entry per query / gallery image.")
    if ap_mode not in ("noninterpolated", "trapezoid"):
        raise DataError(f"Unknown ap_mode {ap_mode!r}.", hint="Use 'noninterpolated' or 'trapezoid'.")
    if not np.all(np.isfinite(d)):
        raise DataError("distmat contains NaN or infinite values.")
    num_g = g_pids.size
    if num_g == 0 or q_pids.size == 0:
        raise DataError("Empty query or gallery set.")
    if num_g < max_rank:
        warnings.warn(f"Gallery has only {num_g} images; max_rank lowered from {max_rank}.", UserWarning, stacklevel=2)
        max_rank = num_g

    cmc_sum = np.zeros(max_rank)
    aps, inps = [], []
    for start in range(0, q_pids.size, chunk):
        sl = slice(start, start + chunk)
        order = np.argsort(d[sl], axis=1, kind="stable")
        gp, gc = g_pids[order], g_camids[order]
        qp, qc = q_pids[sl, None], q_camids[sl, None]
        keep = ~((gp == qp) & (gc == qc)) & (gp != JUNK_PID)
        match = (gp == qp) & keep
        rank = np.cumsum(keep, axis=1)  # 1-based position among kept entries
        hits = np.cumsum(match, axis=1)
        num_rel = match.sum(axis=1)
        valid = num_rel > 0
        match, rank, hits, num_rel = match[valid], rank[valid], hits[valid], num_rel[valid]
        if not valid.any():
            continue
        first = np.where(match, rank, np.iinfo(np.int64).max).min(axis=1)
        cmc_sum += (first[:, None] <= np.arange(1, max_rank + 1)[None, :]).sum(axis=0)
        precision = np.where(match, hits / np.maximum(rank, 1), 0.0)
        if ap_mode == "trapezoid":
            before = np.where(rank > 1, (hits - 1) / np.maximum(rank - 1, 1), 1.0)
            precision = np.where(match, (precision + before) / 2.0, 0.0)
        aps.append(precision.sum(axis=1) / num_rel)
        last = np.where(match, rank, 0).max(axis=1)
        inps.append(num_rel / last)
    n_valid = int(sum(a.size for a in aps))
    if n_valid == 0:
        raise DataError("No query has a true match in the gallery.", hint="Check the pids and camera ids.")
    cmc = cmc_sum / n_valid
    return {
        "cmc": cmc,
        "mAP": float(np.concatenate(aps).mean()),
        "mINP": float(np.concatenate(inps).mean()),
        "rank1": float(cmc[0]),
        "rank5": float(cmc[min(4, max_rank - 1)]),
        "rank10": float(cmc[min(9, max_rank - 1)]),
        "num_valid_queries": n_valid,
        "ap_mode": ap_mode,
    }


# --------------------------------------------------------------------------- kNN, MAP@R, Recall@K


NAMED_DISTANCES = ("euclidean", "sqeuclidean", "cosine")


def pairwise_distance(a, b, distance: str = "euclidean") -> np.ndarray:
    """Distance matrix: ``euclidean`` (not squared), ``sqeuclidean`` or ``cosine`` (1 − cos).

    The numpy face of :mod:`siamkit.losses.distances` (the one implementation), computed in float64.
    Evaluation needs no gradient, so the Euclidean square root is taken of every value (``eps=0``):
    distances below 1e-6 (collapsed embeddings) stay distinct instead of becoming 0.
    """
    if distance not in NAMED_DISTANCES:
        raise DataError(f"Unknown distance {distance!r}.", hint="Use 'euclidean', 'sqeuclidean' or 'cosine'.")
    import torch

    from siamkit.losses.distances import get_distance

    a = torch.from_numpy(np.asarray(a, dtype=np.float64))
    b = torch.from_numpy(np.asarray(b, dtype=np.float64))
    with torch.no_grad():
        return get_distance(distance, **({"eps": 0.0} if distance == "euclidean" else {})).pairwise(a, b).numpy()


def knn(query, reference, k: int, distance: str = "euclidean", exclude_self: bool = False, block: int = 1024):
    """Exact k nearest references of each query, nearest first: ``(indices, distances)``.

    Computed blockwise over queries (memory ``block × len(reference)``). ``exclude_self`` drops
    reference ``i`` for query ``i`` (the reference set *is* the query set).
    """
    query, reference = _embeddings(query, "query"), _embeddings(reference, "reference")
    if query.shape[1] != reference.shape[1]:
        raise DataError(f"Query dimension {query.shape[1]} differs from reference dimension {reference.shape[1]}.")
    n_ref = reference.shape[0] - (1 if exclude_self else 0)
    k = min(k, n_ref)
    if k < 1:
        raise DataError("The reference set is empty.")
    idx_out = np.empty((query.shape[0], k), dtype=np.int64)
    dist_out = np.empty((query.shape[0], k))
    for start in range(0, query.shape[0], block):
        d = pairwise_distance(query[start : start + block], reference, distance)
        if exclude_self:
            rows = np.arange(d.shape[0])
            d[rows, rows + start] = np.inf
        if k < d.shape[1]:
            part = np.argpartition(d, k - 1, axis=1)[:, :k]
        else:
            part = np.tile(np.arange(d.shape[1]), (d.shape[0], 1))
        pd = np.take_along_axis(d, part, axis=1)
        o = np.argsort(pd, axis=1, kind="stable")
        idx_out[start : start + block] = np.take_along_axis(part, o, axis=1)
        dist_out[start : start + block] = np.take_along_axis(pd, o, axis=1)
    return idx_out, dist_out


def _embeddings(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise DataError(f"{name} embeddings must be a 2-D array (N × D); got shape {x.shape}.")
    if not np.all(np.isfinite(x)):
        raise DataError(f"{name} embeddings contain NaN or infinite values.")
    return x


def _retrieval_setup(embeddings, labels, ref_embeddings, ref_labels):
    labels = np.asarray(labels).reshape(-1)
    if ref_embeddings is None:
        ref_embeddings, ref_labels, self_ref = embeddings, labels, True
    else:
        if ref_labels is None:
            raise DataError("ref_labels are required with ref_embeddings.")
        ref_labels, self_ref = np.asarray(ref_labels).reshape(-1), False
    if len(embeddings) != labels.size or len(ref_embeddings) != ref_labels.size:
        raise DataError("Embeddings and labels differ in length.")
    values, counts = np.unique(ref_labels, return_counts=True)
    lookup = dict(zip(values.tolist(), counts.tolist(), strict=True))
    r = np.array([lookup.get(lab, 0) for lab in labels.tolist()]) - (1 if self_ref else 0)
    return ref_embeddings, ref_labels, self_ref, r


def map_at_r(embeddings, labels, ref_embeddings=None, ref_labels=None, distance: str = "euclidean") -> dict:
    """MAP@R, R-precision and Precision@1 as pytorch-metric-learning's ``AccuracyCalculator``.

    Without a reference set, each embedding queries all the others (itself excluded). For a query
    with R relevant references, MAP@R = (1/R) Σ_{i≤R} P@i·rel(i) over its top R retrievals.
    Queries whose label has no reference are excluded (``num_queries`` counts the rest).
    """
    ref, ref_labels, self_ref, r = _retrieval_setup(embeddings, labels, ref_embeddings, ref_labels)
    labels = np.asarray(labels).reshape(-1)
    ok = r > 0
    if not ok.any():
        raise DataError("No query has a relevant reference (every label is a singleton).")
    idx, _ = knn(embeddings, ref, int(r.max()), distance, exclude_self=self_ref)
    rel = ref_labels[idx] == labels[:, None]
    rel, r_ok = rel[ok], r[ok]
    k = rel.shape[1]
    within = np.arange(1, k + 1)[None, :] <= r_ok[:, None]
    rel_r = rel & within
    precision = np.cumsum(rel_r, axis=1) / np.arange(1, k + 1)[None, :]
    map_r = (precision * rel_r).sum(axis=1) / r_ok
    return {
        "map_at_r": float(map_r.mean()),
        "r_precision": float((rel_r.sum(axis=1) / r_ok).mean()),
        "precision_at_1": float(rel[:, 0].mean()),
        "num_queries": int(ok.sum()),
    }


def recall_at_k(
    embeddings,
    labels,
    ref_embeddings=None,
    ref_labels=None,
    ks: Sequence[int] = (1, 2, 4, 8),
    distance: str = "euclidean",
) -> dict[int, float]:
    """Recall@K: fraction of queries with at least one same-label item among their K nearest.

    Without a reference set each embedding queries all the others (itself excluded), as in the
    CUB-200 / Cars196 / SOP evaluation of deep metric learning papers.
    """
    ref, ref_labels, self_ref, r = _retrieval_setup(embeddings, labels, ref_embeddings, ref_labels)
    labels = np.asarray(labels).reshape(-1)
    ok = r > 0
    if not ok.any():
        raise DataError("No query has a relevant reference (every label is a singleton).")
    idx, _ = knn(embeddings, ref, max(ks), distance, exclude_self=self_ref)
    idx = idx[ok]
    hit = ref_labels[idx] == labels[ok][:, None]
    return {int(k): float(hit[:, :k].any(axis=1).mean()) for k in ks}


# --------------------------------------------------------------------------- k-reciprocal re-ranking


def re_ranking(q_g_dist, q_q_dist, g_g_dist, k1: int = 20, k2: int = 6, lambda_value: float = 0.3) -> np.ndarray:
    """k-reciprocal re-ranking (Zhong, Zheng, Cao, Li, CVPR 2017): the re-ranked query × gallery distance.

    Follows the authors' released code: the joint (query + gallery) distance is squared and each
    row divided by its maximum, d*; k-reciprocal neighbour sets R(i, k1) are expanded with the
    R(j, k1/2) that overlap them by more than 2/3, encoded as Gaussian-weighted vectors V, averaged
    over the k2 nearest neighbours (local query expansion), and compared by Jaccard distance.
    Result = (1 − λ)·d_Jaccard + λ·d*; with ``lambda_value=1`` it is d* (same ranking as the input).
    """
    q_g = np.asarray(q_g_dist, dtype=np.float64)
    q_q = np.asarray(q_q_dist, dtype=np.float64)
    g_g = np.asarray(g_g_dist, dtype=np.float64)
    nq, ng = q_g.shape if q_g.ndim == 2 else (0, 0)
    if q_g.ndim != 2 or q_q.shape != (nq, nq) or g_g.shape != (ng, ng):
        raise DataError(
            f"Re-ranking needs q_g (Nq×Ng), q_q (Nq×Nq), g_g (Ng×Ng); got {q_g.shape}, {q_q.shape}, {g_g.shape}."
        )
    if not 0.0 <= lambda_value <= 1.0:
        raise DataError(f"lambda_value must be in [0, 1]; got {lambda_value}.")
    if k1 < 1 or k2 < 1:
        raise DataError(f"k1 and k2 must be >= 1; got k1={k1}, k2={k2}.")
    dist = np.block([[q_q, q_g], [q_g.T, g_g]]) ** 2
    dist = dist / np.maximum(dist.max(axis=1, keepdims=True), 1e-12)
    if lambda_value == 1.0:
        return dist[:nq, nq:].copy()
    n = dist.shape[0]
    k1 = min(k1, n - 1)
    half = int(np.around(k1 / 2.0))
    top = min(max(k1, k2 - 1) + 1, n)
    part = np.argpartition(dist, top - 1, axis=1)[:, :top] if top < n else np.tile(np.arange(n), (n, 1))
    rank = np.take_along_axis(part, np.argsort(np.take_along_axis(dist, part, axis=1), axis=1, kind="stable"), 1)

    recip = _reciprocal_sets(rank, k1 + 1)
    recip_half = _reciprocal_sets(rank, half + 1)
    rows, cols, vals = [], [], []
    for i in range(n):
        ri = recip[i]
        expanded = [ri]
        for c in ri:
            rc = recip_half[c]
            if np.intersect1d(rc, ri, assume_unique=True).size > 2.0 / 3.0 * rc.size:
                expanded.append(rc)
        idx = np.unique(np.concatenate(expanded))
        w = np.exp(-dist[i, idx])
        rows.append(np.full(idx.size, i))
        cols.append(idx)
        vals.append(w / w.sum())
    from scipy import sparse

    v = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    if k2 > 1:  # local query expansion: average V over the k2 nearest neighbours
        qe = sparse.csr_matrix(
            (np.full(n * k2, 1.0 / k2), (np.repeat(np.arange(n), k2), rank[:, :k2].reshape(-1))), shape=(n, n)
        )
        v = (qe @ v).tocsr()
    v_csc = v.tocsc()
    jaccard = np.empty((nq, ng))
    for i in range(nq):
        row = v.getrow(i)
        cols_i, w_i = row.indices, row.data
        block = v_csc[:, cols_i].toarray()[nq:]  # gallery rows × the query's non-zero columns
        s = np.minimum(block, w_i[None, :]).sum(axis=1)
        jaccard[i] = 1.0 - s / (2.0 - s)
    return (1.0 - lambda_value) * jaccard + lambda_value * dist[:nq, nq:]


def _reciprocal_sets(rank: np.ndarray, k: int) -> list[np.ndarray]:
    """For each i: the j among i's first k neighbours (itself included) that have i among their first k."""
    k = min(k, rank.shape[1])
    fwd = rank[:, :k]
    n = rank.shape[0]
    from scipy import sparse

    a = sparse.csr_matrix((np.ones(n * k, dtype=bool), (np.repeat(np.arange(n), k), fwd.reshape(-1))), shape=(n, n))
    mutual = a.multiply(a.T).tocsr()
    out = []
    for i in range(n):
        members = mutual.indices[mutual.indptr[i] : mutual.indptr[i + 1]]
        # keep the forward (nearest-first) order of the reference code
        order = {j: p for p, j in enumerate(fwd[i].tolist())}
        out.append(np.array(sorted(members.tolist(), key=order.__getitem__), dtype=np.int64))
    return out
