"""Uploads and tracking jobs of the web page: random names, content checks, bounded concurrency, clean-up.

Nothing the client sends is ever used as a path: uploads and results are stored under
server-generated ids in the app's own work folder, and ids are validated before any lookup.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2

from siamkit.errors import SiamkitError, VideoError

ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")


def sniff_video_suffix(head: bytes) -> str | None:
    """Container type from the first bytes of a file (MP4/MOV, AVI, Matroska/WebM), else None."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return ".mp4"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return ".avi"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return ".mkv"
    return None


def valid_id(value: str) -> bool:
    return bool(ID_PATTERN.match(value))


@dataclass
class Job:
    id: str
    video_id: str
    tracker: str
    box: list[float]
    status: str = "queued"  # queued → running → done | failed
    done: int = 0
    total: int | None = None
    error: str | None = None
    fps: float | None = None
    created: float = field(default_factory=time.time)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "done": self.done,
            "total": self.total,
            "error": self.error,
            "fps": self.fps,
            "tracker": self.tracker,
        }


class JobStore:
    """Holds uploads and jobs in ``work_dir``; runs at most ``max_jobs`` trackings at once."""

    def __init__(self, work_dir: Path, max_jobs: int = 2, max_queued: int = 8, ttl_seconds: float = 3600,
                 device: str | None = None):
        self.work_dir = Path(work_dir)
        self.uploads = self.work_dir / "uploads"
        self.results = self.work_dir / "results"
        self.thumbs = self.work_dir / "thumbs"
        self.thumbs.mkdir(parents=True, exist_ok=True)
        self.uploads.mkdir(parents=True, exist_ok=True)
        self.results.mkdir(parents=True, exist_ok=True)
        self.max_queued = max_queued
        self.ttl = ttl_seconds
        self.device = device
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max_jobs, thread_name_prefix="siamkit-job")

    # ---------------------------------------------------------------- uploads
    def new_upload_path(self, suffix: str) -> tuple[str, Path]:
        upload_id = uuid.uuid4().hex
        return upload_id, self.uploads / f"{upload_id}{suffix}"

    def video_path(self, video_id: str) -> Path | None:
        if not valid_id(video_id):
            return None
        matches = list(self.uploads.glob(f"{video_id}.*"))
        return matches[0] if matches else None

    def first_frame_path(self, video_id: str) -> Path:
        return self.thumbs / f"{video_id}.jpg"

    def probe(self, path: Path) -> dict[str, Any]:
        """Open an uploaded file as a video and read its first frame (the content check)."""
        capture = cv2.VideoCapture(str(path))
        try:
            ok, frame = capture.read() if capture.isOpened() else (False, None)
            if not ok or frame is None:
                raise VideoError("The uploaded file is not a video that can be decoded.")
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        finally:
            capture.release()
        cv2.imwrite(str(self.first_frame_path(path.stem)), frame)
        return {"width": frame.shape[1], "height": frame.shape[0], "frames": count or None, "fps": fps}

    # ---------------------------------------------------------------- jobs
    def submit(self, video_id: str, tracker: str, box: list[float]) -> Job:
        with self._lock:
            active = sum(j.status in ("queued", "running") for j in self.jobs.values())
            if active >= self.max_queued:
                raise OverflowError("Too many tracking jobs are waiting; try again when one has finished.")
            job = Job(id=uuid.uuid4().hex, video_id=video_id, tracker=tracker, box=box)
            self.jobs[job.id] = job
        self._pool.submit(self._run, job)
        return job

    def result_dir(self, job_id: str) -> Path:
        return self.results / job_id

    def _run(self, job: Job) -> None:
        from siamkit.trackers.session import track_source

        job.status = "running"
        out = self.result_dir(job.id)
        out.mkdir(parents=True, exist_ok=True)
        try:
            video = self.video_path(job.video_id)
            if video is None:
                raise VideoError("The uploaded video is gone (it may have expired); upload it again.")

            def on_frame(done: int, total: int | None) -> None:
                job.done, job.total = done, total

            run = track_source(video, [job.box], tracker=job.tracker, device=self.device,
                               out_video=out / "tracked.webm", save=out / "boxes.json", on_frame=on_frame,
                               show_progress=False)
            from siamkit.video import write_boxes

            write_boxes(out / "boxes.csv", run.boxes, run.scores)
            job.fps = round(run.fps, 2)
            job.status = "done"
        except SiamkitError as exc:
            job.error, job.status = str(exc), "failed"
        except Exception as exc:  # the page must show every failure, not hang
            traceback.print_exc()
            job.error, job.status = f"Internal error: {type(exc).__name__}: {exc}", "failed"

    # ---------------------------------------------------------------- clean-up
    def sweep(self) -> None:
        """Delete uploads and results older than the time-to-live."""
        limit = time.time() - self.ttl
        for path in [*self.uploads.iterdir(), *self.thumbs.iterdir()]:
            if path.stat().st_mtime < limit:
                path.unlink(missing_ok=True)
        with self._lock:
            for job_id, job in list(self.jobs.items()):
                if job.created < limit and job.status in ("done", "failed"):
                    shutil.rmtree(self.result_dir(job_id), ignore_errors=True)
                    del self.jobs[job_id]

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
