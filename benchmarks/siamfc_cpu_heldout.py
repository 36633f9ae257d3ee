"""Held-out accuracy of the CPU-trained SiamFC (siamkit/zoo_weights/siamfc_alexnet) vs OpenCV CSRT.

The model was trained (configs/siamfc_alexnet_cpu_train.yaml) on the shared clips Biker, Human3,
MotorRolling, Soccer, Tiger1 and vot_car1 plus photographs; this scores it with ``siamkit eval``'s OPE
protocol on the six clips it never saw — Crossing, MountainBike, vot_bag, uav_boat1,
uav_person12_1, dtb_Gull2 — side by side with ``opencv:csrt`` (and optionally an untrained SiamFC of
the same width, to show what training added). Clips are short and downscaled: compare trackers
here only, never with published numbers.

    python benchmarks/siamfc_cpu_heldout.py
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import torch
import yaml
from heldout import CLIPS, HELD_OUT, summary  # noqa: E402  (benchmarks/heldout.py)

from siamkit.eval.tracking.runner import EvalJob, run_evaluation
from siamkit.utils.io import write_json

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "siamkit" / "zoo_weights" / "siamfc_alexnet.safetensors"
RESULTS = REPO / "benchmarks" / "results" / "siamfc_cpu_heldout.json"
RUNS = REPO / "runs" / "siamfc_cpu_heldout"



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=WEIGHTS)
    parser.add_argument("--untrained", action="store_true", help="also score a randomly initialised model")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--publish", action="store_true",
                        help="write into benchmarks/results/ (default: runs/benchmarks/)")
    args = parser.parse_args()
    # benchmarks/results/ is written only when asked (--publish)
    args.out = args.out or (RESULTS if args.publish else RESULTS.parents[2] / "runs" / "benchmarks" / RESULTS.name)
    torch.set_num_threads(1)
    dataset = f"otb:{CLIPS}"
    sidecar = yaml.safe_load(args.weights.with_suffix(".yaml").read_text())
    jobs = {
        "siamfc (trained here)": EvalJob("siamfc", dataset, str(RUNS / "siamfc_trained"), weights=str(args.weights),
                                         device="cpu"),
        "opencv:csrt": EvalJob("opencv:csrt", dataset, str(RUNS / "csrt")),
    }
    if args.untrained:
        jobs["siamfc (random init, same width)"] = EvalJob(
            "siamfc", dataset, str(RUNS / "siamfc_random"), device="cpu",
            options={"model_options": dict(sidecar.get("config") or {})},
        )
    results = {}
    for name, job in jobs.items():
        results[name] = summary(run_evaluation(job, sequences=list(HELD_OUT), workers=1, show_progress=False))
        print(name, {k: results[name][k] for k in ("success_auc", "precision_20px") if k in results[name]})
    write_json(args.out, {
        "benchmark": "siamfc_cpu_heldout",
        "protocol": "OPE (siamkit eval): frame-1 init, no re-init, AUC over 21 IoU thresholds, P@20 px",
        "held_out_sequences": list(HELD_OUT),
        "weights": str(args.weights.relative_to(REPO)) if args.weights.is_relative_to(REPO) else str(args.weights),
        "recipe": (sidecar.get("meta") or {}).get("recipe"),
        "note": "short downscaled clips: compare side by side only; the model saw none of these clips",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch_threads": 1,
                    "load_average_1m_at_end": round(os.getloadavg()[0], 2)},
        "trackers": results,
    })


if __name__ == "__main__":
    main()
