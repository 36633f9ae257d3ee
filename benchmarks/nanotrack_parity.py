"""NanoTrack v1, v2, v3 side by side: siamkit's tracker, the original PyTorch tracker, OpenCV's TrackerNano,
and the authors' published raw results.

On every shared clip (``../shared/data/tracking``), initialised on the frame-1 ground truth:

- **siamkit** ``create_tracker("nanotrack", weights=nanotrackv{1,2,3}.pth)`` (preset of the version, i.e.
  the authors' ``configv{n}.yaml``);
- **original**: HonglinChu/SiamTrackers ``NanoTrack/`` (``NanoTracker`` + ``ModelBuilder`` with the
  version's head ``ban_v{n}.DepthwiseBAN`` and ``configv{n}.yaml``, CPU) on the same checkpoint. Taken
  from ``third_party/SiamTrackers/NanoTrack`` or ``../shared/peers-src/NanoTrack``, with ``yacs``
  importable (``--pylib DIR`` or ``$NANOTRACK_PYLIB`` appends a folder holding it to ``sys.path``);
  skipped otherwise. Nothing of it is part of siamkit;
- **opencv** (v2): ``cv2.TrackerNano`` on the two v2 ONNX graphs, through siamkit's ``opencv:nano`` wrapper;
- **siamkit_opencv** (v2): siamkit's tracker with preset ``opencv`` (cv2.TrackerNano's procedure, see
  ``siamkit.trackers.nanotrack.OPENCV_STEPS``);
- **steps** (v2): which of OpenCV's departures matter: the original plus ONE step (``only``), and
  OpenCV's procedure minus one step (``all_but``); ``constants`` stands for OpenCV's window influence,
  penalty k and lr.

Per clip: mean/min IoU and centre distance between trackers (frames 2…), success AUC against the ground
truth (21 thresholds 0:0.05:1, success = IoU > t, frame 1 included) and CPU FPS (update calls, one thread).

**Published raw results**: the authors' DTB70 and VOT2018 trajectories (``../shared/data/peers/
nanotrack_results``) cover ``dtb_Gull2``, ``vot_bag`` and ``vot_car1``. Ours are the first frames of those
sequences, downscaled by ``sx`` (``MANIFEST.tsv``); a published box maps to ours as ``x' = (x − o)·sx``,
``w' = w·sx`` with ``o = 1`` for DTB70 (1-based, like its ground truth) and ``o = 0`` for VOT (0-based
polygons). VOT runs are compared up to the first failure (none inside our frames). The trajectories differ
for reasons outside the tracker too: our frames are downscaled and re-encoded, and for VOT the authors
initialised on pysot's area-preserving box of the polygon, ours on its enclosing box.

    .venv/bin/python benchmarks/nanotrack_parity.py [--clips Biker Soccer] [--pylib /path/with/yacs]
"""

from __future__ import annotations

import csv
import io
import os
import platform
import re
import sys
import time
import zipfile
from pathlib import Path

import cv2
import harness
import numpy as np
import torch

from siamkit.geometry import centre_error, iou
from siamkit.importers.nanotrack import read_checkpoint
from siamkit.trackers import create_tracker
from siamkit.trackers.nanotrack import OPENCV_STEPS
from siamkit.utils.progress import progress

REPO = harness.REPO
CLIPS = harness.CLIPS
PEERS = CLIPS.parent / "peers"
RESULTS_DIR = PEERS / "nanotrack_results"
ORIGINAL_DIRS = (
    REPO / "third_party" / "SiamTrackers" / "NanoTrack",
    REPO.parent / "shared" / "peers-src" / "NanoTrack",
)
PYLIB = REPO / "third_party" / "pylib"
THRESHOLDS = np.linspace(0, 1, 21)
VERSIONS = (1, 2, 3)
OPENCV_CONSTANTS = {"window_influence": 0.455, "lr": 0.37, "penalty_k": 0.055}

