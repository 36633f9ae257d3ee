"""Held-out accuracy and CPU speed of the trackers trained here, side by side with OpenCV CSRT and NanoTrack v2.

Both shipped siamkit trackers — ``siamban_light`` (siamkit/zoo_weights/siamban_light) and ``siamfc``
(siamkit/zoo_weights/siamfc_alexnet) — were trained on the shared clips Biker, Human3, MotorRolling,
Soccer, Tiger1 and vot_car1 plus photographs. This scores them with ``siamkit eval``'s OPE protocol
on the six clips neither saw (Crossing, MountainBike, vot_bag, uav_boat1, uav_person12_1,
dtb_Gull2), each with its search branch in PyTorch and in onnxruntime (fp32; int8 for the light
model, to measure what int8 costs in accuracy), next to ``opencv:csrt`` and NanoTrack v2 (the
original weights from ../shared/data, run by siamkit, and OpenCV's C++ port). Trackers run one
after another on the same CPU with 1 thread, so the FPS column compares them (FPS = tracked
frames per second of tracker time; the machine is shared, the load average is recorded). Every
run starts from an empty output folder. Clips are short and downscaled: compare trackers here
only, never with published numbers.

    python benchmarks/cpu_heldout.py
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
RESULTS = REPO / "benchmarks" / "results" / "cpu_heldout.json"
RUNS = REPO / "runs" / "cpu_heldout"
LIGHT = "siamban_light"
ORT = {"backend": "onnxruntime"}
INT8 = {"backend": "onnxruntime", "precision": "int8"}


def jobs(dataset: str, light: Path) -> dict[str, EvalJob]:
    """Name → evaluation job, in the order they run."""

    def job(tracker: str, folder: str, weights: Path | None = None, **options) -> EvalJob:
        return EvalJob(tracker, dataset, str(RUNS / folder), weights=str(weights) if weights else None,
                       device="cpu", options=options)

    siamfc = ZOO / "siamfc_alexnet.safetensors"
    return {
        f"{LIGHT} (trained here)": job(LIGHT, "light", light),
        f"{LIGHT}, onnxruntime fp32": job(LIGHT, "light_ort", light, **ORT),
        f"{LIGHT}, onnxruntime int8": job(LIGHT, "light_int8", light, **INT8),
        "siamfc (trained here)": job("siamfc", "siamfc", siamfc),
        "siamfc, onnxruntime fp32": job("siamfc", "siamfc_ort", siamfc, **ORT),
        "opencv:csrt": job("opencv:csrt", "csrt"),
        "nanotrack (NanoTrack v2 original weights)": job("nanotrack", "nanotrack"),
        "opencv:nano (NanoTrack v2, OpenCV port)": job("opencv:nano", "opencv_nano"),
    }


def verdict(results: dict, name: str) -> dict:
    """The issue's target for one siamkit row: AUC above CSRT's at ≥ 2× its FPS."""
    row, csrt = results[name], results["opencv:csrt"]
    ratio = row["fps"] / csrt["fps"] if row.get("fps") and csrt.get("fps") else None
    return {
        "auc_minus_csrt": round(row["success_auc"] - csrt["success_auc"], 4),
        "fps_ratio_vs_csrt": round(ratio, 2) if ratio else None,
        "meets_target": bool(row["success_auc"] > csrt["success_auc"] and ratio is not None and ratio >= 2.0),
    }


def record_metrics(weights: Path, results: dict) -> None:
    """Write the light model's held-out metrics into its sidecar (``siamkit track`` picks the best shipped AUC)."""
    row, csrt = results.get(f"{LIGHT} (trained here)"), results.get("opencv:csrt")
    if not row or "skipped" in row:
        return
    sidecar = weights.with_suffix(".yaml")
    data = yaml.safe_load(sidecar.read_text())
    data.setdefault("meta", {})["metrics"] = {
        "protocol": "OPE on the 6 held-out shared clips (benchmarks/cpu_heldout.py); short downscaled clips, "
                    "compare side by side only",
        "success_auc": round(row["success_auc"], 4),
        "precision_20px": round(row["precision_20px"], 4),
        "fps_cpu_1_thread": round(row["fps"], 1) if row.get("fps") else None,
        "opencv_csrt_success_auc": round(csrt["success_auc"], 4) if csrt and "skipped" not in csrt else None,
    }
    sidecar.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=ZOO / f"{LIGHT}.safetensors", help="the light model")
    parser.add_argument("--only", nargs="*", default=None, help="names of the rows to run (default: all)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--publish", action="store_true",
                        help="write into benchmarks/results/ (default: runs/benchmarks/)")
    args = parser.parse_args()
    # benchmarks/results/ is written only when asked (--publish)
    args.out = args.out or (RESULTS if args.publish else RESULTS.parents[2] / "runs" / "benchmarks" / RESULTS.name)
    torch.set_num_threads(1)
    sidecar = yaml.safe_load(args.weights.with_suffix(".yaml").read_text())
    shutil.rmtree(RUNS, ignore_errors=True)
    load_start = round(os.getloadavg()[0], 2)
    results = {}
    for name, job in jobs(f"otb:{CLIPS}", args.weights).items():
        if args.only is not None and name not in args.only:
            continue
        try:
            metrics = run_evaluation(job, sequences=list(HELD_OUT), workers=1, show_progress=False)
        except Exception as exc:  # a peer whose files are missing here: recorded, not fatal
            results[name] = {"skipped": f"{type(exc).__name__}: {exc}"}
            continue
        results[name] = summary(metrics) | {"load_average_1m_after": round(os.getloadavg()[0], 2)}
        print(name, {k: results[name].get(k) for k in ("success_auc", "precision_20px", "fps")}, flush=True)
    siamkit_rows = [n for n in results if n.startswith((LIGHT, "siamfc")) and "skipped" not in results[n]]
    light, int8 = results.get(f"{LIGHT}, onnxruntime fp32"), results.get(f"{LIGHT}, onnxruntime int8")
    write_json(args.out, {
        "benchmark": "cpu_heldout",
        "protocol": "OPE (siamkit eval): frame-1 init, no re-init, AUC over 21 IoU thresholds, P@20 px; "
                    "FPS = tracked frames per second of tracker time, CPU, 1 thread, trackers run one by one",
        "held_out_sequences": list(HELD_OUT),
        "weights": str(args.weights.relative_to(REPO)) if args.weights.is_relative_to(REPO) else str(args.weights),
        "recipe": (sidecar.get("meta") or {}).get("recipe"),
        "target": "beat OpenCV CSRT's held-out AUC while running at least 2x its FPS on CPU",
        "verdict": {n: verdict(results, n) for n in siamkit_rows} if "fps" in results.get("opencv:csrt", {}) else {},
        "int8_auc_cost": round(light["success_auc"] - int8["success_auc"], 4) if light and int8 else None,
        "note": "short downscaled clips: compare side by side only; no siamkit model saw these clips",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch_threads": 1,
                    "load_average_1m_at_start": load_start, "load_average_1m_at_end": round(os.getloadavg()[0], 2)},
        "trackers": results,
    })
    if args.weights.resolve().parent == ZOO.resolve():
        record_metrics(args.weights, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
