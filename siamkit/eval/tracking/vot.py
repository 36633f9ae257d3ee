"""VOT short-term (supervised, with re-initialisation) and long-term measures, in float64.

A VOT trajectory is a list with one entry per frame, as in the VOT result files: ``[1]``
(tracker (re-)initialised), ``[2]`` (failure: the prediction does not overlap the GT),
``[0]`` (frame skipped before a re-init) or ``[x, y, w, h]`` (a prediction).

Measures follow pysot's toolkit (``toolkit/evaluation/{ar,eao}_benchmark.py``):

- overlap per frame = IoU of the predicted box with the GT polygon (or box), both clipped to
  the image ``[0, W−1] × [0, H−1]``; frames with a code are unknown (NaN);
- accuracy = mean overlap ignoring the ``burnin`` (10) frames that start at each (re-)init,
  averaged per frame over repetitions, then pooled over all frames of all sequences;
- robustness = 100 × failures / frames (mean over repetitions), "lost number" = failures;
- EAO: each run is cut at frame 0 and at every re-init (failure + ``skip``); a segment that
  ends in failure runs up to and including its re-init frame, unknown overlaps become 0, and
  it is zero-padded to the longest run; the last segment is not padded. Φ_N = weighted mean
  over segments long enough of the mean overlap of frames 1..N (frame 0, the init, excluded);
  EAO = mean of Φ_N over N ∈ [low−1, high−1] (pysot's fixed per-year interval, not the VOT
  toolkit's GMM estimate). A failure within the last ``skip`` frames is not a cut point
  (pysot), so such a final segment is not padded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from siamkit.errors import DataError

EAO_INTERVALS = {
    "vot2016": (108, 371),
    "vot2017": (100, 356),
    "vot2018": (100, 356),
    "vot2019": (46, 291),
}
INIT, FAILURE, SKIPPED = 1, 2, 0


# --------------------------------------------------------------------------- polygon geometry
def _clip_polygon(subject: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """Sutherland–Hodgman: part of polygon ``subject`` (K×2) inside the convex polygon ``clip``."""
    area = _signed_area(clip)
    orient = 1.0 if area >= 0 else -1.0
    output = subject
    for i in range(len(clip)):
        if len(output) == 0:
            break
        a, b = clip[i], clip[(i + 1) % len(clip)]
        inp, output = output, []
        side = orient * ((b[0] - a[0]) * (inp[:, 1] - a[1]) - (b[1] - a[1]) * (inp[:, 0] - a[0]))
        for j in range(len(inp)):
            p, q = inp[j - 1], inp[j]
            sp, sq = side[j - 1], side[j]
            if sq >= 0:
                if sp < 0:
                    output.append(p + (q - p) * (sp / (sp - sq)))
                output.append(q)
            elif sp >= 0:
                output.append(p + (q - p) * (sp / (sp - sq)))
        output = np.asarray(output, dtype=np.float64).reshape(-1, 2)
    return np.asarray(output, dtype=np.float64).reshape(-1, 2)


def _signed_area(poly: np.ndarray) -> float:
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _rect(x1: float, y1: float, x2: float, y2: float) -> np.ndarray:
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float64)


def _as_polygon(region: np.ndarray) -> np.ndarray:
    region = np.asarray(region, dtype=np.float64).reshape(-1)
    if region.size == 4:
        x, y, w, h = region
        return _rect(x, y, x + w, y + h)
    return region.reshape(-1, 2)


def region_overlap(pred: Any, gt: Any, bound: tuple[float, float] | None = None) -> float:
    """IoU of two regions (4 values = x,y,w,h; 2k values = polygon); NaN when either is a code/NaN."""
    p = np.asarray(pred, dtype=np.float64).reshape(-1)
    g = np.asarray(gt, dtype=np.float64).reshape(-1)
    if p.size < 4 or g.size < 4 or not np.isfinite(p).all() or not np.isfinite(g).all():
        return float("nan")
    a, b = _as_polygon(p), _as_polygon(g)
    if bound is not None:
        frame = _rect(0.0, 0.0, float(bound[0]), float(bound[1]))
        a, b = _clip_polygon(a, frame), _clip_polygon(b, frame)
    area_a, area_b = abs(_signed_area(a)), abs(_signed_area(b))
    if area_a <= 0 or area_b <= 0:
        return 0.0
    inter = abs(_signed_area(_clip_polygon(b, a))) if len(a) >= 3 and len(b) >= 3 else 0.0
    union = area_a + area_b - inter
    return float(np.clip(inter / union, 0.0, 1.0)) if union > 0 else 0.0


# --------------------------------------------------------------------------- trajectories
def is_code(entry: Sequence[float], code: int) -> bool:
    return len(entry) == 1 and int(entry[0]) == code


def failure_frames(traj: Sequence[Sequence[float]]) -> list[int]:
    """Frame indices marked as failures (``[2]``)."""
    return [i for i, e in enumerate(traj) if is_code(e, FAILURE)]


def trajectory_overlaps(
    traj: Sequence[Sequence[float]], gt: np.ndarray, bound: tuple[float, float] | None = None, burnin: int = 0
) -> np.ndarray:
    """Per-frame overlap (NaN for codes and the ``burnin`` frames starting at each init)."""
    n = min(len(traj), len(gt))
    out = np.array([region_overlap(traj[i], gt[i], bound) for i in range(n)], dtype=np.float64)
    if burnin > 0:
        for i in range(n):
            if is_code(traj[i], INIT):
                out[i : i + burnin] = np.nan
    return out


Runs = Mapping[str, Sequence[Sequence[Sequence[float]]]]


def accuracy_robustness(
    runs: Runs, gts: Mapping[str, np.ndarray], bounds: Mapping[str, Any] | None = None, burnin: int = 10
) -> dict[str, Any]:
    """VOT accuracy, robustness (failures per 100 frames) and lost number over sequences.

    ``runs[seq]`` is the list of repetitions (each a trajectory); ``gts[seq]`` the GT polygons
    or boxes; ``bounds[seq]`` the clipping bound (W−1, H−1) or None.
    """
    pooled: list[np.ndarray] = []
    per_seq: dict[str, dict[str, float]] = {}
    fails_by_rep: list[np.ndarray] = []
    frames = 0
    for name, reps in runs.items():
        if not reps:
            raise DataError(f"Sequence {name!r} has no VOT run.")
        bound = bounds.get(name) if bounds else None
        overlaps = [trajectory_overlaps(t, gts[name], bound, burnin) for t in reps]
        length = min(len(o) for o in overlaps)
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(np.stack([o[:length] for o in overlaps]), axis=0)
        fails = np.array([len(failure_frames(t)) for t in reps], dtype=np.float64)
        fails_by_rep.append(fails)
        frames += len(gts[name])
        pooled.append(mean)
        per_seq[name] = {"accuracy": _nanmean(mean), "failures": float(fails.mean()), "frames": len(gts[name])}
    reps_n = min(len(f) for f in fails_by_rep)
    total_fails = np.sum([f[:reps_n] for f in fails_by_rep], axis=0)
    return {
        "accuracy": _nanmean(np.concatenate(pooled)) if pooled else float("nan"),
        "robustness": float(np.mean(total_fails / frames) * 100.0),
        "lost_number": float(np.mean(total_fails)),
        "frames": frames,
        "sequences": per_seq,
    }


def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values)
    return float(values[ok].mean()) if ok.any() else float("nan")


def expected_overlap_curve(
    runs: Runs, gts: Mapping[str, np.ndarray], bounds: Mapping[str, Any] | None = None, skip: int = 5
) -> np.ndarray:
    """Φ_N for N = 0 … longest run − 1 (Φ_0 = 1), pysot's segment construction (see module doc)."""
    overlaps_all, failures_all, weights = [], [], []
    for name, reps in runs.items():
        bound = bounds.get(name) if bounds else None
        for traj in reps:
            overlaps_all.append(trajectory_overlaps(traj, gts[name], bound))
            failures_all.append(failure_frames(traj))
            weights.append(1.0 / len(reps))
    if not overlaps_all:
        raise DataError("No VOT runs to compute EAO from.")
    max_len = max(len(o) for o in overlaps_all)
    rows, row_w = [], []
    for overlaps, fails, weight in zip(overlaps_all, failures_all, weights, strict=True):
        points = [0] + [f + skip for f in fails if f + skip <= len(overlaps)]
        for k, start in enumerate(points):
            row = np.full(max_len, np.nan)
            if k < len(points) - 1:
                seg = overlaps[start : points[k + 1] + 1]
                row[:] = 0.0
            else:
                seg = overlaps[start:]
            row[: len(seg)] = np.nan_to_num(seg, nan=0.0)
            rows.append(row)
            row_w.append(weight)
    frag = np.asarray(rows)
    w = np.asarray(row_w)
    curve = np.zeros(max_len, dtype=np.float64)
    curve[0] = 1.0
    for i in range(1, max_len):
        valid = np.isfinite(frag[:, i])
        if valid.any():
            means = frag[valid, 1 : i + 1].mean(axis=1)
            curve[i] = np.sum(means * w[valid]) / np.sum(w[valid])
    return curve


