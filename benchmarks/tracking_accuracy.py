"""Tracking accuracy and speed of every usable siamkit tracker and the OpenCV peers on the shared clips.

Runs ``siamkit eval``'s OPE protocol (init on the frame-1 ground truth, never re-init; frame 1
scored; NaN ground truth skipped; success AUC over 21 thresholds with IoU > t; precision at
20 px; FPS = tracked frames / tracking time, init excluded) on ``../shared/data/tracking``
and writes ``benchmarks/results/tracking_accuracy.json`` plus ``tracking_accuracy.png``
(success and precision plots, AUC / P@20 in the legend). Raw per-sequence result files go to
``runs/tracking_accuracy/<tracker>/`` (OTB/pysot layout); rerunning resumes them.

The clips are short (36–120 frames) and downscaled, so absolute numbers are **not**
comparable with published OTB/UAV/VOT results — only trackers side by side on these clips.
::

    .venv/bin/python benchmarks/tracking_accuracy.py                      # every usable tracker + peers
    .venv/bin/python benchmarks/tracking_accuracy.py --trackers opencv:csrt opencv:kcf --workers 2
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import cv2
import harness
import numpy as np

from siamkit.errors import SiamkitError
from siamkit.eval.tracking.ope import OVERLAP_THRESHOLDS, PIXEL_THRESHOLDS
from siamkit.eval.tracking.runner import EvalJob, run_evaluation
from siamkit.trackers import available_trackers
from siamkit.trackers.peers import PEERS
from siamkit.utils.io import atomic_write

RUNS = harness.REPO / "runs" / "tracking_accuracy"
NOTE = (
    "Shared clips are short (36-120 frames, 708 in all) and downscaled (longer side <= 480 px, aerial 640 px), "
    "so absolute AUC/precision are much higher than on full benchmarks and NOT comparable with published "
    "numbers; compare trackers side by side only. The reserved evaluation sequences are not among the shared "
    "clips, so none of them is included here."
)


def default_trackers() -> list[str]:
    """Siamese trackers that have weights here (``usable_trackers`` when available) plus the peers."""
    try:
        from siamkit.trackers import usable_trackers

        names = usable_trackers()
    except ImportError:  # older trackers module: only the peers are known to run
        names = [n for n in available_trackers() if n in PEERS]
    return list(dict.fromkeys([*names, *PEERS]))


def _folder(name: str) -> str:
    return name.replace(":", "_").replace("/", "_")


def run(trackers: list[str], clips: Path, runs: Path, workers: int, max_frames: int | None) -> dict:
    results, skipped = {}, {}
    for name in trackers:
        job = EvalJob(name, f"otb:{clips}", str(runs / _folder(name)), max_frames=max_frames)
        start = time.perf_counter()
        try:
            metrics = run_evaluation(job, workers=workers)
        except SiamkitError as exc:
            skipped[name] = str(exc)
            print(f"{name}: skipped ({exc})", file=sys.stderr)
            continue
        overall = metrics["overall"]
        per_seq = metrics["sequences"]
        results[name] = {
            "success_auc": overall["success_auc"],
            "precision_20px": overall["precision_20px"],
            "norm_precision_at_0.20": overall["norm_precision_at_0.20"],
            "success_0.5": overall["success_0.5"],
            "mean_iou": float(np.mean([s["mean_iou"] for s in per_seq.values()])),
            "fps": metrics["fps"],
            "frames": overall["frames"],
            "success_curve": overall["success_curve"],
            "precision_curve": overall["precision_curve"],
            "sequences": {
                k: {"success_auc": v["success_auc"], "precision_20px": v["precision_20px"], "frames": v["frames"]}
                for k, v in per_seq.items()
            },
            "attributes": {k: v["success_auc"] for k, v in metrics["attributes"].items()},
            "wall_s": time.perf_counter() - start,
        }
        print(
            f"{name}: AUC {overall['success_auc']:.3f}  P@20 {overall['precision_20px']:.3f}  FPS {metrics['fps']:.1f}",
            file=sys.stderr,
        )
    return {"trackers": results, "skipped": skipped}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, r in sorted(results.items(), key=lambda kv: -kv[1]["success_auc"]):
        ax1.plot(OVERLAP_THRESHOLDS, r["success_curve"], label=f"[{r['success_auc']:.3f}] {name}")
    for name, r in sorted(results.items(), key=lambda kv: -kv[1]["precision_20px"]):
        ax2.plot(PIXEL_THRESHOLDS, r["precision_curve"], label=f"[{r['precision_20px']:.3f}] {name}")
    ax1.set(xlabel="Overlap threshold", ylabel="Success rate", title="Success plots of OPE (shared clips)")
    ax2.set(xlabel="Location error threshold (px)", ylabel="Precision", title="Precision plots of OPE (shared clips)")
    for ax, loc in ((ax1, "lower left"), (ax2, "lower right")):
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(loc=loc, fontsize=8)
    fig.text(
        0.5, 0.01, "Short, downscaled clips: not comparable with published benchmark numbers.", ha="center", fontsize=8
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=110))
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = harness.command_line(__doc__, threads=2)
    parser.add_argument("--trackers", nargs="*", help="tracker names (default: usable siamkit trackers + peers)")
    parser.add_argument("--clips", type=Path, default=harness.CLIPS)
    parser.add_argument("--runs", type=Path, default=RUNS, help="folder for the raw result files (resumable)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-frames", type=int, default=None)
    args = parser.parse_args(argv)
    out_path = harness.output_path(args, "tracking_accuracy.json")
    if not args.clips.is_dir():
        sys.exit(f"shared clips not found at {args.clips}")
    cv2.setNumThreads(args.threads)
    trackers = args.trackers or default_trackers()
    out = run(trackers, args.clips, args.runs, args.workers, args.max_frames)
    report = {
        "benchmark": "tracking_accuracy",
        "note": NOTE,
        "protocol": "OPE: init on frame-1 GT, no re-init, frame 1 scored, NaN GT skipped; success AUC = mean over "
        "21 thresholds of fraction IoU > t; precision at 20 px centre error; FPS = tracked frames / tracking time",
        "dataset": "otb:../shared/data/tracking",
        "max_frames": args.max_frames,
        "environment": {
            "python": platform.python_version(),
            "opencv": cv2.__version__,
            "cpu_threads": args.threads,
            "workers": args.workers,
            "machine": platform.machine(),
            "load_average_1min_at_end": harness.load_average(),
            "fps_caveat": "shared 2-core machine under load from other jobs: FPS are indicative only",
        },
        **out,
    }
    harness.save(out_path, report)
    if out["trackers"]:
        plot(out["trackers"], out_path.with_suffix(".png"))


if __name__ == "__main__":
    main()
