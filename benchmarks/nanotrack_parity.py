"""NanoTrack v2 side by side: siamkit's tracker, the original PyTorch tracker, and OpenCV's TrackerNano.

On every shared clip (``../shared/data/tracking``), initialised on the frame-1 ground truth:

- **siamkit** ``create_tracker("nanotrack")`` with ``nanotrackv2.pth``;
- **original**: HonglinChu/SiamTrackers ``NanoTrack/`` (``NanoTracker`` + ``ModelBuilder`` with the v2 head
  ``ban_v2.DepthwiseBAN``, ``configv2.yaml``, CPU), the same checkpoint. Needs the repository in
  ``third_party/SiamTrackers/NanoTrack`` and ``yacs`` importable (e.g. ``pip install --target third_party/pylib
  yacs``); skipped otherwise. Nothing of it is part of siamkit;
- **opencv**: ``cv2.TrackerNano`` with the two ONNX graphs (its own constants, RGB input);
- **siamkit_opencv_like**: siamkit's tracker fed RGB frames with OpenCV's constants (window 0.455, lr 0.37,
  penalty_k 0.055), to see how much of OpenCV's deviation those two choices explain.

Per clip it writes mean/min IoU and centre distance between siamkit and each peer, success AUC against the
ground truth (21 thresholds 0:0.05:1, success = IoU > t, frame 1 included) and CPU FPS (update calls only:
best of ``--repeats`` separate runs, and ``fps_interleaved`` with all trackers updated in turn on each frame,
the fairer comparison on a loaded machine), to ``benchmarks/results/nanotrack_parity.json``::

    .venv/bin/python benchmarks/nanotrack_parity.py [--clips Biker Soccer] [--threads 1]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from siamkit.geometry import centre_error, iou  # noqa: E402
from siamkit.importers.nanotrack import read_checkpoint  # noqa: E402
from siamkit.trackers import create_tracker  # noqa: E402
from siamkit.utils.io import write_json  # noqa: E402
from siamkit.utils.progress import progress  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
CLIPS = SHARED / "tracking"
PEER = SHARED / "peers" / "nanotrack_v2"
ORIGINAL = REPO / "third_party" / "SiamTrackers" / "NanoTrack"
PYLIB = REPO / "third_party" / "pylib"
OUT = REPO / "benchmarks" / "results" / "nanotrack_parity.json"
THRESHOLDS = np.linspace(0, 1, 21)


# ----------------------------------------------------------------------------- data and metrics


def load_clip(name: str) -> tuple[list[np.ndarray], np.ndarray]:
    """Frames (BGR uint8) and 0-based (x, y, w, h) ground truth of one shared clip."""
    folder = CLIPS / name
    frames = [cv2.imread(str(p)) for p in sorted((folder / "img").glob("*.jpg"))]
    gt = np.loadtxt(folder / "groundtruth_rect.txt", delimiter=",", dtype=np.float64).reshape(-1, 4)
    gt[:, :2] -= 1  # OTB files are 1-based
    return frames, gt[: len(frames)]


def success_auc(boxes: np.ndarray, gt: np.ndarray) -> float:
    """Mean success rate over 21 IoU thresholds (success = IoU > t); frames with invalid GT are skipped."""
    valid = np.isfinite(gt).all(1) & (gt[:, 2] > 0) & (gt[:, 3] > 0)
    overlaps = np.asarray(iou(boxes[valid], gt[valid]), dtype=np.float64)
    return float(np.mean([(overlaps > t).mean() for t in THRESHOLDS]))


def agreement(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """IoU and centre distance (px) between two trackers' boxes, frames 2… (frame 1 is the given box)."""
    overlaps = np.asarray(iou(a[1:], b[1:]), dtype=np.float64)
    dist = np.asarray(centre_error(a[1:], b[1:]), dtype=np.float64)
    return {
        "mean_iou": float(overlaps.mean()),
        "min_iou": float(overlaps.min()),
        "mean_centre_dist": float(dist.mean()),
        "max_centre_dist": float(dist.max()),
    }


# ----------------------------------------------------------------------------- the three trackers


def run(tracker_init, tracker_update, frames: list[np.ndarray], box: np.ndarray) -> tuple[np.ndarray, float]:
    """Boxes (N×4, frame 1 = ``box``) and FPS over the update calls."""
    tracker_init(frames[0], box)
    boxes = [np.asarray(box, dtype=np.float64)]
    start = time.perf_counter()
    for frame in frames[1:]:
        boxes.append(np.asarray(tracker_update(frame), dtype=np.float64))
    elapsed = time.perf_counter() - start
    return np.stack(boxes), (len(frames) - 1) / max(elapsed, 1e-9)


