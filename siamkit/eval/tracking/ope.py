"""One-pass evaluation (OPE): success, precision and normalised precision, in float64.

Conventions (where reference toolkits disagree the choice is a named argument):

- IoU of continuous boxes (pysot, got10k; pytracking's +1-pixel formula reduces to the same).
- Success at t ∈ {0, 0.05, …, 1} (21 thresholds) is the fraction of frames with IoU **> t**;
  AUC is their mean, so a perfect tracker scores 20/21 ≈ 0.952.
- Precision at 20 px: fraction of frames whose centre error is **≤ 20**; curve 0…50 px.
  Centre = x + w/2; pysot's x + (w−1)/2 gives the same differences.
- Normalised precision (centre error divided by the GT width/height per axis): both
  ``norm_precision_at_0.20`` (pysot, pytracking, mmtracking) and ``norm_precision_auc``
  (got10k toolkit and the LaSOT paper: mean over 51 thresholds in [0, 0.5]) are reported.
- Frames without a target (NaN GT, zero size, or flagged absent): ``absent="skip"`` drops them
  from numerator and denominator (got10k); ``absent="failure"`` keeps them in the
  denominator as misses (pysot on LaSOT, pytracking ``exclude_invalid_frames=False``).
- Only frames in the sequence's ``eval_range`` are scored (Tiger1's init skip, OTB ranges);
  the init frame itself is scored (pysot/OTB: its prediction is the GT).
- A prediction that is NaN (tracker gave up) scores IoU 0 and an infinite centre error.
- Datasets: a sequence's curves are computed first, then averaged over sequences.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from siamkit.errors import DataError
from siamkit.geometry import iou, xywh_to_xyxy

OVERLAP_THRESHOLDS = np.linspace(0.0, 1.0, 21)
PIXEL_THRESHOLDS = np.arange(0, 51, dtype=np.float64)
NORM_THRESHOLDS = np.linspace(0.0, 0.5, 51)
ABSENT_POLICIES = ("skip", "failure")


def box_iou(pred: np.ndarray, gt: np.ndarray, bound: Any = None) -> np.ndarray:
    """Element-wise IoU of N×4 xywh boxes in float64; NaN or empty boxes give 0.

    ``bound=(width, height)`` clips both boxes to the image first (got10k for GOT-10k/VOT).
    pytracking's "+1 pixel" formula (x2 = x + w − 1, size = br − tl + 1) is algebraically the
    same as this continuous one, so no option is needed for it.
    """
    a = xywh_to_xyxy(np.asarray(pred, dtype=np.float64).reshape(-1, 4))
    b = xywh_to_xyxy(np.asarray(gt, dtype=np.float64).reshape(-1, 4))
    if bound is not None:
        w, h = float(bound[0]), float(bound[1])
        a, b = (np.clip(v, 0, [w, h, w, h]) for v in (a, b))
    return iou(a, b, fmt="xyxy")


def centre_errors(pred: np.ndarray, gt: np.ndarray, normalise: bool = False) -> np.ndarray:
    """Euclidean centre distance per frame (pixels, or per-axis divided by the GT size); NaN → inf."""
    a = np.asarray(pred, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    d = (a[:, :2] + a[:, 2:] / 2) - (b[:, :2] + b[:, 2:] / 2)
    if normalise:
        with np.errstate(divide="ignore", invalid="ignore"):
            d = d / b[:, 2:]
    err = np.sqrt((d**2).sum(1))
    return np.where(np.isfinite(err), err, np.inf)


def success_curve(
    ious: np.ndarray, thresholds: np.ndarray = OVERLAP_THRESHOLDS, total: int | None = None
) -> np.ndarray:
    """Fraction of frames with IoU strictly above each threshold (``total`` = denominator)."""
    ious = np.asarray(ious, dtype=np.float64)
    n = len(ious) if total is None else total
    if n == 0:
        return np.full(len(thresholds), np.nan)
    return (ious[:, None] > thresholds[None, :]).sum(0) / n


def precision_curve(
    errors: np.ndarray, thresholds: np.ndarray = PIXEL_THRESHOLDS, total: int | None = None
) -> np.ndarray:
    """Fraction of frames with centre error at most each threshold."""
    errors = np.asarray(errors, dtype=np.float64)
    n = len(errors) if total is None else total
    if n == 0:
        return np.full(len(thresholds), np.nan)
    return (errors[:, None] <= thresholds[None, :]).sum(0) / n


@dataclass
class SequenceScore:
    """Per-frame values and curves of one sequence (frames = the scored, visible ones)."""

    name: str
    frames: np.ndarray
    ious: np.ndarray
    errors: np.ndarray
    norm_errors: np.ndarray
    denominator: int
    attributes: tuple[str, ...] = ()
    success: np.ndarray = field(init=False)
    precision: np.ndarray = field(init=False)
    norm_precision: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.success = success_curve(self.ious, total=self.denominator)
        self.precision = precision_curve(self.errors, total=self.denominator)
        self.norm_precision = precision_curve(self.norm_errors, NORM_THRESHOLDS, total=self.denominator)

    def summary(self) -> dict[str, float]:
        return curves_summary(self.success, self.precision, self.norm_precision) | {
            "frames": int(self.denominator),
            "mean_iou": float(self.ious.sum() / self.denominator) if self.denominator else float("nan"),
        }


def curves_summary(success: np.ndarray, precision: np.ndarray, norm_precision: np.ndarray) -> dict[str, float]:
    """Scalar scores of a set of curves (named after their convention)."""
    return {
        "success_auc": float(np.mean(success)),
        "success_0.5": float(success[10]),
        "precision_20px": float(precision[20]),
        "norm_precision_at_0.20": float(norm_precision[20]),
        "norm_precision_auc": float(np.mean(norm_precision)),
    }


def score_sequence(
    pred: np.ndarray,
    gt: np.ndarray,
    name: str = "",
    absent: np.ndarray | None = None,
    eval_range: tuple[int, int] | None = None,
    attributes: tuple[str, ...] = (),
    absent_policy: str = "skip",
) -> SequenceScore:
    """Score one trajectory ``pred`` (N×4 xywh) against ``gt`` (N×4, NaN rows = no target)."""
    if absent_policy not in ABSENT_POLICIES:
        raise DataError(f"Unknown absent-frame policy {absent_policy!r}.", hint="Use 'skip' or 'failure'.")
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 4)
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    if len(pred) != len(gt):
        raise DataError(
            f"Sequence {name!r}: {len(pred)} predicted boxes for {len(gt)} ground-truth frames.",
            hint="A result file needs one box per frame; rerun the sequence.",
        )
    start, stop = eval_range if eval_range is not None else (0, len(gt))
    index = np.arange(start, stop)
    visible = np.isfinite(gt[index]).all(1) & (gt[index, 2] > 0) & (gt[index, 3] > 0)
    if absent is not None:
        visible &= ~np.asarray(absent, dtype=bool)[index]
    frames = index[visible]
    denominator = len(frames) if absent_policy == "skip" else len(index)
    return SequenceScore(
        name=name,
        frames=frames,
        ious=box_iou(pred[frames], gt[frames]),
        errors=centre_errors(pred[frames], gt[frames]),
        norm_errors=centre_errors(pred[frames], gt[frames], normalise=True),
        denominator=denominator,
        attributes=tuple(attributes),
    )


def score_dataset_sequence(pred: np.ndarray, seq: Any, **kwargs: Any) -> SequenceScore:
    """:func:`score_sequence` with GT, absent flags, range and attributes taken from a Sequence."""
    return score_sequence(
        pred, seq.gt, name=seq.name, absent=seq.absent, eval_range=seq.eval_range, attributes=seq.attributes, **kwargs
    )


def aggregate(scores: Iterable[SequenceScore]) -> dict[str, Any]:
    """Mean curves over sequences (each sequence weighs the same) and their scalar scores."""
    scores = [s for s in scores if s.denominator > 0]
    if not scores:
        raise DataError("No sequence has a scorable frame.", hint="Check the ground truth and the sequence list.")
    success = np.mean([s.success for s in scores], axis=0)
    precision = np.mean([s.precision for s in scores], axis=0)
    norm = np.mean([s.norm_precision for s in scores], axis=0)
    return curves_summary(success, precision, norm) | {
        "sequences": len(scores),
        "frames": int(sum(s.denominator for s in scores)),
        "success_curve": success.tolist(),
        "precision_curve": precision.tolist(),
        "norm_precision_curve": norm.tolist(),
    }


def by_attribute(scores: Iterable[SequenceScore]) -> dict[str, dict[str, Any]]:
    """:func:`aggregate` over the sequences that carry each attribute."""
    groups: dict[str, list[SequenceScore]] = {}
    for s in scores:
        for attr in s.attributes:
            groups.setdefault(attr, []).append(s)
    return {attr: aggregate(group) for attr, group in sorted(groups.items())}


def evaluate_ope(
    predictions: Mapping[str, np.ndarray], dataset: Any, absent_policy: str = "skip", **kwargs: Any
) -> dict[str, Any]:
    """OPE over a dataset: overall scores, per-sequence scores and the per-attribute breakdown."""
    scores = [
        score_dataset_sequence(predictions[s.name], s, absent_policy=absent_policy, **kwargs)
        for s in (dataset[name] for name in predictions)
    ]
    return {
        "protocol": "ope",
        "absent_policy": absent_policy,
        "overall": aggregate(scores),
        "sequences": {s.name: s.summary() for s in scores},
        "attributes": {
            k: {m: v for m, v in a.items() if not m.endswith("_curve")} for k, a in by_attribute(scores).items()
        },
    }


def evaluate_lasot(predictions: Mapping[str, np.ndarray], dataset: Any, **kwargs: Any) -> dict[str, Any]:
    """LaSOT: OPE with absent frames counted as misses in the denominator (pysot's convention)."""
    kwargs.setdefault("absent_policy", "failure")
    result = evaluate_ope(predictions, dataset, **kwargs)
    result["protocol"] = "lasot"
    return result