# Published trajectories: clip → (benchmark, offset o of the published coordinates, {source: member}).
PUBLISHED = {
    "dtb_Gull2": ("DTB70", 1.0, {
        "NanoTrack (DTB70.zip)": ("DTB70.zip", "DTB70/NanoTrack/Gull2.txt"),
        "NanoTrackV3 (NanoTrackV3.zip)": ("NanoTrackV3.zip", "NanoTrackV3/DTB70/nanotrack/Gull2.txt"),
    }),
    "vot_bag": ("VOT2018", 0.0, {
        "NanoTrack (VOT2018.zip)": ("VOT2018.zip", "VOT2018/NanoTrack/baseline/bag/bag_001.txt"),
        "NanoTrackV3 (NanoTrackV3.zip)": ("NanoTrackV3.zip", "NanoTrackV3/VOT2018/nanotrack/baseline/bag/bag_001.txt"),
    }),
    "vot_car1": ("VOT2018", 0.0, {
        "NanoTrack (VOT2018.zip)": ("VOT2018.zip", "VOT2018/NanoTrack/baseline/car1/car1_001.txt"),
        "NanoTrackV3 (NanoTrackV3.zip)": (
            "NanoTrackV3.zip", "NanoTrackV3/VOT2018/nanotrack/baseline/car1/car1_001.txt"),
    }),
}


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
    """IoU and centre distance (px) between two trajectories, frames 2… (frame 1 is the given box)."""
    overlaps = np.asarray(iou(a[1:], b[1:]), dtype=np.float64)
    dist = np.asarray(centre_error(a[1:], b[1:]), dtype=np.float64)
    return {
        "mean_iou": float(overlaps.mean()),
        "min_iou": float(overlaps.min()),
        "mean_centre_dist": float(dist.mean()),
        "max_centre_dist": float(dist.max()),
        "identical_frames": float(np.mean(np.all(np.abs(a[1:] - b[1:]) < 1e-3, axis=1))),
    }


def manifest_scale(clip: str) -> float:
    """The downscale factor ``sx`` of a shared clip (1 when MANIFEST.tsv names none)."""
    with open(CLIPS / "MANIFEST.tsv", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if row["name"] == clip:
                found = re.search(r"sx=([0-9.]+)", row["modifications"])
                return float(found.group(1)) if found else 1.0
    raise KeyError(f"{clip} is not in MANIFEST.tsv")


def read_published(archive: str, member: str, frames: int) -> np.ndarray:
    """First ``frames`` published boxes (x, y, w, h; NaN for VOT's 0/1/2 status lines), native coordinates."""
    with zipfile.ZipFile(RESULTS_DIR / archive) as z:
        text = z.read(member).decode()
    rows = []
    for line in io.StringIO(text):
        values = [float(v) for v in line.strip().split(",") if v]
        if len(values) == 4:
            rows.append(values)
        elif len(values) == 8:  # polygon → enclosing box
            xs, ys = values[0::2], values[1::2]
            rows.append([min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)])
        else:
            rows.append([np.nan] * 4)
        if len(rows) == frames:
            break
    return np.asarray(rows, dtype=np.float64)


# ----------------------------------------------------------------------------- the trackers


def run(make, frames: list[np.ndarray], box: np.ndarray) -> tuple[np.ndarray, float]:
    """Boxes (N×4, frame 1 = ``box``) and FPS over the update calls of a fresh tracker from ``make()``."""
    init, update = make()
    init(frames[0], box)
    boxes = [np.asarray(box, dtype=np.float64)]
    start = time.perf_counter()
    for frame in frames[1:]:
        boxes.append(np.asarray(update(frame), dtype=np.float64))
    elapsed = time.perf_counter() - start
    return np.stack(boxes), (len(frames) - 1) / max(elapsed, 1e-9)


def weights_of(version: int) -> Path:
    return PEERS / f"nanotrack_v{version}" / f"nanotrackv{version}.pth"


def siamkit_tracker(version: int, **options):
    tracker = create_tracker("nanotrack", weights=str(weights_of(version)), device="cpu", **options)
    return tracker.init, lambda frame: tracker.track(frame).box


def opencv_tracker():
    tracker = create_tracker("opencv:nano", weights=str(PEERS / "nanotrack_v2"))
    return tracker.init, lambda frame: tracker.track(frame).box


def original_dir() -> Path | None:
    return next((d for d in ORIGINAL_DIRS if (d / "nanotrack" / "tracker" / "nano_tracker.py").is_file()), None)


