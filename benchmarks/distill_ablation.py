"""With and without the teacher: the NanoTrack-Lite0 recipe trained twice on the same feature cache.

Runs ``configs/nanotrack_lite0_train.yaml`` as written (ground truth + NanoTrack v3's soft targets) and
again with the teacher's loss weights set to 0 (ground truth only); same cache, steps, seed and tracker
grid. Both are compared on the **validation** videos of ``tracking_train`` (the numbers the recipe
selects on), never on the test clips. The runs go to ``runs/distill_ablation/``; the JSON goes to
``runs/distill_ablation.json``, or ``benchmarks/results/distill_ablation.json`` with ``--publish``.

    python benchmarks/distill_ablation.py [--publish]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from siamkit.config import load_yaml
from siamkit.train.distill import run_distill
from siamkit.utils.io import write_json

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "siamkit" / "configs" / "nanotrack_lite0_train.yaml"
KEYS = ("validation_auc_at_best_step", "validation_auc_tuned", "best_step", "tracker", "validation",
        "final_losses", "total_wall_time_s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--publish", action="store_true", help="write benchmarks/results/distill_ablation.json")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--with-teacher-run", type=Path, default=None,
                        help="results.json of a finished run of the recipe as written (reused, not retrained)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    recipe = load_yaml(RECIPE)
    variants = {
        "with_teacher": recipe,
        "ground_truth_only": {**recipe, "name": "nanotrack_lite0_no_teacher",
                              "loss_weights": {**recipe["loss_weights"], "kd_cls": 0.0, "kd_loc": 0.0}},
    }
    results = {}
    for name, config in variants.items():
        if name == "with_teacher" and args.with_teacher_run is not None:
            out = json.loads(args.with_teacher_run.read_text())
            results[name] = {k: out[k] for k in KEYS}
            continue
        out = run_distill(config, out_dir=REPO / "runs" / "distill_ablation" / name, resume=True,
                          source=str(RECIPE.relative_to(REPO)))
        results[name] = {k: out[k] for k in KEYS}
        print(name, {k: results[name][k] for k in ("validation_auc_at_best_step", "validation_auc_tuned")})
    target = REPO / "benchmarks" / "results" / "distill_ablation.json" if args.publish \
        else REPO / "runs" / "distill_ablation.json"
    write_json(target, {
        "benchmark": "distill_ablation",
        "recipe": str(RECIPE.relative_to(REPO)),
        "compared_on": "validation videos of tracking_train (split by video); the test clips are not used",
        "validation_videos": recipe["validation_videos"],
        "variants": results,
    })
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
