"""Reading frames from videos, folders and cameras; writing annotated videos and box files.

Writers are safe to interrupt: the video is finalised by ``close()`` (also on Ctrl-C through
the context manager), and box files are rewritten atomically, so whatever was written so far
stays playable and valid. A video is written under a temporary name, its frames are counted
after writing, and only a complete file replaces the target: a failed write raises
:class:`~siamkit.errors.VideoError` and leaves any earlier file of that name untouched.
Image frames are read through :func:`read_image`, which refuses truncated JPEG/PNG files
(OpenCV would decode them into grey garbage with only a warning).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from siamkit.errors import VideoError
from siamkit.utils.io import atomic_write

#: Image files siamkit reads (frames, identity folders, galleries): the one list.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
# Codecs that OpenCV's bundled FFmpeg can write without an H.264 encoder.
CODECS = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v", ".webm": "VP80"}


JPEG_END = b"\xff\xd9"
PNG_END = b"IEND\xaeB`\x82"


def read_image(path: str | Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """Decode an image file; VideoError when it is unreadable or truncated (a cut JPEG or PNG)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise VideoError(f"Cannot read the image {path} ({exc.strerror or exc}).") from None
    tail = data[-1024:].rstrip(b"\x00\r\n ")
    if (data[:2] == b"\xff\xd8" and JPEG_END not in tail) or (data[:4] == b"\x89PNG" and not tail.endswith(PNG_END)):
        raise VideoError(f"The image {path} is truncated.", hint="Copy or extract it again.")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags) if data else None
    if image is None:
        raise VideoError(f"Cannot read the image {path}.", hint="The file is corrupt or not an image.")
    return image


def image_files(folder: str | Path) -> list[Path]:
    """Image files of a folder sorted by the number in their name (``1.jpg`` < ``10.jpg``); hidden files skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise VideoError(f"Frame folder {folder} does not exist.", hint="Check the dataset root and its layout.")
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]

    def key(p: Path) -> tuple[int, str]:
        digits = re.findall(r"\d+", p.stem)
        return (int(digits[-1]) if digits else -1, p.name)

    return sorted(files, key=key)


def open_video(path: str | Path) -> cv2.VideoCapture:
    """An opened ``cv2.VideoCapture`` of a video file; VideoError when OpenCV cannot open it."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoError(f"Cannot read the video {path}.", hint="Is it a video file OpenCV can decode?")
    return capture


def video_frames(path: str | Path, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
    """Frames ``start .. stop-1`` of a video file, decoded in order (VideoError for a frame that fails)."""
    capture = open_video(path)
    try:
        index = 0
        while stop is None or index < stop:
            ok, image = capture.read()
            if not ok:
                if stop is None:
                    return
                raise VideoError(f"{path}: could not decode frame {index}.")
            if index >= start:
                yield image
            index += 1
    finally:
        capture.release()


@dataclass(frozen=True)
class SourceInfo:
    width: int
    height: int
    fps: float
    frames: int | None  # None when unknown (cameras, some streams)


class FrameSource:
    """Frames of a video file, a folder of images (sorted by name) or a camera index.

    Iterating yields H×W×3 uint8 BGR frames. ``info`` gives size, frame rate and length.
    """

    def __init__(self, source: str | int | Path):
        self.source = source
        self._files: list[Path] | None = None
        self._capture: cv2.VideoCapture | None = None
        text = str(source)
        if isinstance(source, int) or text.isdigit():
            self._capture = cv2.VideoCapture(int(text))
            if not self._capture.isOpened():
                raise VideoError(f"Cannot open camera {text}.", hint="Check the camera index and permissions.")
        else:
            path = Path(text)
            if path.is_dir():
                self._files = image_files(path)
                if not self._files:
                    raise VideoError(
                        f"The folder {path} holds no images.",
                        hint=f"Put frames named in order with one of: {', '.join(IMAGE_SUFFIXES)}.",
                    )
            elif path.is_file():
                self._capture = open_video(path)
            else:
                raise VideoError(f"The video source {path} does not exist.", hint="Give a video file or a folder.")
        self.info = self._probe()

    def _probe(self) -> SourceInfo:
        first = self.first_frame()
        height, width = first.shape[:2]
        if self._files is not None:
            return SourceInfo(width, height, 30.0, len(self._files))
        assert self._capture is not None
        fps = self._capture.get(cv2.CAP_PROP_FPS) or 0.0
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        return SourceInfo(width, height, fps if 1 <= fps <= 240 else 30.0, count if count > 0 else None)

    def first_frame(self) -> np.ndarray:
        for frame in self:
            return frame
        raise VideoError(f"The video source {self.source} has no readable frame.")

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._files is not None:
            for path in self._files:
                yield read_image(path)
            return
        assert self._capture is not None
        if not str(self.source).isdigit():
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
        while True:
            ok, frame = self._capture.read()
            if not ok:
                return
            yield frame

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()


class ArraySource:
    """In-memory frames with the same interface as :class:`FrameSource`."""

    def __init__(self, frames: Sequence[np.ndarray], fps: float = 30.0, name: str = "frames"):
        if not frames:
            raise VideoError("No frames given.")
        self.source = name
        self._frames = frames
        height, width = frames[0].shape[:2]
        self.info = SourceInfo(width, height, fps, len(frames))

    def first_frame(self) -> np.ndarray:
        return self._frames[0]

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self._frames)

    def close(self) -> None:
        pass


