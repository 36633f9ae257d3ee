"""The held-out split of the shared clips and the per-tracker summary of an OPE run (``test_clips.py``).

Shipped trackers are trained on the other six clips (plus photographs) and evaluated on these only.
"""

from __future__ import annotations

HELD_OUT = ("Crossing", "MountainBike", "vot_bag", "uav_boat1", "uav_person12_1", "dtb_Gull2")
KEYS = ("success_auc", "precision_20px", "success_0.5", "frames")


def summary(metrics: dict) -> dict:
    """Overall AUC / P@20 / success@0.5 / FPS, the per-clip AUCs and their mean, for one tracker."""
    overall = metrics.get("overall", metrics)
    out = {k: overall[k] for k in KEYS if k in overall}
    out["fps"] = metrics.get("fps")
    per = metrics.get("sequences") or {}
    out["per_sequence_auc"] = {n: round(float(v.get("success_auc", float("nan"))), 4) for n, v in per.items()}
    aucs = list(out["per_sequence_auc"].values())
    out["mean_sequence_auc"] = round(sum(aucs) / len(aucs), 4) if aucs else None
    return out
