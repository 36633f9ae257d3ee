"""``siamkit eval``: run a tracker on a benchmark, or score a similarity model (``--model``) on a dataset.

Trackers: results other toolkits read, resumable. Similarity models (:mod:`siamkit.eval.metric.models`):
``--dataset omniglot:PATH | market:PATH | pairs:PATH``, ``metrics.json`` and a plot in ``--out``, the
headline number on the last line.
"""

from __future__ import annotations

import typer

from siamkit.cli import app
from siamkit.cli.options import check_device


def parse_options(items: list[str] | None) -> dict[str, object]:
    """``["key=value", …]`` → dict; numbers become numbers and true/false booleans."""
    from siamkit.errors import ConfigError

    options: dict[str, object] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"Option {item!r} is not KEY=VALUE.", hint="Write e.g. --option detect_thresh=0.")
        try:
            options[key] = int(value)
        except ValueError:
            try:
                options[key] = float(value)
            except ValueError:
                words = {"true": True, "false": False}
                options[key] = words.get(value.lower(), value)
    return options


def _list_trackers(value: bool) -> None:
    if value:
        from siamkit.trackers import available_trackers

        for name in available_trackers():
            typer.echo(name)
        raise typer.Exit()


@app.command("eval")
def eval_command(
    tracker: str = typer.Option(
        None, "--tracker", "-t", help="Tracker name (see `siamkit eval --list`; default: nanotrack_lite0)."
    ),
    model: str = typer.Option(
        None, "--model", "-m",
        help="Similarity model to score instead of a tracker: a zoo name (faces, signatures, reid, omniglot), "
             "a .safetensors path, or baseline:pixels / baseline:histogram.",
    ),
    dataset: str = typer.Option(
        ..., "--dataset", "-d",
        help="KIND:PATH. Trackers: otb:…, vot:…, got10k:… Models: omniglot:PATH, market:PATH, pairs:PATH.",
    ),
    out: str = typer.Option(
        None, "--out", "-o",
        help="Folder for the results (trackers: required, resumable; models: metrics.json and a plot, "
             "default runs/eval/<model>_<kind>).",
    ),
    protocol: str = typer.Option("ope", "--protocol", "-p", help="ope | lasot | got10k | vot | vot-lt."),
    weights: str = typer.Option(None, "--weights", "-w", help="Weights file or zoo name."),
    device: str = typer.Option(None, "--device", callback=check_device,
                                help="cpu, cuda, cuda:1 … (default: CUDA when available)."),
    workers: int = typer.Option(1, "--workers", "-j", min=1, help="Parallel worker processes."),
    sequences: str = typer.Option(None, "--sequences", "-s", help="Comma-separated sequence names."),
    max_frames: int = typer.Option(None, "--max-frames", min=2, help="Only the first N frames (quick runs)."),
    option: list[str] = typer.Option(
        None, "--option", help="Tracker or protocol option KEY=VALUE (repeatable), e.g. ways=20 trials=2000 seed=0."
    ),
    absent: str = typer.Option(
        None, "--absent", help="OPE frames without a target: skip (default) or failure (pysot/LaSOT; lasot default)."
    ),
    list_trackers: bool = typer.Option(
        False, "--list", callback=_list_trackers, is_eager=True, help="Print the tracker names and exit."
    ),
) -> None:
    """Evaluate a tracker on a benchmark (finished sequences are not rerun), or a similarity model (--model)."""
    if model is not None:
        _eval_model(model, tracker, dataset, out, option, device)
        return
    if out is None:
        from siamkit.errors import ConfigError

        raise ConfigError("Tracker evaluation needs --out DIR (its results folder, resumable).")
    from siamkit.eval.tracking.report import format_summary
    from siamkit.eval.tracking.runner import EvalJob, run_evaluation

    if tracker is None:
        from siamkit.demo import default_tracker

        tracker, weights, why = default_tracker(weights)
        typer.echo(f"tracker: {tracker} ({why})", err=True)
    job = EvalJob(
        tracker=tracker,
        dataset=dataset,
        out_dir=out,
        protocol=protocol,
        weights=weights,
        device=device,
        options=parse_options(option),
        max_frames=max_frames,
        absent_policy=absent,
    )
    from siamkit.safety import check_weights_file

    check_weights_file(weights)
    names = [s.strip() for s in sequences.split(",") if s.strip()] if sequences else None
    metrics = run_evaluation(job, sequences=names, workers=workers)
    typer.echo(format_summary(metrics))
    typer.echo(f"results and metrics.json in {out}")


def _eval_model(model: str, tracker: str | None, dataset: str, out: str | None, option: list[str] | None,
                device: str | None) -> None:
    """``--model``: score a similarity model; the last printed line is the headline number."""
    from pathlib import Path

    from siamkit.errors import ConfigError
    from siamkit.eval.metric.models import evaluate, parse_dataset

    if tracker is not None:
        raise ConfigError("Pass either --tracker (tracking benchmarks) or --model (similarity models), not both.")
    kind, _ = parse_dataset(dataset)
    folder = Path(out) if out else Path("runs") / "eval" / f"{Path(model).stem.replace(':', '_')}_{kind}"
    from siamkit.safety import check_output_dir

    check_output_dir(folder, "results")  # before the embedding: an unwritable folder fails now
    metrics = evaluate(model, dataset, folder, parse_options(option), device)
    typer.echo(f"metrics.json and {Path(metrics['plot']).name} in {folder}")
    typer.echo(metrics["headline"])
