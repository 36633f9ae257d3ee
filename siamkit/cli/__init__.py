"""The ``siamkit`` command line: one entry point, one module per sub-command.

Sub-command modules under ``siamkit/cli/`` only parse arguments and call library code.
Errors from :mod:`siamkit.errors`, and file-system errors (``OSError``: disk full, a file where a
folder is expected), are printed as one line (no traceback unless ``--debug``) and the process
exits with status 2.
"""

from __future__ import annotations

import logging
import os
import sys

import typer

import siamkit
from siamkit.errors import SiamkitError

app = typer.Typer(
    name="siamkit",
    help="Siamese networks: track objects, verify pairs, search galleries, train and evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

log = logging.getLogger("siamkit")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"siamkit {siamkit.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks and debug logs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only print warnings and errors."),
) -> None:
    """Siamese networks: track objects, verify pairs, search galleries, train and evaluate."""
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    configure_logging(level)
    if debug:
        os.environ["SIAMKIT_DEBUG"] = "1"


def configure_logging(level: int = logging.INFO) -> None:
    """Route siamkit's log records to stderr as ``siamkit: message`` lines."""
    logger = logging.getLogger("siamkit")
    logger.setLevel(level)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        logger.addHandler(handler)


def _register_commands() -> None:
    # Importing a module registers its command(s) on ``app``.
    from siamkit.cli import commands  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    _register_commands()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("SIAMKIT_DEBUG") == "1"
    try:
        app(args=argv, prog_name="siamkit", standalone_mode=True)
    except SiamkitError as exc:
        if debug:
            raise
        typer.echo(f"siamkit: error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:
        # The file system said no (disk full, not a folder, permission): one line, not a traceback.
        if debug:
            raise
        where = exc.filename2 or exc.filename  # a rename names its target second
        typer.echo(f"siamkit: error: {exc.strerror or exc}{f': {where}' if where else ''}.", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("siamkit: interrupted", err=True)
        sys.exit(130)
