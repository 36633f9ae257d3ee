"""``siamkit track``: follow one or more objects through a video, a folder of frames or a camera.

    siamkit track clip.mp4 --box 120,80,40,60 --box 300,90,50,50 --out tracked.mp4 --save boxes.json

Boxes are x,y,w,h in 0-based pixels of the first frame. Several ``--box`` are tracked at once
(one batched forward pass per frame for siamkit's Siamese trackers). Ctrl-C stops early and
keeps what was written: the video stays playable and the boxes file valid.
"""

from __future__ import annotations

from pathlib import Path

import typer

from siamkit.cli import app
from siamkit.cli.options import check_device, parse_boxes
from siamkit.errors import ConfigError
from siamkit.safety import check_output_file, check_outputs, check_weights_file
from siamkit.video import CODECS


@app.command("track")
def track(
    source: str = typer.Argument(..., help="Video file, folder of frames (sorted by name) or camera index."),
    box: list[str] = typer.Option(..., "--box", help="Initial box x,y,w,h; repeat for more targets."),
    tracker: str = typer.Option(None, "--tracker", "-t", help="Tracker name (default: nanotrack_lite0)."),
    weights: str = typer.Option(None, "--weights", "-w", help="Zoo name, .safetensors or third-party checkpoint."),
    preset: str = typer.Option(None, "--preset", help="Published configuration (see configs/<tracker>.yaml)."),
    device: str = typer.Option(None, "--device", callback=check_device,
                                help="cpu, cuda or cuda:N (default: CUDA when available)."),
    out: Path = typer.Option(None, "--out", help="Annotated video (.mp4, .avi, .mkv or .webm)."),
    save: Path = typer.Option(None, "--save", help="Per-frame boxes as .json or .csv."),
    max_frames: int = typer.Option(None, "--max-frames", min=1, help="Stop after this many frames."),
    backend: str = typer.Option("torch", "--backend", help="torch, or onnxruntime (CPU: faster search branch)."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, or int8 with --backend onnxruntime."),
) -> None:
    """Track objects through a video file, a folder of frames or a camera."""
    from siamkit.demo import default_tracker
    from siamkit.trackers.session import track_source

    boxes = parse_boxes(box)
    if save is not None and save.suffix.lower() not in (".json", ".csv"):
        raise ConfigError(f"Cannot save boxes to {save.name}.", hint="Use a .json or .csv file name.")
    if out is not None and out.suffix.lower() not in CODECS:
        raise ConfigError(f"Cannot write the video {out.name}.", hint=f"Use one of {', '.join(CODECS)}.")
    # Before any work: outputs never overwrite the input, and their folders must be writable.
    check_outputs({"video": out, "boxes": save}, [source])
    check_output_file(out, "video")
    check_output_file(save, "boxes file")
    check_weights_file(weights)
    if tracker is None:
        tracker, weights, why = default_tracker(weights)
        typer.echo(f"tracker: {tracker} ({why})", err=True)
    options = {"preset": preset} if preset else {}
    if backend != "torch" or precision != "fp32":
        options.update(backend=backend, precision=precision)
    try:
        run = track_source(source, boxes, tracker=tracker, weights=weights, device=device, out_video=out, save=save,
                           max_frames=max_frames, options=options)
    except KeyboardInterrupt:
        kept = [str(p) for p in (out, save) if p is not None and p.exists()]
        typer.echo(f"interrupted; kept {', '.join(kept) or 'nothing'}", err=True)
        raise typer.Exit(130) from None
    frames, targets = run.boxes.shape[:2]
    if frames == 0:
        raise ConfigError(f"No frame was read from {source}.", hint="Check the video source.")
    last = "; ".join(", ".join(f"{v:.1f}" for v in b) for b in run.boxes[-1])
    typer.echo(f"tracked {targets} target(s) through {frames} frames with {tracker} at {run.fps:.1f} fps")
    typer.echo(f"last box: {last}")
    for label, path in (("video", out), ("boxes", save)):
        if path is not None:
            typer.echo(f"{label}: {path}")
