"""Uploads and tracking jobs of the web page: random names, content checks, bounded concurrency, clean-up.

Nothing the client sends is ever used as a path: uploads and results are stored under
server-generated ids in the app's own work folder (readable by its owner only), and ids are
validated (full match) before any lookup. Uploads are capped by count and total size, decoded
frames by their size, and :meth:`JobStore.shutdown` stops running jobs at their next frame.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2

from siamkit.errors import SiamkitError, VideoError
from siamkit.safety import make_private

ID_PATTERN = re.compile(r"[0-9a-f]{32}")
MAX_FRAME_SIDE = 4096  # px: larger frames are refused (a decoded 8K frame is 100 MB)


class JobCancelled(Exception):
    """The server is stopping: the job ends at its next frame."""


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
    return bool(ID_PATTERN.fullmatch(value))  # match() would let "<id>\n" through


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
                 device: str | None = None, max_uploads: int = 20, max_total_bytes: int = 2 << 30,
                 max_frame_side: int = MAX_FRAME_SIDE):
        self.work_dir = Path(work_dir)
        self.uploads = self.work_dir / "uploads"
        self.results = self.work_dir / "results"
        self.thumbs = self.work_dir / "thumbs"
        for folder in (self.work_dir, self.thumbs, self.uploads, self.results):
            folder.mkdir(parents=True, exist_ok=True)
            make_private(folder)  # other users of the machine must not read the uploaded videos
        self.max_uploads = max_uploads
        self.max_total_bytes = max_total_bytes
        self.max_frame_side = max_frame_side
        self.sizes: dict[str, tuple[int, int]] = {}  # video id → (width, height) of its frames
        self._stop = threading.Event()
        self._futures: list = []
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

    def check_upload_room(self) -> None:
        """OverflowError when the stored uploads reach the count or total-size cap."""
        files = [p for p in self.uploads.iterdir() if p.is_file()]
        if len(files) >= self.max_uploads:
            raise OverflowError(f"The server holds {len(files)} uploads, its limit; try again later.")
        if sum(p.stat().st_size for p in files) >= self.max_total_bytes:
            raise OverflowError("The server's upload space is full; try again later.")

    def total_room(self) -> int:
        """Bytes left under the total-size cap."""
        used = sum(p.stat().st_size for p in self.uploads.iterdir() if p.is_file())
        return max(0, self.max_total_bytes - used)

    def video_path(self, video_id: str) -> Path | None:
        if not valid_id(video_id):
            return None
        matches = list(self.uploads.glob(f"{video_id}.*"))
        return matches[0] if matches else None

    def first_frame_path(self, video_id: str) -> Path:
        return self.thumbs / f"{video_id}.jpg"

    def probe(self, path: Path) -> dict[str, Any]:
        """Open an uploaded file as a video and read its first frame (the content check).

        Blocking (it decodes): the app calls it in a worker thread, never on the event loop.
        """
        capture = cv2.VideoCapture(str(path))
        try:
            ok, frame = capture.read() if capture.isOpened() else (False, None)
            if not ok or frame is None:
                raise VideoError("The uploaded file is not a video that can be decoded.")
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        finally:
            capture.release()
        height, width = frame.shape[:2]
        if max(width, height) > self.max_frame_side:
            raise VideoError(f"The video's frames are {width}×{height}; this server takes at most "
                             f"{self.max_frame_side} px on a side.", hint="Downscale the video first.")
        thumb = self.first_frame_path(path.stem)
        cv2.imwrite(str(thumb), frame)
        make_private(thumb)
        self.sizes[path.stem] = (width, height)
        return {"width": width, "height": height, "frames": count or None, "fps": fps}

    # ---------------------------------------------------------------- jobs
    def submit(self, video_id: str, tracker: str, box: list[float]) -> Job:
        with self._lock:
            active = sum(j.status in ("queued", "running") for j in self.jobs.values())
            if active >= self.max_queued:
                raise OverflowError("Too many tracking jobs are waiting; try again when one has finished.")
            job = Job(id=uuid.uuid4().hex, video_id=video_id, tracker=tracker, box=box)
            self.jobs[job.id] = job
            self._futures = [f for f in self._futures if not f.done()] + [self._pool.submit(self._run, job)]
        return job

    def result_dir(self, job_id: str) -> Path:
        return self.results / job_id

    def _run(self, job: Job) -> None:
        from siamkit.trackers.session import track_source

        if self._stop.is_set():
            return
        job.status = "running"
        out = self.result_dir(job.id)
        out.mkdir(parents=True, exist_ok=True)
        make_private(out)
        try:
            video = self.video_path(job.video_id)
            if video is None:
                raise VideoError("The uploaded video is gone (it may have expired); upload it again.")

            def on_frame(done: int, total: int | None) -> None:
                job.done, job.total = done, total
                if self._stop.is_set():
                    raise JobCancelled

            run = track_source(video, [job.box], tracker=job.tracker, device=self.device,
                               out_video=out / "tracked.webm", save=out / "boxes.json", on_frame=on_frame,
                               show_progress=False)
            from siamkit.video import write_boxes

            write_boxes(out / "boxes.csv", run.boxes, run.scores)
            job.fps = round(run.fps, 2)
            job.status = "done"
        except JobCancelled:
            job.error, job.status = "The server stopped.", "failed"
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

    def shutdown(self, timeout: float = 4.0) -> None:
        """Stop: queued jobs are dropped, running ones end at their next frame (waits up to ``timeout`` s)."""
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        futures_wait(self._futures, timeout=timeout)
