"""Pair verification metrics: ROC, AUC, EER, TAR@FAR, accuracy, and k-fold accuracy.

Inputs are one score per pair and a boolean "same identity" label. Scores follow the convention
*higher = more likely the same*; pass ``higher_is_same=False`` for distances (or pass
``-distance``). A pair is predicted "same" when ``score >= threshold``.

Reporting honestly: a threshold picked on the very pairs it is scored on (``best_accuracy``,
SigNet's ``compute_accuracy_roc``, LFW's "best fold") is an oracle, optimistic number. Functions
that report such a number emit a :class:`UserWarning` saying so (see :func:`warn_if_tuned_on_test`);
:func:`kfold_verification` picks each threshold on the training folds only, like insightface's
LFW protocol.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from siamkit.errors import DataError

TUNED_ON_TEST = (
    "{what} uses a threshold chosen on the same pairs it is reported on (an oracle, optimistic number). "
    "Choose the threshold on validation pairs (accuracy_at_threshold) or use kfold_verification."
)


def warn_if_tuned_on_test(what: str, stacklevel: int = 3) -> None:
    """Emit the :class:`UserWarning` every test-set-tuned number must carry."""
    warnings.warn(TUNED_ON_TEST.format(what=what), UserWarning, stacklevel=stacklevel)


def check_pairs(scores, same, higher_is_same: bool = True, need_both: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return ``(scores as float64 with higher = same, same as bool)``."""
    if np.ndim(scores) > 1 or np.ndim(same) > 1:
        raise DataError(
            f"Scores and labels must be one value per pair (1-D); got shapes {np.shape(scores)}, {np.shape(same)}."
        )
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(same).reshape(-1)
    if s.shape != y.shape:
        raise DataError(f"{s.size} scores but {y.size} labels.", hint="Give one label per scored pair.")
    if s.size == 0:
        raise DataError("No pairs to evaluate.")
    if not np.all(np.isfinite(s)):
        raise DataError(
            f"{int((~np.isfinite(s)).sum())} scores are NaN or infinite.", hint="Check the embeddings for NaN."
        )
    if y.dtype != bool:
        values = set(np.unique(y).tolist())
        if not values <= {0, 1}:
            raise DataError(f"Labels must be boolean or 0/1; got values {sorted(values)[:5]}.")
        y = y.astype(bool)
    if need_both and (y.all() or not y.any()):
        raise DataError(
            "Verification needs both genuine (same) and impostor (different) pairs; got only "
            + ("genuine." if y.all() else "impostor."),
        )
    return (s if higher_is_same else -s), y


