"""Training-pair throughput: pairs per second through a torch DataLoader with 0 and 2 workers.

Pairs are the full pipeline of :mod:`siamkit.data.pairs` — JPEG decode of two frames, context crop
onto the augmentation canvas (``crop_numpy``), shift/scale warp, PCA colour, blur, and the
targets — for SiamFC (17×17 labels) and SiamRPN++ (25×25×5 anchor targets), from the shared
training clips plus the photographs matplotlib/scikit-learn ship. The first batch of every run
(worker start-up) is timed separately. The machine's other load is recorded with the numbers.

    python benchmarks/pair_loader.py
    python benchmarks/pair_loader.py --batches 5 --out /tmp/pairs.json
"""

from __future__ import annotations

import time

import cv2
import harness
import torch
from heldout import HELD_OUT

from siamkit.data.pairs import (
    PairConfig,
    PairDataset,
    PhotoSource,
    TrackSource,
    collate,
    image_paths,
    seed_worker,
    tracks_from_dataset,
)
from siamkit.losses.tracking import AnchorTargets, SiamFCTargets
from siamkit.train.tracking import package_photo_folders


def sources() -> list:
    tracks = tracks_from_dataset(f"otb:{harness.CLIPS}", exclude=HELD_OUT)
    photos = image_paths(package_photo_folders(["matplotlib", "sklearn"]))
    return [TrackSource("clips", tracks, 100, 400), PhotoSource("photos", photos, 100)]


def measure(dataset: PairDataset, workers: int, batch: int, batches: int) -> dict:
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch, shuffle=False, num_workers=workers, collate_fn=collate,
        worker_init_fn=seed_worker if workers else None, persistent_workers=False,
    )
    it = iter(loader)
    start = time.perf_counter()
    next(it)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    elapsed = time.perf_counter() - start
    del it
    return {
        "workers": workers,
        "batch_size": batch,
        "batches_timed": batches,
        "first_batch_s": round(first, 3),
        "pairs_per_s": round(batches * batch / elapsed, 1),
        "ms_per_pair": round(1000 * elapsed / (batches * batch), 2),
    }


def main() -> None:
    parser = harness.command_line(__doc__, threads=1)
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    out = harness.output_path(args, "pair_loader.json")
    torch.set_num_threads(args.threads)
    # OpenCV's thread pool does not survive fork(): a parent that used it can deadlock forked workers
    cv2.setNumThreads(1)
    srcs = sources()
    runs = []
    for name, targets, cfg in [
        ("siamfc", SiamFCTargets(score_size=17), PairConfig(neg=0.0, rgb=True)),
        ("siamrpnpp", AnchorTargets(score_size=25), PairConfig()),
    ]:
        dataset = PairDataset(srcs, cfg, targets)
        for workers in (0, 2):
            row = {"targets": name, **measure(dataset, workers, args.batch_size, args.batches)}
            print(row)
            runs.append(row)
    harness.save(out, {
        "benchmark": "pair_loader",
        "what": "pairs/s of PairDataset through torch DataLoader (decode + crop + augmentation + targets)",
        "data": "shared clips Biker, Human3, MotorRolling, Soccer, Tiger1, vot_car1 + matplotlib/sklearn photos",
        "augmentation": {"siamfc": "template 4 px / 5 %, search 8 px / 5 %, no colour",
                         "siamrpnpp": "pysot: template 4 px / 5 %, search 64 px / 18 %, blur 0.2, colour 1, neg 0.2"},
        "machine": {**harness.machine(args.threads), "torch_threads": args.threads},
        "note": "2 CPU cores shared with other jobs: absolute numbers depend on the load recorded here",
        "runs": runs,
    })


if __name__ == "__main__":
    main()
