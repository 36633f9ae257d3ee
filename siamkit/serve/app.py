"""The FastAPI app behind ``siamkit serve``: upload a video, draw a box, track, watch, download."""

from __future__ import annotations

import tempfile
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, Field

from siamkit.errors import SiamkitError
from siamkit.serve.jobs import JobStore, sniff_video_suffix, valid_id

STATIC = Path(__file__).parent / "static"
CHUNK = 1 << 20


class JobRequest(BaseModel):
    video_id: str
    tracker: str
    box: list[float] = Field(min_length=4, max_length=4)


def default_tracker(names: list[str]) -> str | None:
    """The tracker the page preselects: the one ``siamkit track`` uses (the best shipped), when offered."""
    from siamkit.demo import best_tracker

    best = best_tracker()[0]
    return best if best in names else (names[0] if names else None)


def create_app(
    work_dir: str | Path | None = None,
    max_upload_mb: float = 200.0,
    max_jobs: int = 2,
    max_queued: int = 8,
    trackers: list[str] | None = None,
    device: str | None = None,
) -> FastAPI:
    """Build the app. ``work_dir`` defaults to a fresh temporary folder removed at shutdown."""
    temp = tempfile.TemporaryDirectory(prefix="siamkit-serve-") if work_dir is None else None
    store = JobStore(Path(temp.name if temp else work_dir), max_jobs=max_jobs, max_queued=max_queued, device=device)
    max_bytes = int(max_upload_mb * (1 << 20))

    def tracker_names() -> list[str]:
        if trackers is not None:
            return list(trackers)
        from siamkit.trackers import available_trackers, usable_trackers

        try:
            return usable_trackers()
        except Exception:  # listing must never break the page
            return available_trackers()

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        store.shutdown()
        if temp is not None:
            temp.cleanup()

    app = FastAPI(title="siamkit", lifespan=lifespan)
    app.state.store = store

    @app.middleware("http")
    async def sweep_expired(request: Request, call_next):
        store.sweep()
        return await call_next(request)

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return (STATIC / "index.html").read_text()

    @app.get("/api/trackers")
    def list_trackers() -> dict:
        names = tracker_names()
        return {"trackers": names, "default": default_tracker(names)}

    @app.post("/api/videos")
    async def upload(file: UploadFile) -> dict:
        head = await file.read(64)
        suffix = sniff_video_suffix(head)
        if suffix is None:
            raise HTTPException(415, "Unsupported file: upload an MP4, MOV, AVI, MKV or WebM video.")
        video_id, path = store.new_upload_path(suffix)
        size = len(head)
        try:
            with path.open("wb") as out:
                out.write(head)
                while chunk := await file.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise HTTPException(413, f"The video is larger than the {max_upload_mb:g} MB limit.")
                    out.write(chunk)
            info = store.probe(path)
        except HTTPException:
            path.unlink(missing_ok=True)
            raise
        except SiamkitError as exc:
            path.unlink(missing_ok=True)
            raise HTTPException(415, str(exc)) from None
        except Exception:
            path.unlink(missing_ok=True)
            raise
        return {"video_id": video_id, "first_frame": f"/api/videos/{video_id}/first_frame.jpg", **info}

    @app.get("/api/videos/{video_id}/first_frame.jpg")
    def first_frame(video_id: str) -> FileResponse:
        if store.video_path(video_id) is None or not store.first_frame_path(video_id).is_file():
            raise HTTPException(404, "Unknown video.")
        return FileResponse(store.first_frame_path(video_id), media_type="image/jpeg")

    @app.post("/api/jobs")
    def start_job(request: JobRequest) -> dict:
        if store.video_path(request.video_id) is None:
            raise HTTPException(404, "Unknown video: upload it first.")
        names = tracker_names()
        if request.tracker not in names:
            raise HTTPException(422, f"Unknown tracker {request.tracker!r}; choose one of {', '.join(names)}.")
        x, y, w, h = request.box
        if not (w > 0 and h > 0):
            raise HTTPException(422, "Draw a box with a positive width and height.")
        try:
            job = store.submit(request.video_id, request.tracker, [x, y, w, h])
        except OverflowError as exc:
            raise HTTPException(429, str(exc)) from None
        return job.public()

    def get_job(job_id: str):
        job = store.jobs.get(job_id) if valid_id(job_id) else None
        if job is None:
            raise HTTPException(404, "Unknown job.")
        return job

    @app.get("/api/jobs/{job_id}")
    def job_status(job_id: str) -> dict:
        return get_job(job_id).public()

    results = {"video": ("tracked.webm", "video/webm"), "boxes.json": ("boxes.json", "application/json"),
               "boxes.csv": ("boxes.csv", "text/csv")}

    @app.get("/api/jobs/{job_id}/{what}")
    def job_result(job_id: str, what: str) -> FileResponse:
        job = get_job(job_id)
        if what not in results:
            raise HTTPException(404, "Unknown result.")
        if job.status != "done":
            raise HTTPException(409, "The job has not finished.")
        name, media = results[what]
        return FileResponse(store.result_dir(job.id) / name, media_type=media,
                            filename=name if what != "video" else None)

    return app
