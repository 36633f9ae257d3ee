"""Evaluation protocols on embeddings: verification pairs, within-alphabet one-shot trials, re-ID.

Each protocol takes embeddings (N×D float arrays) plus the labels it needs and returns a plain
dict of numbers (JSON-ready). Training validation (:mod:`siamkit.train.metric`), ``siamkit
eval --model`` and ``benchmarks/similarity.py`` all call these, so a number means the same thing
wherever it is printed. Distances are Euclidean (the zoo models' ``distance: euclidean``); the
baselines (:func:`raw_pixels`, :func:`hsv_stripe_histogram`) are embeddings too.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from siamkit.errors import DataError
from siamkit.eval.metric.oneshot import score_trials, within_group_trials
from siamkit.eval.metric.retrieval import evaluate_reid, pairwise_distance, re_ranking
from siamkit.eval.metric.verification import evaluate_verification, kfold_verification, roc_curve

FAR_TARGETS = (1e-3, 1e-2, 1e-1)


def plain(obj: Any) -> Any:
    """Numpy scalars/arrays (nested in dicts and lists) → JSON/YAML-safe Python values."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


# --------------------------------------------------------------------------- verification


def pair_distances(emb: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None):
    """Euclidean distances and same-identity flags of all unordered pairs (i < j), optionally masked."""
    d = pairwise_distance(emb, emb, "euclidean")
    i, j = np.triu_indices(len(emb), k=1)
    same = labels[i] == labels[j]
    keep = np.ones_like(same) if mask is None else mask[i, j]
    return d[i, j][keep], same[keep]


def verification_pairs(emb: np.ndarray, labels: np.ndarray, genuine: np.ndarray | None = None):
    """Distances and same flags of the protocol's pairs.

    Without forgeries (``genuine`` all true or None): every pair of images; same = same identity.
    With forgeries: pairs within one identity only, genuine–genuine (same) against
    genuine–forgery (skilled impostor); forgery–forgery pairs are not scored.
    """
    labels = np.asarray(labels)
    if genuine is None or np.all(genuine):
        return pair_distances(emb, labels)
    genuine = np.asarray(genuine, dtype=bool)
    mask = (labels[:, None] == labels[None, :]) & (genuine[:, None] | genuine[None, :])
    return pair_distances(emb, np.where(genuine, labels * 2, labels * 2 + 1), mask)


def eer_threshold(d: np.ndarray, same: np.ndarray) -> float:
    """Distance threshold at the equal-error point of these pairs (used to calibrate on validation pairs)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return float(-evaluate_verification(-d, same)["eer_threshold"])


def verification_metrics(d: np.ndarray, same: np.ndarray, threshold: float | None = None,
                         curve: bool = False) -> dict[str, Any]:
    """AUC, EER, TAR@FAR, 10-fold accuracy and, given a threshold calibrated elsewhere, the decisions there.

    ``curve=True`` adds the ROC points (``roc: {far, tar}``) for plotting.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ver = evaluate_verification(-d, same, far_targets=FAR_TARGETS)
        kfold = kfold_verification(-d, same, folds=10)
    out: dict[str, Any] = {
        "auc": ver["auc"], "eer": ver["eer"], "eer_threshold": -ver["eer_threshold"],
        "tar_at_far": {str(k): v for k, v in ver["tar_at_far"].items()},
        "kfold_accuracy": kfold["accuracy_mean"],
        "num_genuine_pairs": int(same.sum()), "num_impostor_pairs": int((~same).sum()),
    }
    if threshold is not None:
        decided = d <= threshold
        out.update(
            threshold=float(threshold),
            accuracy_at_threshold=float((decided == same).mean()),
            far_at_threshold=float((decided & ~same).sum() / max(1, (~same).sum())),
            frr_at_threshold=float((~decided & same).sum() / max(1, same.sum())),
        )
    if curve:
        far, tar, _ = roc_curve(-d, same)
        keep = np.unique(np.linspace(0, far.size - 1, min(far.size, 2000)).astype(int))
        out["roc"] = {"far": far[keep].tolist(), "tar": tar[keep].tolist()}
    return plain(out)


# --------------------------------------------------------------------------- one-shot


