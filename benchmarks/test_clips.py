"""The test score of trained trackers on the 12 shared clips, beside OpenCV CSRT and ``cv2.TrackerNano``.

``../shared/data/tracking`` is the test set: no siamkit model trained or was selected on it. This runs
``siamkit eval``'s OPE protocol (init on frame 1's ground truth, never re-init, AUC over 21 IoU
thresholds, precision at 20 px) on all 12 clips for each trained tracker given — its search branch in
PyTorch, in onnxruntime fp32 and (``--int8``) onnxruntime int8 — then OpenCV's CSRT and NanoTrack v2 in
OpenCV's port, one after another in the same run on 2 CPU threads (FPS = tracked frames per second
of tracker time, init excluded; the machine is shared, its load average is recorded).

Score each shipped model once, at the end of its work. By default the JSON goes to
``runs/benchmarks/test_clips_<name>.json``; ``--publish`` writes ``benchmarks/results/test_clips_<name>.json`` and
the measured metrics into the weights' sidecar (``siamkit track`` picks the shipped model with the best
measured AUC). Clips are short and downscaled: compare trackers side by side, never with papers.

    python benchmarks/test_clips.py --int8 --tracker nanotrack_lite0 \
        --weights siamkit/zoo_weights/nanotrack_lite0.safetensors
    python benchmarks/test_clips.py --name families --tracker siamfc --weights A.safetensors --tracker siamban ...
"""

from __future__ import annotations

import shutil
from pathlib import Path

import harness
import yaml
from heldout import summary  # benchmarks/heldout.py: per-tracker summary

from siamkit.eval.tracking.runner import EvalJob, run_evaluation

REPO, CLIPS = harness.REPO, harness.CLIPS
THREADS = 2
BACKENDS = {"": {}, ", onnxruntime fp32": {"backend": "onnxruntime"}}
INT8 = {", onnxruntime int8": {"backend": "onnxruntime", "precision": "int8"}}
FAMILY_GOAL = 0.9  # every trained family: success AUC >= 0.9x CSRT's
PEER_ROWS = {"opencv:csrt": "opencv:csrt", "opencv:nano (NanoTrack v2, OpenCV port)": "opencv:nano"}


def jobs(models: list[tuple[str, Path]], runs: Path, int8: bool) -> dict[str, EvalJob]:
    """Row name → evaluation job, in the order they run (each starts from an empty folder)."""
    backends = BACKENDS | (INT8 if int8 else {})
    rows = {}
    for tracker, weights in models:
        for i, (suffix, options) in enumerate(backends.items()):
            rows[f"{tracker}{suffix}"] = EvalJob(tracker, f"otb:{CLIPS}", str(runs / f"{tracker}{i}"),
                                                 weights=str(weights), device="cpu", options=options)
    for name, peer in PEER_ROWS.items():
        rows[name] = EvalJob(peer, f"otb:{CLIPS}", str(runs / peer.replace(":", "_")), device="cpu")
    return rows


def verdict(results: dict, name: str) -> dict:
    """The goals for one row: the default tracker's (AUC ≥ CSRT's and ≥ TrackerNano's, at ≥ 2× CSRT's FPS)
    and every trained family's (AUC ≥ 0.9× CSRT's)."""
    row, csrt = results[name], results["opencv:csrt"]
    nano = results.get("opencv:nano (NanoTrack v2, OpenCV port)", {})
    ratio = row["fps"] / csrt["fps"] if row.get("fps") and csrt.get("fps") else None
    return {
        "auc_ratio_vs_csrt": round(row["success_auc"] / csrt["success_auc"], 3),
        "meets_family_goal": bool(row["success_auc"] >= FAMILY_GOAL * csrt["success_auc"]),
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
        "success_auc": round(row["success_auc"], 6),  # 6 places: tables round it once, to 3
        "precision_20px": round(row["precision_20px"], 6),
        f"fps_cpu_{threads}_threads": round(row["fps"], 1) if row.get("fps") else None,
        "opencv_csrt_success_auc": round(results["opencv:csrt"]["success_auc"], 4),
    }
    sidecar.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def main() -> None:
    parser = harness.command_line(__doc__, THREADS)
    parser.add_argument("--tracker", action="append", required=True, help="a tracker name (repeat, one a --weights)")
    parser.add_argument("--weights", type=Path, action="append", required=True,
                        help="the trained model (.safetensors) the tracker before it runs")
    parser.add_argument("--name", help="results name (default: the first tracker)")
    parser.add_argument("--int8", action="store_true", help="also run the search branch in onnxruntime int8")
    args = parser.parse_args()
    if len(args.tracker) != len(args.weights):
        parser.error("give one --weights per --tracker")
    models = list(zip(args.tracker, args.weights, strict=True))
    name = args.name or args.tracker[0]
    harness.use_threads(args.threads)
    runs = REPO / "runs" / "test_clips" / name
    shutil.rmtree(runs, ignore_errors=True)
    load_start = harness.load_average()
    results = {}
    for row, job in jobs(models, runs, args.int8).items():
        try:
            metrics = run_evaluation(job, workers=1, show_progress=False)
        except Exception as exc:  # a backend this tracker cannot run on is recorded; the other rows go on
            results[row] = {"skipped": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
            print(row, results[row], flush=True)
            continue
        results[row] = summary(metrics) | {"load_average_1m_after": harness.load_average()}
        print(row, {k: results[row].get(k) for k in ("success_auc", "precision_20px", "fps")}, flush=True)
    ours = [row for row in results if row.split(",")[0] in args.tracker and "skipped" not in results[row]]
    out = harness.output_path(args, f"test_clips_{name}.json")
    harness.save(out, {
        "benchmark": "test_clips",
        "protocol": "OPE (siamkit eval): frame-1 init, no re-init, AUC over 21 IoU thresholds, P@20 px; FPS = "
                    f"tracked frames per second of tracker time, CPU, {args.threads} threads, trackers run one by one",
        "clips": sorted(p.name for p in CLIPS.iterdir() if (p / "img").is_dir()),
        "weights": {tracker: str(weights) for tracker, weights in models},
        "recipes": {tracker: (yaml.safe_load(weights.with_suffix(".yaml").read_text()).get("meta") or {}).get("recipe")
                    for tracker, weights in models},
        "goal": "default tracker: success AUC >= CSRT's and >= cv2.TrackerNano's at >= 2x CSRT's FPS on 2 CPU "
                f"threads; every trained family: success AUC >= {FAMILY_GOAL}x CSRT's",
        "verdict": {row: verdict(results, row) for row in ours},
        "int8_auc_cost": {tracker: round(results[f"{tracker}, onnxruntime fp32"]["success_auc"]
                                         - results[f"{tracker}, onnxruntime int8"]["success_auc"], 4)
                          for tracker in args.tracker} if args.int8 else None,
        "note": "the test set: no siamkit model trained or was selected on these clips; short downscaled "
                "clips, compare side by side only",
        "machine": harness.machine(args.threads, load_start),
        "trackers": results,
    })
    if args.publish:
        for tracker, weights in models:
            record_metrics(weights, tracker, results, args.threads)


if __name__ == "__main__":
    main()
