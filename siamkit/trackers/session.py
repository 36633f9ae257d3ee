"""Track one or more targets through a video source, writing the annotated video and the boxes.

This is the engine behind ``siamkit track``, ``siamkit demo`` and the web page: it reads
frames, advances the trackers, draws, writes, reports progress, and on interruption keeps
what was done so far (a playable video and a valid boxes file) before re-raising.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from siamkit.errors import BoxError
from siamkit.geometry import check_box
from siamkit.safety import check_outputs
from siamkit.trackers import create_tracker
from siamkit.utils.progress import progress
from siamkit.video import ArraySource, FrameSource, VideoSink, draw_tracks, write_boxes


@dataclass
class TrackRun:
    """The outcome of :func:`track_source`."""

    boxes: np.ndarray  # frames × targets × 4 (xywh)
    scores: np.ndarray  # frames × targets
    seconds_per_frame: list[float] = field(default_factory=list)
    interrupted: bool = False

    @property
    def fps(self) -> float:
        """Tracking speed (frames per second, excluding decoding and the first frame)."""
        times = self.seconds_per_frame[1:] or self.seconds_per_frame
        return float(len(times) / sum(times)) if times and sum(times) > 0 else float("nan")


def track_source(
    source: str | int | Path | FrameSource | ArraySource,
    boxes: Sequence[Sequence[float]],
    tracker: str = "siamfc",
    weights: str | None = None,
    device: str | None = None,
    out_video: str | Path | None = None,
    save: str | Path | None = None,
    on_frame: Callable[[int, int | None], None] | None = None,
    max_frames: int | None = None,
    show_progress: bool | None = None,
    trackers: Sequence[Any] | None = None,
    options: dict[str, Any] | None = None,
    save_every_s: float = 1.0,
) -> TrackRun:
    """Track ``boxes`` (xywh in the first frame) through ``source``.

    Several targets of a Siamese tracker advance together through the batched engine (one
    forward pass per frame); other trackers (the OpenCV peers) get one instance per target.
    ``trackers`` may pass pre-built instances, one per target; ``options`` go to
    :func:`~siamkit.trackers.create_tracker` (e.g. ``preset``). ``on_frame(done, total)`` is
    called after every frame (for progress reporting). The boxes file is rewritten (atomically)
    at least every ``save_every_s`` seconds while tracking, so a crash keeps the boxes so far.
    """
    # Choke point for every caller (CLI track, demo, web jobs, Python): no output over the input.
    check_outputs({"video": out_video, "boxes": save}, [source] if isinstance(source, (str, Path)) else [])
    frames = source if isinstance(source, (FrameSource, ArraySource)) else FrameSource(source)
    info = frames.info
    if not boxes:
        raise BoxError("No initial box given.", hint="Pass at least one --box x,y,w,h.")
    init_boxes = [check_box(b, image_size=(info.width, info.height), name=f"box #{i + 1}") for i, b in enumerate(boxes)]
    if trackers is None:
        engine = _engine(tracker, weights, device, len(init_boxes), options or {})
    else:
        engine = _Separate(list(trackers))
    total = info.frames if max_frames is None else min(max_frames, info.frames or max_frames)
    sink = VideoSink(out_video, info.fps, (info.width, info.height)) if out_video else None
    all_boxes: list[np.ndarray] = []
    all_scores: list[np.ndarray] = []
    run = TrackRun(boxes=np.zeros((0, len(init_boxes), 4)), scores=np.zeros((0, len(init_boxes))))
    bar = progress(total=total, desc=f"tracking ({tracker})", unit="frame", enable=show_progress)
    failed = False
    last_save = time.monotonic()
    try:
        for index, frame in enumerate(frames):
            if max_frames is not None and index >= max_frames:
                break
            start = time.perf_counter()
            if index == 0:
                engine.init(frame, init_boxes)
                results = None
                frame_boxes = np.stack(init_boxes)
                frame_scores = np.ones(len(init_boxes))
            else:
                results = engine.track(frame)
                frame_boxes = np.stack([np.asarray(r.box, dtype=np.float64) for r in results])
                frame_scores = np.array([float(r.score) for r in results])
            run.seconds_per_frame.append(time.perf_counter() - start)
            all_boxes.append(frame_boxes)
            all_scores.append(frame_scores)
            if sink is not None:
                masks = [r.mask for r in results] if results else None
                polygons = [r.polygon for r in results] if results else None
                label = f"{tracker}  frame {index + 1}"
                sink.write(draw_tracks(frame, frame_boxes, frame_scores, masks, polygons, label=label))
            if save is not None and time.monotonic() - last_save >= save_every_s:
                write_boxes(save, np.stack(all_boxes), np.stack(all_scores))  # incremental: a crash keeps these
                last_save = time.monotonic()
            bar.update(1)
            if run.seconds_per_frame[1:]:
                bar.set_postfix(fps=f"{run.fps:.1f}", refresh=False)
            if on_frame is not None:
                on_frame(index + 1, total)
    except KeyboardInterrupt:
        run.interrupted = True
        raise
    except BaseException:
        failed = True
        raise
    finally:
        bar.close()
        frames.close()
        if all_boxes:
            run.boxes = np.stack(all_boxes)
            run.scores = np.stack(all_scores)
        try:
            if save is not None and all_boxes:
                write_boxes(save, run.boxes, run.scores)
        except BaseException:  # e.g. a full disk: the video below must still be dropped, not left half-written
            failed = True
            raise
        finally:
            if sink is not None and failed:
                sink.abort()  # a failure drops the unfinished video; an earlier file of that name stays
            elif sink is not None:
                sink.close()  # also on Ctrl-C; counts the frames in the file, VideoError when some are missing
    return run


class _Separate:
    """One tracker instance per target."""

    def __init__(self, trackers: list[Any]):
        self.trackers = trackers

    def init(self, frame: np.ndarray, boxes: list[np.ndarray]) -> None:
        if len(boxes) != len(self.trackers):
            raise BoxError(f"{len(boxes)} boxes for {len(self.trackers)} trackers.")
        for t, box in zip(self.trackers, boxes, strict=True):
            t.init(frame, box)

    def track(self, frame: np.ndarray) -> list[Any]:
        return [t.track(frame) for t in self.trackers]


class _Batched:
    """All targets through one :class:`~siamkit.trackers.engine.BatchedTracker`."""

    def __init__(self, tracker: Any):
        from siamkit.trackers.engine import BatchedTracker

        self.batched = BatchedTracker(tracker)

    def init(self, frame: np.ndarray, boxes: list[np.ndarray]) -> None:
        self.batched.init(frame, np.stack(boxes))

    def track(self, frame: np.ndarray) -> list[Any]:
        return self.batched.track(frame)


def _engine(name: str, weights: str | None, device: str | None, targets: int, options: dict[str, Any]):
    from siamkit.trackers.engine import SiameseTracker

    def make() -> Any:
        return create_tracker(name, weights=weights, device=device, **options)

    first = make()
    if targets > 1 and isinstance(first, SiameseTracker):
        return _Batched(first)
    return _Separate([first] + [make() for _ in range(targets - 1)])
