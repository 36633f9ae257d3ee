"""``siamkit report``: compare trackers from their saved results (tables and plots)."""

from __future__ import annotations

import typer

from siamkit.cli import app


@app.command("report")
def report_command(
    dirs: list[str] = typer.Argument(..., help="Result folders written by `siamkit eval`."),
    out: str = typer.Option(None, "--out", "-o", help="Write report.md, report.json and PNG/SVG plots here."),
    no_plots: bool = typer.Option(False, "--no-plots", help="Tables only."),
) -> None:
    """Rank trackers by the published criteria (success AUC, AO, EAO, F1) with FPS."""
    from siamkit.eval.tracking.report import make_report
    from siamkit.safety import check_output_dir

    if out is not None:
        check_output_dir(out, "report")

    report = make_report(dirs, out_dir=out, plots=not no_plots)
    typer.echo(report["text"])
    for path in report["files"]:
        typer.echo(f"wrote {path}")