def roc_curve(scores, same, higher_is_same: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC at every distinct score: ``(far, tar, thresholds)``.

    ``thresholds`` decrease; point i predicts "same" for ``score >= thresholds[i]``. The first
    point is ``(0, 0)`` at ``+inf``. Matches ``sklearn.metrics.roc_curve(drop_intermediate=False)``.
    With ``higher_is_same=False`` the thresholds are returned as distances (predict "same" when
    ``distance <= threshold``).
    """
    s, y = check_pairs(scores, same, higher_is_same)
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # last index of each tied score
    tp = np.cumsum(y)[last_of_run]
    fp = np.cumsum(~y)[last_of_run]
    tar = np.r_[0.0, tp / y.sum()]
    far = np.r_[0.0, fp / (~y).sum()]
    thresholds = np.r_[np.inf, s[last_of_run]]
    return far, tar, (thresholds if higher_is_same else -thresholds)


def _auc(far: np.ndarray, tar: np.ndarray) -> float:
    return float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2.0))


def _eer(far: np.ndarray, tar: np.ndarray, thresholds: np.ndarray) -> tuple[float, float]:
    """Equal error rate by linear interpolation where FAR crosses FRR = 1 − TAR."""
    frr = 1.0 - tar
    diff = frr - far  # decreasing from 1 to -1 along the curve
    i = int(np.argmax(diff <= 0))  # first point with FRR <= FAR (exists: the last point has FRR = 0)
    if i == 0 or diff[i] == 0:
        return float(far[i]), float(thresholds[i])
    t = diff[i - 1] / (diff[i - 1] - diff[i])
    eer = far[i - 1] + t * (far[i] - far[i - 1])
    # the interpolated point lies between thresholds i-1 (possibly +inf) and i: report the finite end nearest it
    thr = thresholds[i] if t >= 0.5 or not np.isfinite(thresholds[i - 1]) else thresholds[i - 1]
    return float(eer), float(thr)


def tar_at_far(far: np.ndarray, tar: np.ndarray, target: float) -> float:
    """Highest TAR among ROC points whose FAR does not exceed ``target`` (no interpolation)."""
    ok = far <= target + 1e-12
    return float(tar[ok].max())


def accuracy_at_threshold(scores, same, threshold: float, higher_is_same: bool = True) -> float:
    """Fraction of pairs classified correctly by a fixed threshold (chosen elsewhere)."""
    s, y = check_pairs(scores, same, higher_is_same, need_both=False)
    t = threshold if higher_is_same else -threshold
    return float(np.mean((s >= t) == y))


def _best_threshold(s: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Threshold (in higher-is-same units) maximising accuracy on ``(s, y)``, and that accuracy.

    Candidates are midpoints between consecutive distinct scores plus one below and one above all
    scores, so the threshold generalises to unseen scores. Ties go to the lowest threshold.
    """
    u = np.unique(s)
    candidates = np.r_[u[0] - 1.0, (u[:-1] + u[1:]) / 2.0, u[-1] + 1.0]
    # accuracy(t) = (#same with s >= t + #different with s < t) / n, via sorted counts
    ss, sd = np.sort(s[y]), np.sort(s[~y])
    same_above = ss.size - np.searchsorted(ss, candidates, side="left")
    diff_below = np.searchsorted(sd, candidates, side="left")
    acc = (same_above + diff_below) / s.size
    i = int(np.argmax(acc))
    return float(candidates[i]), float(acc[i])


def evaluate_verification(
    scores,
    same,
    far_targets: Sequence[float] = (1e-3, 1e-2, 1e-1),
    higher_is_same: bool = True,
) -> dict:
    """AUC, EER (+ its threshold), TAR at each FAR target, and the best (oracle) accuracy.

    ``best_accuracy``/``best_threshold`` pick the threshold on these same pairs, so this function
    warns (UserWarning); report :func:`kfold_verification` or a validation threshold instead.
    Thresholds are in the caller's units (distances when ``higher_is_same=False``).
    """
    far, tar, thr = roc_curve(scores, same, higher_is_same)
    thr_hi = thr if higher_is_same else -thr
    eer, eer_thr = _eer(far, tar, thr_hi)
    s, y = check_pairs(scores, same, higher_is_same)
    best_thr, best_acc = _best_threshold(s, y)
    warn_if_tuned_on_test("best_accuracy")
    sign = 1.0 if higher_is_same else -1.0
    return {
        "auc": _auc(far, tar),
        "eer": eer,
        "eer_threshold": sign * eer_thr,
        "tar_at_far": {float(f): tar_at_far(far, tar, f) for f in far_targets},
        "best_accuracy": best_acc,
        "best_threshold": sign * best_thr,
        "num_genuine": int(y.sum()),
        "num_impostor": int((~y).sum()),
    }


def best_balanced_accuracy(scores, same, higher_is_same: bool = True) -> tuple[float, float]:
    """SigNet's ``compute_accuracy_roc``: max over thresholds of ½(TAR + TNR), and that threshold.

    The threshold is an oracle chosen on these pairs, so this warns (UserWarning).
    """
    far, tar, thr = roc_curve(scores, same, higher_is_same)
    bal = 0.5 * (tar + 1.0 - far)
    i = int(np.argmax(bal))
    warn_if_tuned_on_test("best_balanced_accuracy")
    return float(bal[i]), float(thr[i])


def kfold_verification(
    scores,
    same,
    folds: int = 10,
    seed: int = 0,
    higher_is_same: bool = True,
    shuffle: bool = True,
    far_target: float | None = 1e-3,
) -> dict:
    """k-fold verification accuracy: each fold's threshold is chosen on the other k−1 folds only.

    ``shuffle=False`` keeps contiguous folds in the given pair order (insightface/facenet LFW
    protocol, ``KFold(shuffle=False)``, which keeps LFW's View-2 folds); otherwise pairs are
    permuted with ``seed``. Returns mean ± std (population std, as insightface) of the held-out
    accuracies, each fold's threshold (caller's units) and accuracy, and, if ``far_target`` is set,
    VAL@FAR: the threshold giving FAR <= far_target on the training folds, applied to the test fold.
    """
    s, y = check_pairs(scores, same, higher_is_same)
    if not 2 <= folds <= s.size:
        raise DataError(f"folds must be between 2 and the number of pairs ({s.size}); got {folds}.")
    order = np.random.default_rng(seed).permutation(s.size) if shuffle else np.arange(s.size)
    parts = np.array_split(order, folds)
    sign = 1.0 if higher_is_same else -1.0
    accs, thresholds, vals, fars = [], [], [], []
    for k in range(folds):
        test = parts[k]
        train = np.concatenate([parts[j] for j in range(folds) if j != k])
        if y[train].all() or not y[train].any():
            raise DataError(f"Training folds for fold {k} hold only one class of pairs.", hint="Use fewer folds.")
        thr, _ = _best_threshold(s[train], y[train])
        accs.append(float(np.mean((s[test] >= thr) == y[test])))
        thresholds.append(sign * thr)
        if far_target is not None:
            t_far = _threshold_at_far(s[train], y[train], far_target)
            pred = s[test] >= t_far
            yt = y[test]
            vals.append(float(pred[yt].mean()) if yt.any() else np.nan)
            fars.append(float(pred[~yt].mean()) if (~yt).any() else np.nan)
    out = {
        "accuracy_mean": float(np.mean(accs)),
        "accuracy_std": float(np.std(accs)),
        "fold_accuracy": accs,
        "fold_threshold": thresholds,
        "folds": folds,
        "protocol": "contiguous folds" if not shuffle else f"shuffled folds (seed {seed})",
    }
    if far_target is not None:
        out.update(
            {
                "far_target": float(far_target),
                "val_mean": float(np.nanmean(vals)),
                "val_std": float(np.nanstd(vals)),
                "far_mean": float(np.nanmean(fars)),
            }
        )
    return out


def _threshold_at_far(s: np.ndarray, y: np.ndarray, target: float) -> float:
    """Lowest threshold whose FAR on ``(s, y)`` does not exceed ``target`` (higher-is-same units)."""
    impostor = np.sort(s[~y])[::-1]
    allowed = int(np.floor(target * impostor.size + 1e-9))  # impostors allowed at or above the threshold
    if allowed >= impostor.size:
        return float(min(s.min(), impostor.min()))
    # the threshold must lie strictly above the (allowed+1)-th highest impostor score
    return float(np.nextafter(impostor[allowed], np.inf))
