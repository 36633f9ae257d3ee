"""What every benchmark here shares: its command line, where it writes, the machine it ran on.

A run writes ``runs/benchmarks/<file>`` unless ``--publish`` asks for ``benchmarks/results/<file>``
(or ``--out`` names the file); only a published run changes the records the README's tables read.
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
RUNS = REPO / "runs" / "benchmarks"
CLIPS = REPO.parent / "shared" / "data" / "tracking"


def command_line(description: str, threads: int = 2) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark takes: ``--threads``, ``--out``, ``--publish``."""
    parser = argparse.ArgumentParser(description=description.strip().splitlines()[0])
    parser.add_argument("--threads", type=int, default=threads, help="CPU threads (torch and OpenCV)")
    parser.add_argument("--out", type=Path, default=None, help="the JSON file to write (default: see --publish)")
    parser.add_argument("--publish", action="store_true",
                        help="write into benchmarks/results/ (default: runs/benchmarks/)")
    return parser


def output_path(args: argparse.Namespace, file_name: str) -> Path:
    """``--out`` if given, else ``benchmarks/results/<file_name>`` with ``--publish``, else ``runs/benchmarks/``."""
    if getattr(args, "out", None) is not None:
        return Path(args.out)
    return (RESULTS if args.publish else RUNS) / file_name


def use_threads(threads: int) -> None:
    """Run torch and OpenCV on ``threads`` CPU threads."""
    import cv2
    import torch

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)


def load_average() -> float | None:
    """The 1-minute load average now (None where the system keeps none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def machine(threads: int, load_at_start: float | None = None) -> dict[str, Any]:
    """The machine of a run: processor, platform, Python, torch, CPUs, threads, OpenMP's wait policy and the
    load average at the start (when given) and now. The wait policy moves CPU speeds a lot: OpenMP threads that
    spin after each torch operation (``ACTIVE``, the default) speed torch up and slow onnxruntime down in the
    same process; ``OMP_WAIT_POLICY=PASSIVE`` does the reverse."""
    import torch

    record = {
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "threads": threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default (ACTIVE)"),
    }
    if load_at_start is not None:
        record["load_average_1m_at_start"] = load_at_start
    record["load_average_1m_at_end"] = load_average()
    return record


def partial_path(path: Path) -> Path:
    """Where the unfinished results of ``path`` are kept while a run goes on."""
    return path.with_name(path.stem + ".partial.json")


def save_partial(path: Path, record: dict[str, Any], still_running: str) -> None:
    """Keep the finished part of a run beside ``path``, so that an interruption loses nothing."""
    from siamkit.utils.io import write_json

    write_json(partial_path(path), {**record, "partial": still_running})


def save(path: Path, record: dict[str, Any]) -> Path:
    """Write the run's JSON record to ``path`` (replacing its partial file) and say where."""
    from siamkit.utils.io import write_json

    write_json(path, record)
    partial_path(path).unlink(missing_ok=True)
    print(f"wrote {path}", flush=True)
    return path
