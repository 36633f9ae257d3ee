"""SiamMask's masks on the DAVIS validation videos of ``tracking_train``: J, F and J&F per mask threshold.

The five DAVIS sequences held out by video from every Lite0 training recipe (bmx-trees, dog, kite-surf,
parkour, scooter-black) have masks for every frame; the test clips have none. These videos choose the mask
threshold (a tracker setting), so the J&F at the chosen threshold is a validation score. Each sequence is
tracked from its first box (never re-initialised) and frames 2…N are scored; ``box_J`` is the J of the
tracker's own axis-aligned box filled as a mask, the answer of a box-only tracker.

By default the JSON goes to ``runs/benchmarks/davis_masks.json``; ``--publish`` writes
``benchmarks/results/davis_masks.json`` and the picture ``benchmarks/results/siammask_davis.jpg`` (masks,
rotated boxes and the true outline on frames of two validation videos; beside the JSON without ``--publish``).

    python benchmarks/davis_masks.py --weights runs/siammask_lite0/siammask_lite0.safetensors
    python benchmarks/davis_masks.py --publish
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import harness
import numpy as np

from siamkit.data.sequences import open_dataset
from siamkit.eval.tracking.masks import score_mask_sequence, sequence_masks
from siamkit.trackers import create_tracker
from siamkit.video import draw_tracks

TRAIN = harness.REPO.parent / "shared" / "data" / "tracking_train"
VALIDATION = ("davis_bmx-trees", "davis_dog", "davis_kite-surf", "davis_parkour", "davis_scooter-black")
THRESHOLDS = (0.15, 0.2, 0.3, 0.4, 0.5, 0.6)
PICTURE_VIDEOS = ("davis_dog", "davis_parkour")
PICTURE_FRAMES = 4


def picture(tracker, dataset, threshold: float, path: Path) -> None:
    """A grid: one row per video, ``PICTURE_FRAMES`` evenly spaced frames; the mask (filled), its rotated box
    (outline) and the true mask's outline in white."""
    rows = []
    for name in PICTURE_VIDEOS:
        seq = dataset[name]
        masks = sequence_masks(seq)
        keep = set(np.linspace(1, len(masks) - 1, PICTURE_FRAMES).round().astype(int).tolist())
        tiles = []
        for i, frame in enumerate(seq.frames(0)):
            if i == 0:
                tracker.init(frame, seq.init_box)
                continue
            result = tracker.track(frame)
            if i not in keep:
                continue
            tile = draw_tracks(frame, [result.box], None, [result.mask > threshold], [result.polygon])
            truth = (cv2.imread(str(masks[i]), cv2.IMREAD_GRAYSCALE) > 127).astype(np.uint8)
            contours = cv2.findContours(truth, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)[-2]
            cv2.drawContours(tile, contours, -1, (255, 255, 255), 1)
            cv2.putText(tile, f"{name[6:]} #{i + 1}", (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2)
            tiles.append(cv2.resize(tile, (320, round(320 * tile.shape[0] / tile.shape[1]))))
        height = min(t.shape[0] for t in tiles)
        rows.append(np.hstack([t[:height] for t in tiles]))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.vstack(rows), [cv2.IMWRITE_JPEG_QUALITY, 85])


def main() -> None:
    parser = harness.command_line(__doc__)
    parser.add_argument("--tracker", default="siammask")
    parser.add_argument("--weights", default=None, help="zoo name or .safetensors (default: the shipped model)")
    parser.add_argument("--preset", default="lite0")
    parser.add_argument("--thresholds", type=float, nargs="+", default=THRESHOLDS)
    args = parser.parse_args()
    harness.use_threads(args.threads)
    load_at_start = harness.load_average()
    dataset = open_dataset(f"otb:{TRAIN}")

    def tracker(**settings):
        return create_tracker(args.tracker, weights=args.weights, device="cpu", preset=args.preset, **settings)

    started = time.perf_counter()
    rows = [score_mask_sequence(tracker(), dataset[name], args.thresholds) for name in VALIDATION]
    # DAVIS's convention: the mean over sequences of each sequence's mean over its frames
    mean = {key: [float(v) for v in np.mean([r[key] for r in rows], 0)] for key in ("J", "F", "JF")}
    best = int(np.argmax(mean["JF"]))
    results = {
        "benchmark": "SiamMask masks on the DAVIS validation videos of tracking_train (frames 2..N, no re-init)",
        "tracker": args.tracker, "preset": args.preset, "weights": args.weights or "shipped",
        "videos": list(VALIDATION), "thresholds": [float(t) for t in args.thresholds],
        "mean": mean,
        "box_J": float(np.mean([r["box_J"] for r in rows])),
        "best_threshold": float(args.thresholds[best]),
        "at_best": {key: mean[key][best] for key in mean},
        "sequences": rows,
        "wall_time_s": round(time.perf_counter() - started, 1),
        "machine": harness.machine(args.threads, load_at_start),
    }
    out = harness.output_path(args, "davis_masks.json")
    harness.save(out, results)
    threshold = results["best_threshold"]
    picture(tracker(mask_threshold=threshold), dataset, threshold, out.with_name("siammask_davis.jpg"))
    print(f"best threshold {threshold}: J {mean['J'][best]:.3f} F {mean['F'][best]:.3f} "
          f"J&F {mean['JF'][best]:.3f} (box J {results['box_J']:.3f})")


if __name__ == "__main__":
    main()