def eao_from_curve(curve: np.ndarray, interval: tuple[int, int] | str) -> float:
    """Mean of Φ over indices ``low−1 … high−1`` (truncated to the curve); ``interval`` may be a year key."""
    if isinstance(interval, str):
        try:
            interval = EAO_INTERVALS[interval.lower()]
        except KeyError:
            raise DataError(f"No EAO interval for {interval!r}.", hint=f"Use one of {sorted(EAO_INTERVALS)}.") from None
    low, high = interval
    part = np.asarray(curve, dtype=np.float64)[low - 1 : high]
    return float(part.mean()) if part.size else float("nan")


def evaluate_vot(
    runs: Runs,
    gts: Mapping[str, np.ndarray],
    bounds: Mapping[str, Any] | None = None,
    interval: tuple[int, int] | str = "vot2018",
    skip: int = 5,
    burnin: int = 10,
) -> dict[str, Any]:
    """Accuracy, robustness, lost number and EAO (with every year's interval) of supervised runs."""
    result = accuracy_robustness(runs, gts, bounds, burnin)
    curve = expected_overlap_curve(runs, gts, bounds, skip)
    result["eao"] = eao_from_curve(curve, interval)
    result["eao_interval"] = list(EAO_INTERVALS[interval] if isinstance(interval, str) else interval)
    result["eao_by_year"] = {year: eao_from_curve(curve, span) for year, span in EAO_INTERVALS.items()}
    result["expected_overlap_curve"] = curve.tolist()
    result["protocol"] = "vot"
    return result


