"""Pick a trained tracker's penalty / window / smoothing values on its TRAINING clips (never the held-out ones).

A small grid over ``penalty_k``, ``window_influence``, ``lr`` and ``keep_aspect`` (inference settings of the
§1 trackers), each scored by OPE mean AUC on the six shared clips the shipped trackers were trained on (Biker,
Human3, MotorRolling, Soccer, Tiger1, vot_car1). The held-out clips are not read. The best values become the
tracker's defaults (e.g. ``SiamBANLightConfig``); the whole grid is kept in the JSON.

    python benchmarks/tune_on_training_clips.py --tracker siamban_light \\
        --weights siamkit/zoo_weights/siamban_light.safetensors
"""

from __future__ import annotations

import argparse
import itertools
import os
from pathlib import Path

import torch
from heldout import CLIPS, HELD_OUT  # noqa: E402  (benchmarks/heldout.py)

from siamkit.eval.tracking.runner import EvalJob, run_evaluation
from siamkit.utils.io import write_json
from siamkit.utils.progress import progress

REPO = Path(__file__).resolve().parents[1]
TRAINING = ("Biker", "Human3", "MotorRolling", "Soccer", "Tiger1", "vot_car1")
GRID = {
    "penalty_k": (0.04, 0.16),
    "window_influence": (0.2, 0.385),
    "lr": (0.1, 0.25, 0.47),
    "keep_aspect": (False, True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracker", default="siamban_light")
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--publish", action="store_true",
                        help="write into benchmarks/results/ (default: runs/benchmarks/)")
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "tune_on_training_clips")
    args = parser.parse_args()
    # benchmarks/results/ is written only when asked (--publish)
    folder = "benchmarks/results" if args.publish else "runs/benchmarks"
    args.out = args.out or REPO / folder / "tune_siamban_light.json"
    assert not set(TRAINING) & set(HELD_OUT)
    torch.set_num_threads(1)
    rows = []
    combos = list(itertools.product(*GRID.values()))
    for values in progress(combos, desc="grid", unit="setting"):
        options = dict(zip(GRID, values, strict=True))
        folder = args.runs / "_".join(f"{k}{v}" for k, v in options.items())
        job = EvalJob(args.tracker, f"otb:{CLIPS}", str(folder), weights=str(args.weights), device="cpu",
                      options=options)
        metrics = run_evaluation(job, sequences=list(TRAINING), workers=1, show_progress=False)
        per = {n: round(float(m["success_auc"]), 4) for n, m in metrics["sequences"].items()}
        rows.append({**options, "mean_auc": round(sum(per.values()) / len(per), 4), "per_sequence_auc": per})
    best = max(rows, key=lambda r: r["mean_auc"])
    write_json(args.out, {
        "benchmark": "tune_on_training_clips",
        "tracker": args.tracker,
        "weights": str(args.weights.relative_to(REPO)) if args.weights.is_relative_to(REPO) else str(args.weights),
        "clips": list(TRAINING),
        "held_out_not_used": list(HELD_OUT),
        "grid": {k: list(v) for k, v in GRID.items()},
        "best": {k: best[k] for k in GRID} | {"mean_auc": best["mean_auc"]},
        "rows": sorted(rows, key=lambda r: -r["mean_auc"]),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
    })
    print("best", best)


if __name__ == "__main__":
    main()
