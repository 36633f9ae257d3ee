"""Sub-commands announced in ``--help`` that this version does not provide yet.

Each stub says so plainly and exits non-zero; it never pretends to have done the work.
"""

from __future__ import annotations

import typer

from siamkit.cli import app
from siamkit.errors import NotAvailableError

PLANNED = {
    "track": "Track objects in a video, a folder of frames or a camera.",
    "eval": "Evaluate a tracker or an embedding model on a benchmark.",
    "report": "Compare saved tracking results: tables and success/precision plots.",
    "train": "Train a model from a YAML config.",
    "verify": "Decide whether two images show the same identity.",
    "index": "Build a gallery index from a folder of images.",
    "search": "Search a gallery index with a query image.",
    "export": "Export a model to ONNX / TorchScript.",
    "serve": "Start the local web page for tracking in the browser.",
}

_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": ["-h", "--help"]}


def _make_stub(name: str, summary: str):
    def stub(ctx: typer.Context) -> None:
        raise NotAvailableError(
            f"`siamkit {name}` is not available yet in siamkit {_version()}.",
            hint="It is planned; see the README for what this version provides.",
        )

    stub.__doc__ = f"{summary} [not available yet]"
    return stub


def _version() -> str:
    import siamkit

    return siamkit.__version__


def register_stub(name: str) -> None:
    app.command(name, context_settings=_EXTRA, help=f"{PLANNED[name]} [not available yet]")(
        _make_stub(name, PLANNED[name])
    )


def _registered() -> set[str]:
    commands = {c.name or c.callback.__name__ for c in app.registered_commands}
    groups = {g.name for g in app.registered_groups if g.name}
    return commands | groups


def register_missing() -> None:
    """Add a placeholder for every planned command that no feature module registered."""
    for name in PLANNED:
        if name not in _registered():
            register_stub(name)