def original_available() -> str | None:
    """``None`` when the original NanoTrack code can be imported, else the reason it cannot."""
    folder = original_dir()
    if folder is None:
        return f"original NanoTrack code not found in {' or '.join(map(str, ORIGINAL_DIRS))}"
    extra = os.environ.get("NANOTRACK_PYLIB")
    for path in (folder, PYLIB, *([Path(extra)] if extra else [])):
        if path.is_dir() and str(path) not in sys.path:
            sys.path.append(str(path))
    try:
        import yacs  # noqa: F401
    except ImportError:
        return "yacs (needed by the original NanoTrack config) is not importable"
    return None


_ORIGINAL_DEFAULTS = {}


def original_tracker(version: int):
    """HonglinChu's NanoTracker with the version's head and configv{n}.yaml, on CPU (its cfg is global)."""
    import importlib

    from nanotrack.core.config import cfg
    from nanotrack.models.model_builder import ModelBuilder
    from nanotrack.tracker.tracker_builder import build_tracker

    if "cfg" not in _ORIGINAL_DEFAULTS:
        _ORIGINAL_DEFAULTS["cfg"] = cfg.clone()
    cfg.merge_from_other_cfg(_ORIGINAL_DEFAULTS["cfg"])
    cfg.merge_from_file(str(PEERS / f"nanotrack_v{version}" / f"configv{version}.yaml"))
    cfg.CUDA = False
    head = importlib.import_module(f"nanotrack.models.head.ban_v{version}")
    model = ModelBuilder()
    model.ban_head = head.DepthwiseBAN(**cfg.BAN.KWARGS)  # the repository's head package points at v3 only
    model.load_state_dict(read_checkpoint(weights_of(version))["state_dict"], strict=True)
    model.eval()
    tracker = build_tracker(model)

    def init(frame, box):
        with torch.no_grad():
            tracker.init(frame, list(map(float, box)))

    def update(frame):
        with torch.no_grad():
            return tracker.track(frame)["bbox"]

    return init, update


def step_variants() -> dict[str, dict]:
    """siamkit options of each one-step ablation (v2): ``only:<step>`` and ``all_but:<step>``."""
    variants: dict[str, dict] = {}
    for step in (*OPENCV_STEPS, "constants"):
        only = dict(OPENCV_CONSTANTS) if step == "constants" else {"opencv": [step]}
        rest = [s for s in OPENCV_STEPS if s != step]
        all_but = {"opencv": rest} if step == "constants" else {"opencv": rest, **OPENCV_CONSTANTS}
        variants[f"only:{step}"] = only
        variants[f"all_but:{step}"] = all_but
    return variants


# ----------------------------------------------------------------------------- per clip


def compare_clip(name: str, with_original: bool, with_steps: bool, versions=VERSIONS) -> dict:
    """All trackers on one clip; returns the per-clip record with every trajectory."""
    frames, gt = load_clip(name)
    box = gt[0]
    record: dict = {"frames": len(frames), "boxes": {}}

    def add(key: str, make, reference: str | None = None) -> np.ndarray:
        boxes, fps = run(make, frames, box)
        entry = {"auc": success_auc(boxes, gt), "fps": fps}
        if reference is not None:
            entry["vs_" + reference] = agreement(np.asarray(record["boxes"][reference]), boxes)
        record[key] = entry
        record["boxes"][key] = boxes.round(4).tolist()
        return boxes

    for v in versions:
        add(f"siamkit_v{v}", lambda v=v: siamkit_tracker(v))
        if with_original:
            add(f"original_v{v}", lambda v=v: original_tracker(v), reference=f"siamkit_v{v}")
    if 2 in versions:
        add("opencv", opencv_tracker, reference="siamkit_v2")
        add("siamkit_opencv", lambda: siamkit_tracker(2, opencv=True), reference="opencv")
        if with_steps:
            for key, options in step_variants().items():
                add(f"step:{key}", lambda options=options: siamkit_tracker(2, **options), reference="opencv")
                record[f"step:{key}"]["vs_siamkit_v2"] = agreement(
                    np.asarray(record["boxes"]["siamkit_v2"]), np.asarray(record["boxes"][f"step:{key}"])
                )
    return record


