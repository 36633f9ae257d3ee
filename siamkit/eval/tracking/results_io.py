"""Result files in the layouts other toolkits read, and their readers.

- OPE (OTB/UAV/LaSOT, pysot ``results/<dataset>/<tracker>/<seq>.txt``): one ``x,y,w,h`` line
  per frame in the benchmark's own pixel convention (1-based for OTB, UAV123, LaSOT), plus
  ``<seq>_time.txt`` (seconds per frame) and ``<seq>_score.txt`` (confidence per frame).
- GOT-10k (got10k toolkit): ``<seq>/<seq>_001.txt`` boxes and ``<seq>/<seq>_time.txt``.
- VOT supervised (VOT toolkit / pysot): ``baseline/<seq>/<seq>_001.txt`` with ``1`` (init),
  ``2`` (failure), ``0`` (skipped) or ``x,y,w,h`` per line, plus ``<seq>_time.txt``.
- VOT long-term (pysot): ``longterm/<seq>/<seq>_001.txt`` and ``<seq>_001_confidence.value``.

Boxes passed in and returned are siamkit's 0-based ``(x, y, w, h)``; ``one_based=True``
shifts x and y by +1 on writing and −1 on reading. Every file is written atomically, so a
result file that exists is complete (the runner's resume relies on that).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from siamkit.data.sequences import read_numbers
from siamkit.errors import DataError
from siamkit.utils.io import atomic_write


def _write_lines(path: Path, lines: list[str]) -> None:
    atomic_write(path, lambda p: p.write_text("\n".join(lines) + "\n"))


def _box_lines(boxes: np.ndarray, one_based: bool) -> list[str]:
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    if one_based:
        b[:, :2] += 1.0
    return [",".join(_num(v) for v in row) for row in b]


def _num(value: float) -> str:
    if not np.isfinite(value):
        return "nan"
    return f"{value:.4f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def _read_boxes(path: Path, one_based: bool) -> np.ndarray:
    boxes = read_numbers(path, widths=(4,))
    if one_based:
        boxes[:, :2] -= 1.0
    return boxes


def _values(path: Path) -> np.ndarray:
    return read_numbers(path, widths=(1,))[:, 0]


# --------------------------------------------------------------------------- OPE / pysot
def ope_paths(out_dir: str | Path, seq: str) -> dict[str, Path]:
    out = Path(out_dir)
    return {"boxes": out / f"{seq}.txt", "time": out / f"{seq}_time.txt", "score": out / f"{seq}_score.txt"}


def write_ope(out_dir, seq: str, boxes, times, scores=None, one_based: bool = False) -> Path:
    """Write an OPE result; the box file goes last so its presence marks a finished sequence."""
    paths = ope_paths(out_dir, seq)
    _write_lines(paths["time"], [f"{t:.8f}" for t in np.asarray(times, dtype=np.float64)])
    if scores is not None:
        _write_lines(paths["score"], [f"{s:.6f}" for s in np.asarray(scores, dtype=np.float64)])
    _write_lines(paths["boxes"], _box_lines(boxes, one_based))
    return paths["boxes"]


def read_ope(out_dir, seq: str, one_based: bool = False) -> dict[str, np.ndarray | None]:
    """Read an OPE result back: ``boxes`` (0-based), ``times`` and ``scores`` (None when absent)."""
    paths = ope_paths(out_dir, seq)
    if not paths["boxes"].is_file():
        raise DataError(f"No result for sequence {seq!r}: {paths['boxes']} is missing.", hint="Run the evaluation.")
    return {
        "boxes": _read_boxes(paths["boxes"], one_based),
        "times": _values(paths["time"]) if paths["time"].is_file() else None,
        "scores": _values(paths["score"]) if paths["score"].is_file() else None,
    }


# --------------------------------------------------------------------------- GOT-10k
def got10k_paths(out_dir, seq: str, run: int = 1) -> dict[str, Path]:
    folder = Path(out_dir) / seq
    return {"boxes": folder / f"{seq}_{run:03d}.txt", "time": folder / f"{seq}_time.txt"}


def write_got10k(out_dir, seq: str, boxes, times, run: int = 1) -> Path:
    paths = got10k_paths(out_dir, seq, run)
    _write_lines(paths["time"], [f"{t:.8f}" for t in np.asarray(times, dtype=np.float64)])
    _write_lines(paths["boxes"], _box_lines(boxes, False))
    return paths["boxes"]


def read_got10k(out_dir, seq: str, run: int = 1) -> dict[str, np.ndarray | None]:
    paths = got10k_paths(out_dir, seq, run)
    if not paths["boxes"].is_file():
        raise DataError(f"No GOT-10k result for {seq!r}: {paths['boxes']} is missing.", hint="Run the evaluation.")
    return {
        "boxes": _read_boxes(paths["boxes"], False),
        "times": _values(paths["time"]) if paths["time"].is_file() else None,
    }


# --------------------------------------------------------------------------- VOT
def vot_paths(out_dir, seq: str, run: int = 1, experiment: str = "baseline") -> dict[str, Path]:
    folder = Path(out_dir) / experiment / seq
    return {
        "boxes": folder / f"{seq}_{run:03d}.txt",
        "time": folder / f"{seq}_time.txt",
        "score": folder / f"{seq}_{run:03d}_confidence.value",
    }


def write_vot(out_dir, seq: str, trajectory, times, run: int = 1) -> Path:
    """Write a supervised VOT trajectory (entries ``[1]``, ``[2]``, ``[0]`` or 0-based boxes)."""
    paths = vot_paths(out_dir, seq, run)
    lines = [str(int(e[0])) if len(e) == 1 else ",".join(_num(v) for v in e) for e in trajectory]
    _write_lines(paths["time"], [f"{t:.8f}" for t in np.asarray(times, dtype=np.float64)])
    _write_lines(paths["boxes"], lines)
    return paths["boxes"]


def read_vot(out_dir, seq: str, run: int = 1) -> list[list[float]]:
    """Read a supervised VOT trajectory; malformed lines raise DataError with file and line."""
    path = vot_paths(out_dir, seq, run)["boxes"]
    if not path.is_file():
        raise DataError(f"No VOT result for {seq!r}: {path} is missing.", hint="Run the evaluation.")
    traj = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        parts = [p for p in line.replace("\t", ",").replace(" ", ",").split(",") if p]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise DataError(f"{path}, line {number}: {line!r} is not a VOT result line.") from None
        if len(values) not in (1, 4, 8):
            raise DataError(f"{path}, line {number}: expected 1, 4 or 8 values, got {len(values)}.")
        traj.append(values)
    return traj


def write_longterm(out_dir, seq: str, boxes, scores, times, run: int = 1) -> Path:
    paths = vot_paths(out_dir, seq, run, experiment="longterm")
    _write_lines(paths["time"], [f"{t:.8f}" for t in np.asarray(times, dtype=np.float64)])
    _write_lines(paths["score"], [f"{s:.6f}" for s in np.asarray(scores, dtype=np.float64)])
    _write_lines(paths["boxes"], _box_lines(boxes, False))
    return paths["boxes"]


def read_longterm(out_dir, seq: str, run: int = 1) -> dict[str, np.ndarray | None]:
    paths = vot_paths(out_dir, seq, run, experiment="longterm")
    if not paths["boxes"].is_file():
        raise DataError(f"No long-term result for {seq!r}: {paths['boxes']} is missing.", hint="Run the evaluation.")
    return {
        "boxes": _read_boxes(paths["boxes"], False),
        "scores": _values(paths["score"]),
        "times": _values(paths["time"]) if paths["time"].is_file() else None,
    }
