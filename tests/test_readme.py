"""The README: its tables match the benchmark JSON, and its quick-start commands and Python run."""

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import benchmark_script, shared_path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def code_blocks(after_heading: str) -> list[str]:
    section = README.split(after_heading, 1)[1]
    return re.findall(r"```(?:\w+)?\n(.*?)```", section, flags=re.S)


def test_tables_are_generated_from_the_json_results():
    module = benchmark_script("readme_tables")
    assert module.render(README) == README, "run: python benchmarks/readme_tables.py"


def test_setup_block_has_exactly_the_two_commands():
    assert code_blocks("## Set-up: two commands")[0].split() == ["make", "demo", "make", "test"]
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_quick_start_commands_run():
    shared_path("tracking")
    shared_path("metric", "orl_faces")
    commands = [line for line in code_blocks("## Quick start")[0].splitlines() if line.startswith("siamkit ")]
    assert len(commands) >= 7
    for out in ("crossing.mp4", "crossing.json", "eval", "orl_gallery", "siamfc_onnx"):  # what the commands write
        target = REPO / "runs" / out
        shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
    for command in commands:
        args = shlex.split(command)[1:]
        if args[0] == "serve":  # a server; the page is tested end to end in tests/serve/test_browser.py
            continue
        result = subprocess.run([sys.executable, "-m", "siamkit", *args], cwd=REPO, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    assert (REPO / "runs" / "crossing.mp4").stat().st_size > 0
    assert (REPO / "runs" / "siamfc_onnx" / "search.onnx").exists()


def test_quick_start_python_runs():
    shared_path("tracking", "Crossing")
    snippet = code_blocks("In Python:")[0]
    result = subprocess.run([sys.executable, "-c", snippet], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_every_registered_tracker_is_in_the_readme():
    from siamkit.trackers import available_trackers

    missing = [n for n in available_trackers() if f"`{n}`" not in README and not n.endswith("-sticky")]
    assert not missing
