"""``siamkit track``: follow one object through a video file or a folder of frames.

    siamkit track clip.mp4 --box 120,80,40,60 --tracker siamrpnpp_alexnet --save boxes.json

The first frame is initialised with ``--box`` (x, y, w, h, 0-based pixels); every later frame
gets one box. ``--save`` writes JSON (``{"boxes": […], "scores": […], …}``) or CSV
(``frame,x,y,w,h,score``), chosen by the file suffix.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import typer

from siamkit.cli import app
from siamkit.errors import BoxError, ConfigError, VideoError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def parse_box(text: str) -> list[float]:
    """ "x,y,w,h" → four floats (BoxError with a usage hint otherwise)."""
    parts = [p.strip() for p in text.replace(" ", ",").split(",") if p.strip()]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise BoxError(
            f"--box {text!r} is not four numbers.", hint="Write it as x,y,w,h, e.g. --box 120,80,40,60."
        ) from None
    if len(values) != 4:
        raise BoxError(f"--box needs 4 numbers (x,y,w,h), got {len(values)}.", hint="e.g. --box 120,80,40,60.")
    return values


def open_frames(source: str | Path) -> tuple[int | None, Iterator[np.ndarray]]:
    """(frame count if known, iterator of BGR uint8 frames) for a video file or an image folder."""
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise VideoError(f"No image files in {path}.", hint=f"Expected {', '.join(sorted(IMAGE_SUFFIXES))}.")

        def read_images() -> Iterator[np.ndarray]:
            for f in files:
                img = cv2.imread(str(f), cv2.IMREAD_COLOR)
                if img is None:
                    raise VideoError(f"Cannot read the image {f}.", hint="Remove or replace the broken file.")
                yield img

        return len(files), read_images()
    if not path.exists():
        raise VideoError(f"Source not found: {path}.", hint="Give a video file or a folder of frames.")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise VideoError(f"Cannot open {path} as a video.", hint="Check the file, or extract its frames to a folder.")
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None

    def read_video() -> Iterator[np.ndarray]:
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    return
                yield frame
        finally:
            cap.release()

    return count, read_video()


def save_results(path: Path, boxes: list[list[float]], scores: list[float | None], meta: dict) -> None:
    """Write boxes as JSON or CSV (by suffix), atomically."""
    from siamkit.utils.io import atomic_write, write_json

    suffix = path.suffix.lower()
    if suffix == ".json":
        write_json(path, {**meta, "format": "xywh, 0-based pixels", "boxes": boxes, "scores": scores})
    elif suffix == ".csv":

        def write(tmp: Path) -> None:
            with tmp.open("w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["frame", "x", "y", "w", "h", "score"])
                for i, (b, s) in enumerate(zip(boxes, scores, strict=True)):
                    w.writerow([i, *(f"{v:.3f}" for v in b), "" if s is None else f"{s:.6f}"])

        atomic_write(path, write)
    else:
        raise ConfigError(f"Cannot save to {path.name}: unknown format.", hint="Use a .json or .csv file name.")


@app.command("track")
def track(
    source: str = typer.Argument(..., help="Video file or folder of frames (sorted by name)."),
    box: str = typer.Option(..., "--box", help="Initial box in the first frame: x,y,w,h (0-based pixels)."),
    tracker: str = typer.Option("siamrpnpp_alexnet", "--tracker", "-t", help="Tracker name (see siamkit.trackers)."),
    weights: str | None = typer.Option(None, "--weights", "-w", help="Zoo name, .safetensors or third-party .pth."),
    preset: str | None = typer.Option(None, "--preset", help="Published configuration (configs/<tracker>.yaml)."),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: CUDA if available)."),
    save: Path | None = typer.Option(None, "--save", help="Write boxes to a .json or .csv file."),
) -> None:
    """Track one object through a video file or a folder of frames."""
    from siamkit.trackers import create_tracker
    from siamkit.utils.progress import progress

    initial = parse_box(box)
    if save is not None and save.suffix.lower() not in (".json", ".csv"):
        raise ConfigError(f"Cannot save to {save.name}: unknown format.", hint="Use a .json or .csv file name.")
    total, frames = open_frames(source)
    first = next(frames, None)
    if first is None:
        raise VideoError(f"{source} has no frames.")
    options = {"preset": preset} if preset else {}
    trk = create_tracker(tracker, weights=weights, device=device, **options)
    trk.init(first, initial)
    boxes: list[list[float]] = [[float(v) for v in initial]]
    scores: list[float | None] = [None]
    start = time.perf_counter()
    bar = progress(total=None if total is None else total - 1, desc=f"{tracker}", unit="frame")
    try:
        for frame in frames:
            result = trk.track(frame)
            boxes.append([float(v) for v in result.box])
            scores.append(float(result.score))
            bar.update(1)
    finally:
        bar.close()
    elapsed = time.perf_counter() - start
    fps = (len(boxes) - 1) / elapsed if elapsed > 0 else float("nan")
    if save is not None:
        meta = {"source": str(source), "tracker": tracker, "weights": weights, "preset": preset}
        save_results(save, boxes, scores, meta)
    last = ", ".join(f"{v:.1f}" for v in boxes[-1])
    typer.echo(f"tracked {len(boxes)} frames with {tracker} at {fps:.1f} fps; last box {last}")
    if save is not None:
        typer.echo(f"saved {save}")