def oneshot_trials(emb: np.ndarray, labels, groups, drawers=None, ways: int = 20, shots: int = 1,
                   trials: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Random N-way K-shot within-alphabet trials (Lake-style) scored by nearest (mean) support distance."""
    drawn = within_group_trials(labels, groups, ways, shots, trials, seed, drawers)
    emb = np.asarray(emb, dtype=np.float64)
    result = score_trials(lambda q, s: pairwise_distance(emb[q], emb[s]), drawn, shots)
    result.update(protocol=f"random {ways}-way {shots}-shot within-alphabet trials (seed {seed})",
                  ways=ways, shots=shots, seed=seed)
    result["trial_indices"] = [(s.tolist(), int(q), int(a)) for s, q, a in drawn]
    return result


def lake_runs(runs_emb: list[tuple[np.ndarray, np.ndarray, np.ndarray]], swap: bool = False) -> dict[str, Any]:
    """Accuracy over Lake's runs given ``(support_emb, query_emb, answers)`` per run.

    ``swap=True`` exchanges the roles of the two drawers (test items become the support set): 400
    more trials from the same images and alphabets, a check that the runs are not a lucky draw.
    """
    correct, chosen = [], []
    for support, queries, answers in runs_emb:
        if swap:  # the test item of class j becomes support j; support image j becomes a query of class j
            if not np.array_equal(np.sort(answers), np.arange(len(support))):
                raise DataError("Swapped Lake runs need each support class to appear once among the test items.")
            support, queries, answers = queries[np.argsort(answers)], support, np.arange(len(support))
        pick = np.argmin(pairwise_distance(queries, support), axis=1)
        chosen.append(pick.tolist())
        correct.append(pick == answers)
    allc = np.concatenate(correct)
    acc = float(allc.mean())
    return {
        "protocol": "Lake/Koch 20-way within-alphabet one-shot, official all_runs" + (", drawers swapped" if swap
                                                                                       else ""),
        "accuracy": acc, "ci95": float(1.96 * np.sqrt(acc * (1 - acc) / allc.size)), "trials": int(allc.size),
        "per_run": [float(c.mean()) for c in correct], "chosen": chosen,
    }


# --------------------------------------------------------------------------- re-identification


REID_KEYS = ("rank1", "rank5", "rank10", "mAP", "mINP", "num_valid_queries")


def reid_metrics(q: np.ndarray, g: np.ndarray, q_pids, g_pids, q_cams, g_cams, rerank: bool = True,
                 curve: bool = False) -> dict[str, Any]:
    """CMC rank-1/5/10, mAP, mINP (Market rules), plain and, with ``rerank``, k-reciprocal re-ranked."""
    q_g = pairwise_distance(q, g)
    args = (q_pids, g_pids, q_cams, g_cams)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        plain_r = evaluate_reid(q_g, *args)
        out: dict[str, Any] = {"plain": {k: plain_r[k] for k in REID_KEYS}}
        if curve:
            out["plain"]["cmc"] = np.asarray(plain_r["cmc"])[:20]
        if rerank:
            rr = evaluate_reid(re_ranking(q_g, pairwise_distance(q, q), pairwise_distance(g, g)), *args)
            out["re_ranked"] = {k: rr[k] for k in REID_KEYS}
            if curve:
                out["re_ranked"]["cmc"] = np.asarray(rr["cmc"])[:20]
    return plain(out)


# --------------------------------------------------------------------------- baselines


def raw_pixels(images: list[np.ndarray], size: tuple[int, int] = (32, 32)) -> np.ndarray:
    """Baseline embedding: the grey image resized to ``size`` (the models' resize), zero-mean and unit length."""
    from siamkit.data.preprocess import prepare

    out = []
    for image in images:
        v = prepare([image], size, 1)[0].astype(np.float32).ravel()
        v -= v.mean()
        out.append(v / max(float(np.linalg.norm(v)), 1e-6))
    return np.asarray(out, dtype=np.float32)


def hsv_stripe_histogram(images: list[np.ndarray], stripes: int = 6, bins: tuple[int, int, int] = (8, 4, 4)):
    """Baseline re-ID descriptor: L1-normalised HSV histograms of horizontal stripes, square-rooted."""
    import cv2

    feats = []
    for image in images:
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
        edges = np.linspace(0, hsv.shape[0], stripes + 1).astype(int)
        parts = []
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            h = cv2.calcHist([hsv[a:b]], [0, 1, 2], None, list(bins), [0, 180, 0, 256, 0, 256]).ravel()
            parts.append(h / max(h.sum(), 1.0))
        feats.append(np.sqrt(np.concatenate(parts)))
    return np.asarray(feats, dtype=np.float32)