def compare_published(results: dict) -> dict:
    """siamkit v1/v2/v3 against the authors' published trajectories on the clips they cover."""
    out: dict = {}
    for clip, (benchmark, offset, sources) in PUBLISHED.items():
        if clip not in results or not (RESULTS_DIR / "DTB70.zip").is_file():
            continue
        record = results[clip]
        n = record["frames"]
        sx = manifest_scale(clip)
        _, gt = load_clip(clip)
        entry: dict = {"benchmark": benchmark, "scale": sx, "offset": offset, "frames": n, "sources": {}}
        for source, (archive, member) in sources.items():
            pub = read_published(archive, member, n)
            pub[:, :2] = (pub[:, :2] - offset) * sx
            pub[:, 2:] *= sx
            # Where frame 1 is published (DTB70), it is the authors' initial box: report how far it sits
            # from our mapped ground truth (their toolkit's half-pixel convention), then remove that shift.
            shift = gt[0, :2] - pub[0, :2] if np.isfinite(pub[0]).all() else np.zeros(2)
            pub[:, :2] += shift
            valid = np.isfinite(pub).all(1)
            valid[0] = False
            if not valid.any():
                continue
            row: dict = {"compared_frames": int(valid.sum()),
                         "auc_vs_gt": success_auc(pub[valid], gt[valid]),
                         "frame1_shift_px": shift.round(4).tolist()}
            for v in VERSIONS:
                ours = np.asarray(record["boxes"].get(f"siamkit_v{v}", []))
                if not len(ours):
                    continue
                overlaps = np.asarray(iou(ours[valid], pub[valid]), dtype=np.float64)
                dist = np.asarray(centre_error(ours[valid], pub[valid]), dtype=np.float64)
                row[f"siamkit_v{v}"] = {
                    "mean_iou": float(overlaps.mean()),
                    "mean_centre_error_px": float(dist.mean()),
                    "mean_centre_error_native_px": float(dist.mean() / sx),
                    "max_centre_error_px": float(dist.max()),
                }
            entry["sources"][source] = row
        out[clip] = entry
    return out


def onnx_parity(clips=(("Biker", 8), ("dtb_Gull2", 5), ("vot_car1", 20))) -> dict:
    """Largest differences between siamkit's torch network and the authors' ONNX graphs, per version.

    Same crops (real frames) into both; the head graph and siamkit's head get the ONNX features.
    """
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        return {"skipped": str(exc)}
    from siamkit.importers.nanotrack import load_nanotrack
    from siamkit.ops.crop import crop_numpy
    from siamkit.utils.onnx import cpu_session

    files = {1: ("nanotrack_backbone_sim.onnx", "nanotrack_head_sim.onnx"),
             2: ("nanotrack_backbone_sim.onnx", "nanotrack_head_sim.onnx"),
             3: ("nanotrack_backbone.onnx", "nanotrack_head.onnx")}

    out: dict = {}
    for v in VERSIONS:
        folder = PEERS / f"nanotrack_v{v}"
        model = load_nanotrack(weights_of(v))
        backbone, head = cpu_session(folder / files[v][0], dynamic_spatial=True), cpu_session(folder / files[v][1])
        worst = dict.fromkeys(("template_features", "search_features", "logits", "log_distances",
                               "distances_relative", "feature_peak"), 0.0)
        for clip, index in clips:
            frames, gt = load_clip(clip)
            x0, y0, w, h = gt[0]
            centre = (x0 + (w - 1) / 2, y0 + (h - 1) / 2)
            p = (w + h) / 2
            s_z = round(float(np.sqrt((w + p) * (h + p))))
            z = np.ascontiguousarray(crop_numpy(frames[0], centre, s_z, 127).transpose(2, 0, 1)[None], np.float32)
            x = np.ascontiguousarray(
                crop_numpy(frames[index - 1], centre, s_z * 255 / 127, 255).transpose(2, 0, 1)[None], np.float32)
            zf_o, xf_o = backbone.run(None, {"input": z})[0], backbone.run(None, {"input": x})[0]
            logits, dists = head.run(None, {"input1": zf_o, "input2": xf_o})
            with torch.no_grad():
                zf, xf = model.template(torch.from_numpy(z)).numpy(), model.backbone(torch.from_numpy(x)).numpy()
                cls, loc = (t.numpy() for t in model.head(torch.from_numpy(zf_o), torch.from_numpy(xf_o)))
            found = {
                "template_features": np.abs(zf - zf_o).max(),
                "search_features": np.abs(xf - xf_o).max(),
                "logits": np.abs(cls - logits).max(),
                "log_distances": np.abs(np.log(loc) - np.log(dists)).max(),
                "distances_relative": (np.abs(loc - dists) / dists).max(),
                "feature_peak": max(np.abs(zf_o).max(), np.abs(xf_o).max()),
            }
            worst = {k: max(worst[k], float(found[k])) for k in worst}
        out[f"v{v}"] = worst
    return out


