"""Boxes (and scores) of every registered tracker on the first frames of two shared clips, recorded once.

They guard refactors of the tracker code: ``test_reference_boxes.py`` tracks again and compares
with the boxes saved in ``tests/data/reference_boxes.json`` (to 1e-3 px). Networks without shipped
weights are built with random weights after ``torch.manual_seed(SEED)``, so their boxes are
meaningless but reproducible; shipped ones load their zoo weights, NanoTrack its original
checkpoints from ``../shared/data/peers``.

Record again (only when a change of boxes is intended)::

    OMP_NUM_THREADS=1 .venv/bin/python tests/trackers/reference_boxes.py
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("SIAMKIT_SHARED_DATA", REPO.parent / "shared" / "data"))
OUT = REPO / "tests" / "data" / "reference_boxes.json"
CLIPS = ("Crossing", "vot_bag")
FRAMES = 15
SEED = 0

#: Siamese trackers without shipped weights (``name@preset``: a published preset of a tracker whose default is
#: trained here): random weights after torch.manual_seed(SEED).
RANDOM = ("siamrpnpp_alexnet", "siamrpnpp_mobilev2", "siamrpnpp_r50", "siammask@pysot_vot18")
#: Trackers with zoo weights.
SHIPPED = ("siamfc", "siamrpn", "dasiamrpn", "siamrpnpp_lite0", "siammask", "siamban", "siamban_acm", "nanotrack_lite0")
#: Trackers also run batched: both clips' targets in one BatchedTracker.
BATCHED = ("siamban", "siamrpnpp_alexnet")


def cases() -> dict[str, dict]:
    """Case name → create_tracker arguments (``name`` plus options); files that are absent drop their case."""
    out: dict[str, dict] = {}
    for case in RANDOM + SHIPPED:
        name, _, preset = case.partition("@")
        out[case] = {"name": name, "device": "cpu", **({"preset": preset} if preset else {})}
    for name in ("siamfc", "nanotrack_lite0"):
        out[f"{name}:onnxruntime"] = {"name": name, "device": "cpu", "backend": "onnxruntime"}
    for v in (1, 2, 3):
        weights = SHARED_DATA / "peers" / f"nanotrack_v{v}" / f"nanotrackv{v}.pth"
        if weights.is_file():
            out[f"nanotrack:v{v}"] = {"name": "nanotrack", "device": "cpu", "weights": str(weights)}
    v2 = SHARED_DATA / "peers" / "nanotrack_v2" / "nanotrackv2.pth"
    if v2.is_file():
        out["nanotrack:v2:opencv"] = {"name": "nanotrack", "device": "cpu", "weights": str(v2), "opencv": True}
        out["opencv:nano"] = {"name": "opencv:nano", "weights": str(v2.parent)}
    out["opencv:csrt"] = {"name": "opencv:csrt"}
    out["opencv:kcf"] = {"name": "opencv:kcf"}
    return out


def load_clip(name: str, frames: int = FRAMES) -> tuple[list[np.ndarray], np.ndarray]:
    folder = SHARED_DATA / "tracking" / name
    images = [cv2.imread(str(folder / "img" / f"{i:04d}.jpg")) for i in range(1, frames + 1)]
    first = (folder / "groundtruth_rect.txt").read_text().splitlines()[0]
    box = np.array([float(v) for v in first.replace("\t", ",").split(",")[:4]])
    box[:2] -= 1  # OTB's 1-based corner → siamkit's 0-based pixels
    return images, box


def row(result) -> list[float | None]:
    """x, y, w, h and the score (None where the tracker gives none)."""
    score = result.score
    score = float(score) if score is not None and np.isfinite(score) else None
    return [float(v) for v in result.box] + [score]


def create(name: str, **args):
    """``create_tracker`` after ``torch.manual_seed(SEED)``; a tracker without shipped weights gets a
    random network (asked for with ``weights="none"`` where a missing one is an error)."""
    from siamkit import create_tracker
    from siamkit.errors import WeightsError

    torch.manual_seed(SEED)
    try:
        return create_tracker(name, **args)
    except WeightsError:
        if name not in {case.partition("@")[0] for case in RANDOM} or "weights" in args:
            raise
    torch.manual_seed(SEED)
    return create_tracker(name, weights="none", **args)


def run_case(args: dict, clip: str) -> list[list[float | None]]:
    args = dict(args)
    tracker = create(args.pop("name"), **args)
    images, box = load_clip(clip)
    tracker.init(images[0], tuple(box))
    return [row(tracker.track(f)) for f in images[1:]]


def run_batched(name: str) -> list[list[list[float | None]]]:
    """Both clips' targets advanced in lock-step by one BatchedTracker (frames of two sizes)."""
    from siamkit.trackers.engine import BatchedTracker

    bt = BatchedTracker(create(name, device="cpu"))
    clips = [load_clip(c) for c in CLIPS]
    bt.add([c[0][0] for c in clips], np.stack([c[1] for c in clips]))
    out: list[list[list[float | None]]] = []
    for k in range(1, FRAMES):
        results = bt.track([c[0][k] for c in clips])
        out.append([row(r) for r in results])
    return out


def record() -> dict:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    boxes: dict[str, dict] = {}
    for case, args in cases().items():
        boxes[case] = {"args": args, "boxes": {clip: run_case(args, clip) for clip in CLIPS}}
        print(case, flush=True)
    batched = {name: run_batched(name) for name in BATCHED}
    return {"clips": list(CLIPS), "frames": FRAMES, "seed": SEED, "trackers": boxes, "batched": batched}


def portable(data: dict) -> dict:
    """Weights paths relative to the shared data folder (the JSON names no machine's folders)."""
    for entry in data["trackers"].values():
        w = entry["args"].get("weights")
        if w is not None:
            entry["args"]["weights"] = str(Path(w).relative_to(SHARED_DATA))
    return data


if __name__ == "__main__":
    logging.disable(logging.WARNING)
    if not (SHARED_DATA / "tracking").is_dir():
        sys.exit(f"shared data not found: {SHARED_DATA}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(portable(record()), indent=None, separators=(",", ":"))
    OUT.write_text(text.replace('"trackers":', '\n"trackers":') + "\n")
    print(f"wrote {OUT}")
