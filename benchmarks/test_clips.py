"""The test score of a trained tracker on the 12 shared clips, beside OpenCV CSRT and ``cv2.TrackerNano``.

``../shared/data/tracking`` is the test set: no siamkit model trained or was selected on it. This runs
``siamkit eval``'s OPE protocol (init on frame 1's ground truth, never re-init, AUC over 21 IoU
thresholds, precision at 20 px) on all 12 clips for the trained tracker — its search branch in
PyTorch, in onnxruntime fp32 and in onnxruntime int8 — then OpenCV's CSRT and NanoTrack v2 in
OpenCV's port, one after another in the same run on 2 CPU threads (FPS = tracked frames per second
of tracker time, init excluded; the machine is shared, its load average is recorded).

Score each shipped model once, at the end of its work. By default the JSON goes to
``runs/test_clips/<weights>.json``; ``--publish`` writes ``benchmarks/results/test_clips_<name>.json`` and
the measured metrics into the weights' sidecar (``siamkit track`` picks the shipped model with the best
measured AUC). Clips are short and downscaled: compare trackers side by side, never with papers.

    python benchmarks/test_clips.py --tracker nanotrack_lite0 --weights runs/nanotrack_lite0/nanotrack_lite0.safetensors
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
from pathlib import Path

import cv2
import torch
import yaml
from heldout import summary  # benchmarks/heldout.py: per-tracker summary

from siamkit.eval.tracking.runner import EvalJob, run_evaluation
from siamkit.utils.io import write_json

REPO = Path(__file__).resolve().parents[1]
CLIPS = REPO.parent / "shared" / "data" / "tracking"
THREADS = 2
BACKENDS = {"": {}, ", onnxruntime fp32": {"backend": "onnxruntime"},
            ", onnxruntime int8": {"backend": "onnxruntime", "precision": "int8"}}
PEER_ROWS = {"opencv:csrt": "opencv:csrt", "opencv:nano (NanoTrack v2, OpenCV port)": "opencv:nano"}


def jobs(tracker: str, weights: Path, runs: Path) -> dict[str, EvalJob]:
    """Row name → evaluation job, in the order they run (each starts from an empty folder)."""
    rows = {f"{tracker}{suffix}": EvalJob(tracker, f"otb:{CLIPS}", str(runs / f"{tracker}{i}"),
                                          weights=str(weights), device="cpu", options=options)
            for i, (suffix, options) in enumerate(BACKENDS.items())}
    for name, peer in PEER_ROWS.items():
        rows[name] = EvalJob(peer, f"otb:{CLIPS}", str(runs / peer.replace(":", "_")), device="cpu")
    return rows


def verdict(results: dict, name: str) -> dict:
    """The default-tracker goal for one row: AUC ≥ CSRT's and ≥ TrackerNano's, at ≥ 2× CSRT's FPS."""
    row, csrt = results[name], results["opencv:csrt"]
    nano = results.get("opencv:nano (NanoTrack v2, OpenCV port)", {})
    ratio = row["fps"] / csrt["fps"] if row.get("fps") and csrt.get("fps") else None
    return {
        "auc_minus_csrt": round(row["success_auc"] - csrt["success_auc"], 4),
        "auc_minus_opencv_nano": round(row["success_auc"] - nano["success_auc"], 4) if "success_auc" in nano else None,
        "fps_ratio_vs_csrt": round(ratio, 2) if ratio else None,
        "meets_goal": bool(row["success_auc"] >= csrt["success_auc"]
                           and row["success_auc"] >= nano.get("success_auc", 0.0)
                           and ratio is not None and ratio >= 2.0),
    }


def record_metrics(weights: Path, name: str, results: dict, threads: int) -> None:
    """Write the measured test metrics into the weights' sidecar."""
    row = results[name]
    sidecar = weights.with_suffix(".yaml")
    data = yaml.safe_load(sidecar.read_text())
    data.setdefault("meta", {})["metrics"] = {
        "protocol": "OPE on the 12 shared test clips (benchmarks/test_clips.py), scored once; short downscaled "
                    "clips, compare side by side only",
        "success_auc": round(row["success_auc"], 4),
        "precision_20px": round(row["precision_20px"], 4),
        f"fps_cpu_{threads}_threads": round(row["fps"], 1) if row.get("fps") else None,
        "opencv_csrt_success_auc": round(results["opencv:csrt"]["success_auc"], 4),
    }
    sidecar.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracker", default="nanotrack_lite0")
    parser.add_argument("--weights", type=Path, required=True, help="the trained model (.safetensors)")
    parser.add_argument("--threads", type=int, default=THREADS, help="CPU threads for every tracker")
    parser.add_argument("--publish", action="store_true",
                        help="write benchmarks/results/ and the metrics into the weights' sidecar")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    runs = REPO / "runs" / "test_clips" / args.weights.stem
    shutil.rmtree(runs, ignore_errors=True)
    load_start = round(os.getloadavg()[0], 2)
    results = {}
    for name, job in jobs(args.tracker, args.weights, runs).items():
        metrics = run_evaluation(job, workers=1, show_progress=False)
        results[name] = summary(metrics) | {"load_average_1m_after": round(os.getloadavg()[0], 2)}
        print(name, {k: results[name].get(k) for k in ("success_auc", "precision_20px", "fps")}, flush=True)
    sidecar = yaml.safe_load(args.weights.with_suffix(".yaml").read_text())
    ours = [n for n in results if n.startswith(args.tracker)]
    out = (REPO / "benchmarks" / "results" / f"test_clips_{args.tracker}.json" if args.publish
           else runs.with_suffix(".json"))
    write_json(out, {
        "benchmark": "test_clips",
        "protocol": "OPE (siamkit eval): frame-1 init, no re-init, AUC over 21 IoU thresholds, P@20 px; FPS = "
                    f"tracked frames per second of tracker time, CPU, {args.threads} threads, trackers run one by one",
        "clips": sorted(p.name for p in CLIPS.iterdir() if (p / "img").is_dir()),
        "weights": str(args.weights),
        "recipe": (sidecar.get("meta") or {}).get("recipe"),
        "goal": "success AUC >= CSRT's and >= cv2.TrackerNano's at >= 2x CSRT's FPS on 2 CPU threads",
        "verdict": {n: verdict(results, n) for n in ours},
        "int8_auc_cost": round(results[f"{args.tracker}, onnxruntime fp32"]["success_auc"]
                               - results[f"{args.tracker}, onnxruntime int8"]["success_auc"], 4),
        "note": "the test set: no siamkit model trained or was selected on these clips; short downscaled "
                "clips, compare side by side only",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "threads": args.threads,
                    "load_average_1m_at_start": load_start, "load_average_1m_at_end": round(os.getloadavg()[0], 2)},
        "trackers": results,
    })
    if args.publish:
        record_metrics(args.weights, args.tracker, results, args.threads)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
