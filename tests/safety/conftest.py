"""Shared by the safety tests: run the ``siamkit`` command line in-process, as a user would.

``tests/safety`` is a package, so this conftest is ``safety.conftest`` and does not shadow
``tests/conftest.py`` for the modules that ``from conftest import shared_path``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from siamkit.cli import main

CliResult = tuple[int, str, str]


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> CliResult:
    """``siamkit ARGS`` in this process: (exit code, stdout, stderr)."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """``cli("track", path, "--box", …)`` → (exit code, stdout, stderr)."""
    # ``--debug`` sets SIAMKIT_DEBUG=1 for the whole process; pinning it here undoes that after the test
    # (delenv of an absent variable would record nothing to undo)
    monkeypatch.setenv("SIAMKIT_DEBUG", "0")
    return lambda *args: run_cli(capsys, *args)


class CodeOnUnpickle:
    """Unpickling this runs a shell command that creates ``marker``: what a crafted checkpoint does."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def payload(tmp_path):
    """(object whose unpickling runs code, the file that proves it ran)."""
    marker = tmp_path / "pwned"
    return CodeOnUnpickle(marker), marker