class VideoSink:
    """Writes frames to a video file with a codec that works without H.264.

    Frames go to a temporary file beside ``path``; :meth:`close` counts the frames the file
    really holds and renames it onto ``path`` only when none is missing (VideoError otherwise,
    and ``path`` keeps its earlier content). :meth:`abort` drops the temporary file.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in CODECS:
            raise VideoError(
                f"Cannot write {self.path.name}: unsupported video type {suffix or '(none)'}.",
                hint=f"Use one of {', '.join(CODECS)}.",
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise VideoError(f"Cannot create the folder of {self.path} ({exc.strerror or exc}).") from None
        self._tmp = self.path.with_name(f".{self.path.stem}.{os.getpid()}.partial{self.path.suffix}")
        self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*CODECS[suffix]), fps, size)
        if not self._writer.isOpened():
            self._tmp.unlink(missing_ok=True)
            raise VideoError(f"OpenCV could not open a video writer for {self.path}.")
        self.frames = 0
        self._closed = False

    def write(self, frame: np.ndarray) -> None:
        self._writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        """Finish the file, check its frame count, and move it onto ``path`` (VideoError on a short file)."""
        if self._closed:
            return
        self._closed = True
        self._writer.release()
        if self.frames == 0:
            self._tmp.unlink(missing_ok=True)
            return
        written = count_frames(self._tmp)  # counted, not read from the header
        if written != self.frames:
            self._tmp.unlink(missing_ok=True)
            raise VideoError(
                f"Writing {self.path} failed: {written} of {self.frames} frames reached the file.",
                hint="Check the free disk space, and that every frame has the size the video was opened with.",
            )
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Drop what was written (the target file, if any, is left as it was)."""
        if not self._closed:
            self._closed = True
            self._writer.release()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoSink:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None or issubclass(exc_type, KeyboardInterrupt):
            self.close()  # Ctrl-C keeps the frames written so far
        else:
            self.abort()


def count_frames(path: str | Path) -> int:
    """Frames a video file really holds, counted one by one.

    Never the container's own count: a file cut short by a full disk can keep a complete header
    (an AVI's frame count is written at its start) while most frames are missing.
    """
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            return 0
        count = 0
        while capture.grab():
            count += 1
        return count
    finally:
        capture.release()


PALETTE = [(0, 255, 0), (0, 140, 255), (255, 80, 80), (255, 0, 255), (0, 255, 255), (255, 255, 0)]


def draw_tracks(
    frame: np.ndarray,
    boxes: Sequence[Sequence[float]],
    scores: Sequence[float] | None = None,
    masks: Sequence[np.ndarray | None] | None = None,
    polygons: Sequence[np.ndarray | None] | None = None,
    label: str | None = None,
) -> np.ndarray:
    """Draw boxes (xywh), scores, optional masks and rotated polygons on a copy of ``frame``."""
    out = frame.copy()
    for i, box in enumerate(boxes):
        colour = PALETTE[i % len(PALETTE)]
        if masks is not None and masks[i] is not None:
            mask = masks[i] > 0.5
            out[mask] = (0.55 * out[mask] + 0.45 * np.array(colour)).astype(np.uint8)
        if polygons is not None and polygons[i] is not None:
            cv2.polylines(out, [np.round(polygons[i]).astype(np.int32)], True, colour, 2)
        x, y, w, h = (float(v) for v in box)
        if np.isfinite([x, y, w, h]).all():
            cv2.rectangle(out, (round(x), round(y)), (round(x + w), round(y + h)), colour, 2)
            if scores is not None:
                text = f"#{i + 1} {scores[i]:.2f}"
                cv2.putText(out, text, (round(x), max(12, round(y) - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1,
                            cv2.LINE_AA)
    if label:
        cv2.putText(out, label, (8, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def write_boxes(path: str | Path, boxes: np.ndarray, scores: np.ndarray | None = None) -> Path:
    """Write per-frame boxes (frames × targets × 4, xywh) as JSON or CSV, atomically.

    JSON: ``{"format": "xywh", "targets": T, "frames": [[{"box": [...], "score": s}, ...], ...]}``.
    CSV: one row per frame and target: ``frame,target,x,y,w,h,score``.
    """
    path = Path(path)
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim == 2:
        boxes = boxes[:, None, :]
    scores = np.full(boxes.shape[:2], np.nan) if scores is None else np.asarray(scores, np.float64).reshape(
        boxes.shape[:2]
    )
    suffix = path.suffix.lower()
    if suffix == ".json":
        frames = [
            [{"box": [round(float(v), 3) for v in boxes[f, t]], "score": _num(scores[f, t])}
             for t in range(boxes.shape[1])]
            for f in range(boxes.shape[0])
        ]
        text = json.dumps({"format": "xywh", "targets": int(boxes.shape[1]), "frames": frames})
    elif suffix == ".csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["frame", "target", "x", "y", "w", "h", "score"])
        for f in range(boxes.shape[0]):
            for t in range(boxes.shape[1]):
                writer.writerow([f, t, *(f"{v:.3f}" for v in boxes[f, t]), _num(scores[f, t])])
        text = buffer.getvalue()
    else:
        raise VideoError(f"Cannot save boxes to {path.name}: use a .json or .csv file name.")
    return atomic_write(path, lambda p: p.write_text(text))


def read_boxes(path: str | Path) -> np.ndarray:
    """Read boxes written by :func:`write_boxes` back as frames × targets × 4."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        data = json.loads(path.read_text())
        return np.array([[t["box"] for t in frame] for frame in data["frames"]], dtype=np.float64).reshape(
            len(data["frames"]), data["targets"], 4
        )
    rows = list(csv.DictReader(path.read_text().splitlines()))
    frames = max(int(r["frame"]) for r in rows) + 1
    targets = max(int(r["target"]) for r in rows) + 1
    out = np.full((frames, targets, 4), np.nan)
    for r in rows:
        out[int(r["frame"]), int(r["target"])] = [float(r[k]) for k in "xywh"]
    return out


def _num(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 4)
