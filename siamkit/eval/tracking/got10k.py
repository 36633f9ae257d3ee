"""GOT-10k measures: average overlap (AO) and success rates SR0.5 / SR0.75, in float64.

As in the got10k toolkit (``experiments/got10k.py``): the first frame (the init) is excluded,
only frames whose ``cover.label > 0`` are scored (frames without a cover label: those with a
visible GT), IoU uses boxes clipped to the image, and the IoUs of all runs of all sequences are
pooled frame by frame. SR_t = fraction with IoU > t; the success curve has 101 thresholds.
Speed = mean over sequences of the mean per-frame 1/time (frames with time > 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from siamkit.errors import DataError
from siamkit.eval.tracking.ope import box_iou

GOT_THRESHOLDS = np.linspace(0.0, 1.0, 101)


def sequence_ious(pred: np.ndarray, seq: Any) -> np.ndarray:
    """IoUs of the scored frames of one run of one sequence."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 4)
    gt = seq.gt
    if len(pred) != len(gt):
        raise DataError(f"Sequence {seq.name!r}: {len(pred)} predicted boxes for {len(gt)} frames.")
    if seq.cover is not None:
        keep = np.asarray(seq.cover) > 0
    else:
        keep = seq.visible()
    keep = keep & np.isfinite(gt).all(1)
    keep[0] = False
    idx = np.nonzero(keep)[0]
    return box_iou(pred[idx], gt[idx], bound=seq.image_size())


def evaluate_got10k(
    predictions: Mapping[str, np.ndarray | list[np.ndarray]],
    dataset: Any,
    times: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """AO, SR0.5, SR0.75, success curve and speed; ``predictions[seq]`` is one run or a list of runs."""
    pooled, per_seq, speeds = [], {}, []
    for name, runs in predictions.items():
        seq = dataset[name]
        runs = [runs] if isinstance(runs, np.ndarray) and runs.ndim == 2 else list(runs)
        ious = np.concatenate([sequence_ious(r, seq) for r in runs])
        pooled.append(ious)
        per_seq[name] = {"ao": float(ious.mean()) if ious.size else float("nan"), "frames": int(ious.size)}
        if times is not None and name in times:
            t = np.asarray(times[name], dtype=np.float64)[1:]
            t = t[t > 0]
            if t.size:
                speeds.append(float(np.mean(1.0 / t)))
                per_seq[name]["fps"] = speeds[-1]
    ious = np.concatenate(pooled) if pooled else np.zeros(0)
    if ious.size == 0:
        raise DataError(
            "No GOT-10k frame can be scored (no ground truth after the first frame).",
            hint="The test split is scored by the GOT-10k server; evaluate on val locally.",
        )
    curve = (ious[:, None] > GOT_THRESHOLDS[None, :]).mean(0)
    return {
        "protocol": "got10k",
        "ao": float(ious.mean()),
        "sr_0.5": float(curve[50]),
        "sr_0.75": float(curve[75]),
        "success_curve": curve.tolist(),
        "speed_fps": float(np.mean(speeds)) if speeds else float("nan"),
        "frames": int(ious.size),
        "sequences": per_seq,
    }