def siamkit_tracker(weights: Path, **options):
    tracker = create_tracker("nanotrack", weights=str(weights), device="cpu", **options)
    return tracker.init, lambda frame: tracker.track(frame).box


# cv2.TrackerNano's constants (opencv modules/video/src/tracking/tracker_nano.cpp); it also feeds RGB.
OPENCV_CONSTANTS = {"window_influence": 0.455, "lr": 0.37, "penalty_k": 0.055}


def siamkit_opencv_like(weights: Path):
    """siamkit's tracker given RGB frames and OpenCV's constants: how much of OpenCV's deviation they explain."""
    init, update = siamkit_tracker(weights, **OPENCV_CONSTANTS)
    return (
        lambda frame, box: init(np.ascontiguousarray(frame[:, :, ::-1]), box),
        lambda frame: update(np.ascontiguousarray(frame[:, :, ::-1])),
    )


def original_available() -> str | None:
    """``None`` when the original NanoTrack code can be imported, else the reason it cannot."""
    if not (ORIGINAL / "nanotrack" / "tracker" / "nano_tracker.py").is_file():
        return f"original NanoTrack code not found in {ORIGINAL}"
    for path in (ORIGINAL, PYLIB):
        if path.is_dir() and str(path) not in sys.path:
            sys.path.append(str(path))
    try:
        import yacs  # noqa: F401
    except ImportError:
        return "yacs (needed by the original NanoTrack config) is not importable"
    return None


def original_tracker(weights: Path):
    """HonglinChu's NanoTracker with the v2 head and configv2.yaml, on CPU."""
    from nanotrack.core.config import cfg
    from nanotrack.models.head.ban_v2 import DepthwiseBAN
    from nanotrack.models.model_builder import ModelBuilder
    from nanotrack.tracker.tracker_builder import build_tracker

    cfg.merge_from_file(str(PEER / "configv2.yaml"))
    cfg.CUDA = False
    model = ModelBuilder()
    model.ban_head = DepthwiseBAN(**cfg.BAN.KWARGS)  # the repository's head package now points at v3
    model.load_state_dict(read_checkpoint(weights)["state_dict"], strict=True)
    model.eval()
    tracker = build_tracker(model)

    def init(frame, box):
        with torch.no_grad():
            tracker.init(frame, list(map(float, box)))

    def update(frame):
        with torch.no_grad():
            return tracker.track(frame)["bbox"]

    return init, update


def opencv_tracker():
    params = cv2.TrackerNano_Params()
    params.backbone = str(PEER / "nanotrack_backbone_sim.onnx")
    params.neckhead = str(PEER / "nanotrack_head_sim.onnx")
    holder = {}

    def init(frame, box):
        holder["t"] = cv2.TrackerNano_create(params)
        holder["t"].init(frame, tuple(int(round(v)) for v in box))

    def update(frame):
        ok, box = holder["t"].update(frame)
        if ok:
            holder["last"] = box
        return holder.get("last", box)

    return init, update


# ----------------------------------------------------------------------------- main


def interleaved_fps(makers: dict, frames: list[np.ndarray], box: np.ndarray) -> dict[str, float]:
    """FPS of several trackers updated in turn on every frame, so a changing machine load hits all alike."""
    trackers = {name: make() for name, make in makers.items()}
    for init, _ in trackers.values():
        init(frames[0], box)
    spent = dict.fromkeys(trackers, 0.0)
    for frame in frames[1:]:
        for name, (_, update) in trackers.items():
            start = time.perf_counter()
            update(frame)
            spent[name] += time.perf_counter() - start
    return {name: (len(frames) - 1) / max(t, 1e-9) for name, t in spent.items()}


def run_best(make, frames: list[np.ndarray], box: np.ndarray, repeats: int) -> tuple[np.ndarray, float]:
    """Boxes of the first run and the best FPS of ``repeats`` runs (a shared machine's load only slows runs)."""
    boxes, fps = run(*make(), frames, box)
    for _ in range(repeats - 1):
        again, more = run(*make(), frames, box)
        if not np.array_equal(again, boxes):
            print("warning: two runs of the same tracker gave different boxes")
        fps = max(fps, more)
    return boxes, fps


