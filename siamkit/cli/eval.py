"""``siamkit eval``: run a tracker on a benchmark, save results other toolkits read, score them."""

from __future__ import annotations

import typer

from siamkit.cli import app


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
        None, "--tracker", "-t", help="Tracker name (see `siamkit eval --list`; default: the best shipped tracker)."
    ),
    dataset: str = typer.Option(..., "--dataset", "-d", help="KIND:PATH, e.g. otb:../shared/data/tracking."),
    out: str = typer.Option(..., "--out", "-o", help="Folder for this tracker's results (resumable)."),
    protocol: str = typer.Option("ope", "--protocol", "-p", help="ope | lasot | got10k | vot | vot-lt."),
    weights: str = typer.Option(None, "--weights", "-w", help="Weights file or zoo name."),
    device: str = typer.Option(None, "--device", help="cpu, cuda, cuda:1 … (default: CUDA when available)."),
    workers: int = typer.Option(1, "--workers", "-j", min=1, help="Parallel worker processes."),
    sequences: str = typer.Option(None, "--sequences", "-s", help="Comma-separated sequence names."),
    max_frames: int = typer.Option(None, "--max-frames", min=2, help="Only the first N frames (quick runs)."),
    option: list[str] = typer.Option(None, "--option", help="Tracker option KEY=VALUE (repeatable)."),
    absent: str = typer.Option(
        None, "--absent", help="OPE frames without a target: skip (default) or failure (pysot/LaSOT; lasot default)."
    ),
    list_trackers: bool = typer.Option(
        False, "--list", callback=_list_trackers, is_eager=True, help="Print the tracker names and exit."
    ),
) -> None:
    """Evaluate a tracker on a benchmark; finished sequences are not rerun."""
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
