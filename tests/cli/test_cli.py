"""The command line: help, version, one-line errors, and the README's main job."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import siamkit
from siamkit.cli import main

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "siamkit", *args], capture_output=True, text=True, cwd=REPO, timeout=300
    )


def test_help_lists_every_subcommand():
    result = run_cli("--help")
    assert result.returncode == 0
    for name in ("track", "eval", "train", "verify", "index", "search", "export", "serve", "demo"):
        assert re.search(rf"\b{name}\b", result.stdout), name


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"siamkit {siamkit.__version__}"


def test_siamkit_errors_print_one_line_and_exit_2(capsys, tmp_path, monkeypatch):
    # a SiamkitError (here DataError: the image is missing) → one line on stderr, status 2
    monkeypatch.delenv("SIAMKIT_DEBUG", raising=False)  # an earlier in-process ``--debug`` run sets it
    with pytest.raises(SystemExit) as info:
        main(["verify", str(tmp_path / "a.png"), str(tmp_path / "b.png")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Image not found" in err and "Traceback" not in err


def test_debug_shows_the_traceback(tmp_path):
    result = run_cli("--debug", "verify", str(tmp_path / "a.png"), str(tmp_path / "b.png"))
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_readme_main_job_command_runs(tmp_path):
    """The README's first command is `make demo`, which runs `siamkit demo` (here into a temporary folder)."""
    readme = (REPO / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    makefile = (REPO / "Makefile").read_text()
    assert "siamkit demo" in makefile
    result = run_cli("demo", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    auc = float(re.search(r"AUC\s+([0-9.]+)", result.stdout).group(1))
    assert 0.0 <= auc <= 1.0
    for name in ("out.mp4", "boxes.json", "preview.gif", "success.png", "summary.json"):
        assert (tmp_path / name).stat().st_size > 0, name


def test_self_check():
    result = run_cli("demo", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[ok] geometry" in result.stdout and "FAIL" not in result.stdout


def test_public_api_resolves():
    import siamkit

    for name in siamkit.__all__:
        assert getattr(siamkit, name) is not None
    with pytest.raises(AttributeError):
        siamkit.not_a_thing  # noqa: B018
