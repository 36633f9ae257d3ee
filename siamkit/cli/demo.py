"""``siamkit demo``: the built-in default job."""

from __future__ import annotations

import typer

from siamkit.cli import app


@app.command("demo")
def demo() -> None:
    """Run the built-in demo (for now: environment report and a self-check)."""
    from siamkit.selfcheck import environment, run_checks

    typer.echo("siamkit environment")
    for key, value in environment().items():
        typer.echo(f"  {key:<12} {value}")
    typer.echo("self-check")
    checks = run_checks()
    for c in checks:
        typer.echo(f"  [{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}")
    if not all(c.ok for c in checks):
        raise typer.Exit(1)
