"""Held-out accuracy and CPU speed of the light NanoTrack trained here vs the shipped SiamFC and OpenCV CSRT.

The light model (siamkit/zoo_weights/nanotrack_light, configs/nanotrack_cpu_train.yaml, random init) and
the shipped SiamFC (siamkit/zoo_weights/siamfc_alexnet) were both trained on the shared clips Biker,
Human3, MotorRolling, Soccer, Tiger1 and vot_car1 plus photographs; this scores them with ``siamkit
eval``'s OPE protocol on the six clips neither saw — Crossing, MountainBike, vot_bag, uav_boat1,
uav_person12_1, dtb_Gull2 — side by side with ``opencv:csrt``, one after the other on the same CPU
(1 torch thread), so the FPS columns are comparable with each other (the machine is shared: the load
average is recorded). An untrained NanoTrack (same initialisation as training) shows what training added.
Every run starts from an empty output folder, so the timings are this run's. Clips are short and
downscaled: compare trackers here only, never with published numbers.

    python benchmarks/light_cpu_heldout.py [--weights PATH] [--no-untrained]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
from pathlib import Path

import torch
import yaml
from heldout import CLIPS, HELD_OUT, summary  # noqa: E402  (benchmarks/heldout.py)

from siamkit.eval.tracking.runner import EvalJob, run_evaluation
from siamkit.utils.io import write_json

REPO = Path(__file__).resolve().parents[1]
ZOO = REPO / "siamkit" / "zoo_weights"
WEIGHTS = ZOO / "nanotrack_light.safetensors"
SIAMFC = ZOO / "siamfc_alexnet.safetensors"
RESULTS = REPO / "benchmarks" / "results" / "light_cpu_heldout.json"
RUNS = REPO / "runs" / "light_cpu_heldout"
MIN_AUC = 0.45  # below this held-out AUC a trained model is not shipped



def untrained_weights(config: Path, out: Path) -> Path:
    """A randomly initialised NanoTrack exactly as training starts (same seed and loc bias), saved as a zoo file."""
    from siamkit import zoo
    from siamkit.config import load_yaml
    from siamkit.train.light import build_light

    torch.manual_seed(int((load_yaml(config).get("train") or {}).get("seed", 0)))
    exp, model, _, _, _ = build_light(load_yaml(config), str(config))
    model.eval()
    return zoo.save_model(model, out, exp.model, exp.model_config, {"note": "untrained reference"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=WEIGHTS)
    parser.add_argument("--no-untrained", action="store_true", help="skip the randomly initialised NanoTrack")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--publish", action="store_true",
                        help="write into benchmarks/results/ (default: runs/benchmarks/)")
    args = parser.parse_args()
    # benchmarks/results/ is written only when asked (--publish)
    args.out = args.out or (RESULTS if args.publish else RESULTS.parents[2] / "runs" / "benchmarks" / RESULTS.name)
    torch.set_num_threads(1)
    dataset = f"otb:{CLIPS}"
    sidecar = yaml.safe_load(args.weights.with_suffix(".yaml").read_text())
    shutil.rmtree(RUNS, ignore_errors=True)
    jobs = {
        "nanotrack_light (trained here)": EvalJob("nanotrack", dataset, str(RUNS / "nanotrack_light"),
                                                  weights=str(args.weights), device="cpu"),
        "siamfc_alexnet (shipped, trained here)": EvalJob("siamfc", dataset, str(RUNS / "siamfc"),
                                                          weights=str(SIAMFC), device="cpu"),
        "opencv:csrt": EvalJob("opencv:csrt", dataset, str(RUNS / "csrt")),
    }
    if not args.no_untrained:
        recipe = (sidecar.get("meta") or {}).get("recipe") or {}
        config = REPO / recipe.get("config", "configs/nanotrack_cpu_train.yaml")
        random = untrained_weights(config, RUNS / "nanotrack_random_init.safetensors")
        jobs["nanotrack (random init)"] = EvalJob("nanotrack", dataset, str(RUNS / "nanotrack_random"),
                                                  weights=str(random), device="cpu")
    load_start = round(os.getloadavg()[0], 2)
    results = {}
    for name, job in jobs.items():
        results[name] = summary(run_evaluation(job, sequences=list(HELD_OUT), workers=1, show_progress=False))
        results[name]["load_average_1m_after"] = round(os.getloadavg()[0], 2)
        print(name, {k: results[name].get(k) for k in ("success_auc", "precision_20px", "fps")}, flush=True)
    light, csrt = results["nanotrack_light (trained here)"], results["opencv:csrt"]
    write_json(args.out, {
        "benchmark": "light_cpu_heldout",
        "protocol": "OPE (siamkit eval): frame-1 init, no re-init, AUC over 21 IoU thresholds, P@20 px; "
                    "FPS = tracked frames per second of tracker time, CPU, 1 torch thread, trackers run one by one",
        "held_out_sequences": list(HELD_OUT),
        "weights": str(args.weights.relative_to(REPO)) if args.weights.is_relative_to(REPO) else str(args.weights),
        "recipe": (sidecar.get("meta") or {}).get("recipe"),
        "target": "beat OpenCV CSRT's held-out AUC while running at least 2x its FPS on CPU",
        "meets_target": {
            "auc_above_csrt": bool(light["success_auc"] > csrt["success_auc"]),
            "fps_ratio_vs_csrt": round(light["fps"] / csrt["fps"], 2) if light.get("fps") and csrt.get("fps") else None,
        },
        "decision": {
            "shippable (held-out AUC >= 0.45)": bool(light["success_auc"] >= MIN_AUC),
            "may be the nanotrack default (AUC > shipped SiamFC's)": bool(
                light["success_auc"] > results["siamfc_alexnet (shipped, trained here)"]["success_auc"]),
        },
        "note": "short downscaled clips: compare side by side only; no model saw these clips",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch_threads": 1,
                    "load_average_1m_at_start": load_start, "load_average_1m_at_end": round(os.getloadavg()[0], 2)},
        "trackers": results,
    })


if __name__ == "__main__":
    main()