# ----------------------------------------------------------------------------- main


def summarise(results: dict, clips: list[str], who: list[str]) -> dict:
    summary: dict = {}
    frames = np.array([results[c]["frames"] - 1 for c in clips], dtype=np.float64)
    for name in who:
        row = {"mean_auc": float(np.mean([results[c][name]["auc"] for c in clips]))}
        fps = np.array([results[c][name]["fps"] for c in clips])
        row["fps_overall"] = float(frames.sum() / (frames / fps).sum())
        for ref in ("siamkit_v1", "siamkit_v2", "siamkit_v3", "opencv"):
            key = "vs_" + ref
            if key in results[clips[0]][name]:
                per_clip = [results[c][name][key]["mean_iou"] for c in clips]
                row[f"mean_iou_{key}"] = float(np.mean(per_clip))
                row[f"min_clip_iou_{key}"] = float(min(per_clip))
                row[f"max_centre_dist_{key}"] = float(max(results[c][name][key]["max_centre_dist"] for c in clips))
                row[f"identical_frames_{key}"] = float(
                    np.sum([results[c][name][key]["identical_frames"] * (results[c]["frames"] - 1) for c in clips])
                    / frames.sum()
                )
        summary[name] = row
    return summary


def main(argv: list[str] | None = None) -> dict:
    parser = harness.command_line(__doc__, threads=1)
    parser.add_argument("--clips", nargs="*", help="clip names (default: all shared clips)")
    parser.add_argument("--pylib", help="a folder holding yacs, appended to sys.path for the original tracker")
    parser.add_argument("--no-steps", action="store_true", help="skip the one-step ablation of OpenCV's procedure")
    parser.add_argument("--boxes", action="store_true", help="also write every tracker's per-frame boxes")
    args = parser.parse_args(argv)
    out = harness.output_path(args, "nanotrack_parity.json")
    harness.use_threads(args.threads)
    if args.pylib:
        sys.path.append(args.pylib)
    clips = args.clips or sorted(p.name for p in CLIPS.iterdir() if (p / "groundtruth_rect.txt").is_file())
    reason = original_available()
    if reason:
        print(f"skipping the original tracker: {reason}")

    results: dict = {}
    for name in progress(clips, total=len(clips), desc="nanotrack parity", unit="clip"):
        results[name] = compare_clip(name, with_original=reason is None, with_steps=not args.no_steps)
    published = compare_published(results)
    parity = onnx_parity()
    who = [k for k in results[clips[0]] if k not in ("frames", "boxes")]
    summary = summarise(results, clips, who)
    if not args.boxes:
        for record in results.values():
            record.pop("boxes")
    report = {
        "what": "NanoTrack v1/v2/v3: siamkit vs the original PyTorch tracker, cv2.TrackerNano (v2) and the "
        "authors' published raw results, on the shared clips",
        "metric": "success AUC over IoU thresholds 0:0.05:1 (IoU > t), frame 1 included; agreement on frames 2…",
        "weights": [weights_of(v).name for v in VERSIONS],
        "original_source": None if reason else str(original_dir().relative_to(REPO.parent)),
        "original_skipped": reason,
        "opencv_steps": list(OPENCV_STEPS),
        "opencv_constants": OPENCV_CONSTANTS,
        "environment": {
            "torch": torch.__version__,
            "opencv": cv2.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "threads": args.threads,
            "cpu": platform.processor() or platform.machine(),
        },
        "summary": summary,
        "onnx_parity": parity,
        "published": published,
        "clips": results,
    }
    harness.save(out, report)
    for name, row in summary.items():
        print(name, {k: round(v, 4) for k, v in row.items()})
    return report


if __name__ == "__main__":
    main()
