"""Tracking sequences: frames + ground truth, read lazily, and the lazy :class:`Dataset` of them.

A :class:`Sequence` holds the frame paths (or a video file), the ground truth as an N×4
float64 array of 0-based ``(x, y, w, h)`` boxes with NaN rows for frames without a target,
sequence attributes, optional per-frame absent/cover flags and VOT polygons and tags, the index
of the frame the tracker is initialised on and the range of frames that is scored. Frames are
decoded only when asked for. Benchmark readers and ``open_dataset("otb:ROOT")`` live in
:mod:`siamkit.data.benchmarks`.

Ground-truth text files: one box per line, values separated by commas, tabs, spaces or
semicolons (OTB mixes all of these); ``NaN`` marks an unannotated frame; 8 values are a VOT
polygon. Malformed lines raise :class:`~siamkit.errors.DataError` naming file and line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from siamkit.errors import DataError, VideoError
from siamkit.video import IMAGE_SUFFIXES, count_frames, image_files, read_image, video_frames

_SPLIT = re.compile(r"[,\s;]+")


# --------------------------------------------------------------------------- text files
def read_numbers(path: str | Path, widths: tuple[int, ...] = (4,), allow_empty: bool = False) -> np.ndarray:
    """Read a numeric text table (one row a line) whose rows all have one of ``widths`` values.

    Blank lines at the end are ignored; a blank line in the middle, a non-number or a row of
    the wrong width raises :class:`DataError` with the file and 1-based line number.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig", errors="strict")
    except FileNotFoundError:
        raise DataError(f"Missing file {path}.", hint="Check the dataset root and its layout.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"Cannot read {path}: {exc}.") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    rows: list[list[float]] = []
    width = None
    for number, line in enumerate(lines, start=1):
        tokens = [t for t in _SPLIT.split(line.strip()) if t]
        if not tokens:
            raise DataError(f"{path}, line {number}: empty line inside the table.", hint="Remove the blank line.")
        try:
            values = [float(t) for t in tokens]
        except ValueError:
            raise DataError(
                f"{path}, line {number}: {line.strip()!r} is not a list of numbers.",
                hint="Each line must hold numbers separated by commas, tabs or spaces (NaN for no target).",
            ) from None
        if len(values) not in widths or (width is not None and len(values) != width):
            expected = width if width is not None else " or ".join(map(str, widths))
            raise DataError(f"{path}, line {number}: expected {expected} values, got {len(values)}.")
        width = len(values)
        rows.append(values)
    if not rows:
        if allow_empty:
            return np.zeros((0, widths[0]), dtype=np.float64)
        raise DataError(f"{path} is empty.", hint="A ground-truth file needs one line per frame.")
    return np.asarray(rows, dtype=np.float64)


def read_flags(path: str | Path, length: int | None = None) -> np.ndarray:
    """Read per-frame integer flags written one per line or comma-separated on one line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise DataError(f"Cannot read {path}: {exc}.") from None
    tokens = [t for t in _SPLIT.split(text.strip()) if t]
    try:
        flags = np.asarray([int(float(t)) for t in tokens], dtype=np.int64)
    except ValueError:
        raise DataError(f"{path}: flags must be integers (0/1 or 0..8).") from None
    if length is not None and flags.size != length:
        raise DataError(
            f"{path} has {flags.size} flags but the sequence has {length} frames.",
            hint="Each frame needs exactly one flag.",
        )
    return flags


def polygon_to_box(polygons: np.ndarray, mode: str = "minmax") -> np.ndarray:
    """Axis-aligned ``xywh`` boxes of N×(2k) polygons (NaN rows stay NaN).

    ``minmax``: the enclosing box (VOT toolkit, got10k). ``area``: pysot's
    ``get_axis_aligned_bbox`` — centred on the corners' mean, scaled so its area equals the
    area of the rotated rectangle (4-point polygons), plus pysot's +1 on width and height.
    """
    p = np.asarray(polygons, dtype=np.float64)
    xs, ys = p[:, 0::2], p[:, 1::2]
    x1, x2 = xs.min(1), xs.max(1)
    y1, y2 = ys.min(1), ys.max(1)
    if mode == "minmax":
        return np.stack([x1, y1, x2 - x1, y2 - y1], axis=1)
    if mode == "area":
        if p.shape[1] != 8:
            raise DataError("polygon_to_box(mode='area') needs 4-point polygons.")
        cx, cy = xs.mean(1), ys.mean(1)
        side1 = np.hypot(xs[:, 0] - xs[:, 1], ys[:, 0] - ys[:, 1])
        side2 = np.hypot(xs[:, 1] - xs[:, 2], ys[:, 1] - ys[:, 2])
        with np.errstate(invalid="ignore", divide="ignore"):
            s = np.sqrt(side1 * side2 / ((x2 - x1) * (y2 - y1)))
        w = s * (x2 - x1) + 1
        h = s * (y2 - y1) + 1
        return np.stack([cx - w / 2, cy - h / 2, w, h], axis=1)
    raise DataError(f"Unknown polygon conversion {mode!r}.", hint="Use 'minmax' or 'area'.")


# --------------------------------------------------------------------------- sequence
@dataclass
class Sequence:
    """One annotated video. Frames are decoded on demand by :meth:`frame` / :meth:`frames`.

    ``gt`` is N×4 float64 ``(x, y, w, h)`` 0-based, NaN rows where the target is unannotated
    or absent. ``absent`` (bool) and ``cover`` (0–8, GOT-10k) are per-frame flags when the
    benchmark provides them; ``polygons`` the VOT polygons; ``tags`` per-frame VOT tags.
    The tracker starts on ``init_frame``; frames ``eval_range = (start, stop)`` are scored.
    """

    name: str
    gt: np.ndarray
    frame_paths: list[Path] | None = None
    video: Path | None = None
    attributes: tuple[str, ...] = ()
    absent: np.ndarray | None = None
    cover: np.ndarray | None = None
    polygons: np.ndarray | None = None
    tags: dict[str, np.ndarray] = field(default_factory=dict)
    init_frame: int = 0
    eval_range: tuple[int, int] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.gt = np.asarray(self.gt, dtype=np.float64).reshape(-1, 4)
        if self.frame_paths is None and self.video is None:
            raise DataError(f"Sequence {self.name!r} has neither frame paths nor a video.")
        if self.frame_paths is not None and len(self.frame_paths) != len(self.gt):
            raise DataError(
                f"Sequence {self.name!r}: {len(self.frame_paths)} frames but {len(self.gt)} ground-truth rows.",
                hint="Each frame needs one ground-truth line (NaN,NaN,NaN,NaN where there is no target).",
            )
        if self.eval_range is None:
            self.eval_range = (self.init_frame, len(self.gt))
        if not 0 <= self.init_frame < len(self.gt):
            raise DataError(f"Sequence {self.name!r}: init frame {self.init_frame} outside 0..{len(self.gt) - 1}.")

    def __len__(self) -> int:
        return len(self.gt)

    def __repr__(self) -> str:
        return f"Sequence({self.name!r}, frames={len(self)}, attributes={list(self.attributes)})"

    @property
    def init_box(self) -> np.ndarray:
        """The ground-truth box of the initialisation frame."""
        box = self.gt[self.init_frame]
        if not np.all(np.isfinite(box)) or box[2] <= 0 or box[3] <= 0:
            raise DataError(f"Sequence {self.name!r}: no valid ground-truth box on its init frame {self.init_frame}.")
        return box.copy()

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as H×W×3 uint8 BGR."""
        if not 0 <= index < len(self):
            raise DataError(f"Sequence {self.name!r} has no frame {index} (0..{len(self) - 1}).")
        if self.frame_paths is not None:
            return read_image(self.frame_paths[index])
        for image in self.frames(index, index + 1):
            return image
        raise VideoError(f"{self.video}: cannot read frame {index}.")

    def frames(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Frames ``start .. stop-1`` in order (video files are decoded sequentially)."""
        stop = len(self) if stop is None else min(stop, len(self))
        if self.frame_paths is not None:
            for i in range(start, stop):
                yield read_image(self.frame_paths[i])
            return
        yield from video_frames(self.video, start, stop)

    def image_size(self) -> tuple[int, int]:
        """(width, height) of the frames (decodes the first frame once)."""
        if "image_size" not in self.meta:
            h, w = self.frame(0).shape[:2]
            self.meta["image_size"] = (w, h)
        return tuple(self.meta["image_size"])

    def visible(self) -> np.ndarray:
        """Per-frame bool: annotated with a positive-size box and not flagged absent."""
        ok = np.isfinite(self.gt).all(1) & (self.gt[:, 2] > 0) & (self.gt[:, 3] > 0)
        if self.absent is not None:
            ok &= ~np.asarray(self.absent, dtype=bool)
        return ok


def count_video_frames(path: str | Path) -> int:
    """Number of decodable frames (counted by grabbing, since container counts can be wrong)."""
    n = count_frames(path)
    if n == 0:
        raise VideoError(f"Video {path} has no decodable frames.", hint="Check the path and that OpenCV can decode it.")
    return n


def single_box_sequence(source: str | Path, box: Any, name: str | None = None) -> Sequence:
    """A plain video file or image folder with one initial ``(x, y, w, h)`` box on frame 0."""
    from siamkit.geometry import check_box

    source = Path(source)
    init = check_box(box, name="initial box")
    if source.is_dir():
        paths = image_files(source)
        if not paths:
            raise DataError(f"No images in {source}.", hint=f"Expected files ending in {', '.join(IMAGE_SUFFIXES)}.")
        n, video = len(paths), None
    elif source.is_file():
        paths, video, n = None, source, count_video_frames(source)
    else:
        raise DataError(f"{source} is neither an image folder nor a video file.")
    gt = np.full((n, 4), np.nan)
    gt[0] = init
    return Sequence(name or source.stem, gt, frame_paths=paths, video=video, meta={"source": str(source)})


# --------------------------------------------------------------------------- datasets
class Dataset:
    """A named, ordered set of sequences built lazily: ``dataset["Biker"]`` reads only Biker."""

    def __init__(self, name: str, names: list[str], load: Callable[[str], Sequence], root: Path | None = None):
        self.name = name
        self.names = list(names)
        self.root = root
        self._load = load
        self._cache: dict[str, Sequence] = {}

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[Sequence]:
        for name in self.names:
            yield self[name]

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __getitem__(self, key: int | str) -> Sequence:
        name = self.names[key] if isinstance(key, int) else key
        if name not in self.names:
            raise DataError(f"Dataset {self.name!r} has no sequence {name!r}.", hint=_listing(self.names))
        if name not in self._cache:
            self._cache[name] = self._load(name)
        return self._cache[name]

    def select(self, names: list[str]) -> Dataset:
        """A sub-dataset with ``names`` (in that order); unknown names raise DataError."""
        missing = [n for n in names if n not in self.names]
        if missing:
            raise DataError(
                f"Dataset {self.name!r} has no sequence(s) {', '.join(missing)}.", hint=_listing(self.names)
            )
        sub = Dataset(self.name, names, self._load, self.root)
        sub._cache = self._cache
        return sub

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, {len(self)} sequences)"


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:20]) + (" …" if len(names) > 20 else "")
    return f"Available: {shown}."


def __getattr__(name: str) -> Any:
    # ``open_dataset`` and ``parse_spec`` moved to siamkit.data.benchmarks (which reads the
    # benchmarks these build on); older imports from this module still find them there.
    if name in ("open_dataset", "parse_spec"):
        from siamkit.data import benchmarks

        return getattr(benchmarks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
