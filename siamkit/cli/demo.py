"""``siamkit demo``: the built-in default job."""

from __future__ import annotations

import typer

from siamkit.cli import app
from siamkit.cli.options import check_device, parse_boxes


@app.command("demo")
def demo(
    video: str = typer.Option(None, help="Track in your own video instead of the built-in clip."),
    box: list[str] = typer.Option(None, help="Initial box x,y,w,h in the first frame (with --video)."),
    tracker: str = typer.Option(None, help="Tracker name (default: nanotrack_lite0)."),
    out: str = typer.Option("demo", help="Output folder."),
    device: str = typer.Option(None, callback=check_device, help="cpu or cuda (default: cuda when available)."),
    check: bool = typer.Option(False, "--check", help="Only print the environment and run a self-check."),
) -> None:
    """Track an object through a built-in clip (no network needed) and report AUC and speed."""
    from siamkit.selfcheck import environment, run_checks

    if check:
        for key, value in environment().items():
            typer.echo(f"  {key:<12} {value}")
        checks = run_checks()
        for c in checks:
            typer.echo(f"  [{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}")
        raise typer.Exit(0 if all(c.ok for c in checks) else 1)

    from siamkit.demo import run_demo
    from siamkit.safety import check_output_dir

    check_output_dir(out, "demo")  # before the work: an unwritable folder fails now
    summary = run_demo(out, video=video, boxes=parse_boxes(box) if box else None, tracker=tracker, device=device)
    typer.echo(f"tracker  {summary['tracker']} ({summary['why_this_tracker']})")
    typer.echo(f"clip     {summary['clip']}, {summary['frames']} frames")
    if "success_auc" in summary:
        typer.echo(f"AUC      {summary['success_auc']:.3f}   precision@20px {summary['precision_20px']:.3f}")
    typer.echo(f"FPS      {summary['fps']:.1f}")
    for name, path in summary["outputs"].items():
        typer.echo(f"{name:<8} {path}")