# --------------------------------------------------------------------------- long-term
def score_thresholds(scores: np.ndarray, resolution: int = 100) -> np.ndarray:
    """``resolution`` thresholds: −inf, evenly spaced order statistics of the scores, +inf."""
    s = np.sort(np.asarray(scores, dtype=np.float64)[np.isfinite(scores)])
    if s.size == 0:
        return np.array([-np.inf, np.inf])
    idx = np.round(np.linspace(0, s.size - 1, resolution - 2)).astype(int)
    return np.concatenate([[-np.inf], s[idx], [np.inf]])


def evaluate_longterm(
    predictions: Mapping[str, np.ndarray],
    scores: Mapping[str, np.ndarray],
    gts: Mapping[str, np.ndarray],
    resolution: int = 100,
    start: int = 1,
) -> dict[str, Any]:
    """VOT long-term tracking precision, recall and F-score (pysot ``f1_benchmark`` style).

    For a confidence threshold τ a frame counts as "reported" when its score ≥ τ. Precision is
    the mean IoU over reported frames (IoU 0 where the target is absent), recall the summed IoU
    over reported frames divided by the number of frames with a visible target; both are
    averaged over sequences and F = 2PR/(P+R). The result is at the τ maximising F. Frames
    before ``start`` (the init frame) are not scored.
    """
    from siamkit.eval.tracking.ope import box_iou

    thresholds = score_thresholds(
        np.concatenate([np.asarray(scores[n], dtype=np.float64)[start:] for n in scores]), resolution
    )
    precisions, recalls = [], []
    for name, pred in predictions.items():
        gt = np.asarray(gts[name], dtype=np.float64)[start:]
        pred = np.asarray(pred, dtype=np.float64)[start:]
        score = np.nan_to_num(np.asarray(scores[name], dtype=np.float64)[start:], nan=-np.inf)
        visible = np.isfinite(gt).all(1) & (gt[:, 2] > 0) & (gt[:, 3] > 0)
        iou = np.where(visible, box_iou(pred, np.where(visible[:, None], gt, 0.0)), 0.0)
        n_visible = max(int(visible.sum()), 1)
        p = np.empty(len(thresholds))
        r = np.empty(len(thresholds))
        for k, t in enumerate(thresholds):
            reported = score >= t
            if reported.any():
                p[k] = iou[reported].mean()
                r[k] = iou[reported].sum() / n_visible
            else:
                p[k], r[k] = 1.0, 0.0
        precisions.append(p)
        recalls.append(r)
    precision = np.mean(precisions, axis=0)
    recall = np.mean(recalls, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    best = int(np.argmax(f1))
    return {
        "protocol": "vot-lt",
        "f1": float(f1[best]),
        "precision": float(precision[best]),
        "recall": float(recall[best]),
        "threshold": float(thresholds[best]),
        "sequences": len(predictions),
    }