def compare_clip(name: str, weights: Path, peers: list[str], repeats: int = 1) -> dict:
    """All requested trackers on one clip; returns the per-clip record (boxes included)."""
    frames, gt = load_clip(name)
    box = gt[0]
    record: dict = {"frames": len(frames)}
    ours, fps = run_best(lambda: siamkit_tracker(weights), frames, box, repeats)
    record["siamkit"] = {"auc": success_auc(ours, gt), "mean_iou_gt": float(np.mean(iou(ours, gt))), "fps": fps}
    record["boxes"] = {"siamkit": ours.round(4).tolist()}
    makers = {
        "original": lambda: original_tracker(weights),
        "opencv": opencv_tracker,
        "siamkit_opencv_like": lambda: siamkit_opencv_like(weights),
    }
    for peer in peers:
        boxes, peer_fps = run_best(makers[peer], frames, box, repeats)
        record[peer] = {"auc": success_auc(boxes, gt), "mean_iou_gt": float(np.mean(iou(boxes, gt))), "fps": peer_fps}
        record[peer]["vs_siamkit"] = agreement(ours, boxes)
        record["boxes"][peer] = boxes.round(4).tolist()
    makers["siamkit"] = lambda: siamkit_tracker(weights)
    record["fps_interleaved"] = interleaved_fps({k: makers[k] for k in ["siamkit", *peers]}, frames, box)
    if "opencv" in peers and "siamkit_opencv_like" in peers:
        like = np.asarray(record["boxes"]["siamkit_opencv_like"])
        record["siamkit_opencv_like"]["vs_opencv"] = agreement(like, np.asarray(record["boxes"]["opencv"]))
    return record


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", nargs="*", help="clip names (default: all shared clips)")
    parser.add_argument("--weights", default=str(PEER / "nanotrackv2.pth"))
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch and OpenCV")
    parser.add_argument("--repeats", type=int, default=2, help="runs per tracker and clip; the best FPS is kept")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--boxes", action="store_true", help="also write every tracker's per-frame boxes")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    clips = args.clips or sorted(p.name for p in CLIPS.iterdir() if (p / "groundtruth_rect.txt").is_file())
    reason = original_available()
    peers = (["original"] if reason is None else []) + ["opencv", "siamkit_opencv_like"]
    if reason:
        print(f"skipping the original tracker: {reason}")

    results: dict = {}
    for name in progress(clips, total=len(clips), desc="nanotrack parity", unit="clip"):
        results[name] = compare_clip(name, Path(args.weights), peers, repeats=args.repeats)
        if not args.boxes:
            results[name].pop("boxes")

    summary: dict = {}
    for who in ["siamkit", *peers]:
        frames = np.array([results[c]["frames"] - 1 for c in clips], dtype=np.float64)
        fps = np.array([results[c][who]["fps"] for c in clips])
        fps_il = np.array([results[c]["fps_interleaved"][who] for c in clips])
        summary[who] = {
            "mean_auc": float(np.mean([results[c][who]["auc"] for c in clips])),
            "fps_overall": float(frames.sum() / (frames / fps).sum()),
            "fps_interleaved_overall": float(frames.sum() / (frames / fps_il).sum()),
        }
        if who != "siamkit":
            per_clip = [results[c][who]["vs_siamkit"]["mean_iou"] for c in clips]
            summary[who]["mean_iou_vs_siamkit"] = float(np.mean(per_clip))
            summary[who]["min_clip_iou_vs_siamkit"] = float(min(per_clip))
        if who == "siamkit_opencv_like" and "opencv" in peers:
            per_clip = [results[c][who]["vs_opencv"]["mean_iou"] for c in clips]
            summary[who]["mean_iou_vs_opencv"] = float(np.mean(per_clip))
    report = {
        "what": "NanoTrack v2: siamkit vs the original PyTorch tracker vs cv2.TrackerNano on the shared clips",
        "metric": "success AUC over IoU thresholds 0:0.05:1 (IoU > t), frame 1 included; agreement on frames 2…",
        "weights": Path(args.weights).name,
        "original_skipped": reason,
        "environment": {
            "torch": torch.__version__,
            "opencv": cv2.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "threads": args.threads,
            "repeats": args.repeats,
            "cpu": platform.processor() or platform.machine(),
        },
        "summary": summary,
        "clips": results,
    }
    write_json(args.out, report)
    for who, row in summary.items():
        print(who, {k: round(v, 4) for k, v in row.items()})
    return report


if __name__ == "__main__":
    main()
