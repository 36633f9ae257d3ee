"""``siamkit train --config configs/<exp>.yaml``: run the experiment a YAML describes (by its ``task:``)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from siamkit.cli import app
from siamkit.cli.options import check_device


@app.command("train")
def train(
    config: Path = typer.Option(..., "--config", "-c", help="Experiment YAML (its 'task:' key selects the runner)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoint.pt exactly where it stopped."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Run folder (default runs/<name>)."),
    steps: int | None = typer.Option(None, "--steps", min=1, help="Override train.steps (e.g. for a smoke run)."),
    device: str | None = typer.Option(None, "--device", callback=check_device,
                                help="cpu, cuda, cuda:1 … (default: cuda if available)."),
    publish: bool = typer.Option(False, "--publish/--no-publish",
                                 help="Also write the config's results file and ship the model to its zoo path "
                                      "(off by default: a run writes into its run folder only)."),
) -> None:
    """Train a model from a YAML config; writes checkpoints, logs and a results JSON."""
    from siamkit.safety import check_output_dir
    from siamkit.train.tasks import run_experiment

    if out is not None:
        check_output_dir(out, "run")  # before the training: an unwritable folder fails now
    command = "siamkit " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "siamkit train"
    results = run_experiment(config, out_dir=out, resume=resume, command=command, steps=steps, device=device,
                             publish=publish)
    if results:
        typer.echo(f"{results.get('experiment', config)}: done in {results.get('total_wall_time_s', '?')} s")
        if "shipped" in results:
            typer.echo(f"shipped {results['shipped']}")
