"""The FastAPI app behind ``siamkit serve``: upload a video, draw a box, track, watch, download.

Safety rules (README, "Safety and failure"): requests must address this server (Host/Origin,
see :mod:`siamkit.serve.guard`); uploads are streamed to disk with the size limit checked on every
chunk and capped by count and total size; decoding runs in a worker thread, never on the event
loop; boxes are checked against the video's frame size before a job starts; shutdown stops the
running jobs and removes the temporary folder within 5 s.
"""

from __future__ import annotations

import tempfile
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from siamkit.errors import SiamkitError
from siamkit.geometry import check_box
from siamkit.serve.guard import BadUpload, HostCheck, UploadTooLarge, receive_upload
from siamkit.serve.jobs import MAX_FRAME_SIDE, JobStore, sniff_video_suffix, valid_id

STATIC = Path(__file__).parent / "static"


class JobRequest(BaseModel):
    video_id: str
    tracker: str
    box: list[float] = Field(min_length=4, max_length=4)


def default_tracker(names: list[str]) -> str | None:
    """The tracker the page preselects: the one ``siamkit track`` uses (the default shipped), when offered."""
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
    host: str = "127.0.0.1",
    port: int | None = None,
    allowed_hosts: list[str] | tuple[str, ...] = (),
    max_uploads: int = 20,
    max_total_mb: float = 2048.0,
    max_frame_side: int = MAX_FRAME_SIDE,
) -> FastAPI:
    """Build the app. ``work_dir`` defaults to a fresh temporary folder removed at shutdown.

    ``host``/``port`` are the address served (``Host`` and ``Origin`` must name it; ``allowed_hosts``
    adds names); ``max_uploads`` and ``max_total_mb`` cap the uploads kept at once.
    """
    temp = tempfile.TemporaryDirectory(prefix="siamkit-serve-") if work_dir is None else None
    store = JobStore(Path(temp.name if temp else work_dir), max_jobs=max_jobs, max_queued=max_queued, device=device,
                     max_uploads=max_uploads, max_total_bytes=int(max_total_mb * (1 << 20)),
                     max_frame_side=max_frame_side)
    max_bytes = int(max_upload_mb * (1 << 20))
    hosts = HostCheck(host, port, allowed_hosts)

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
        # DNS rebinding and cross-site requests: the Host (and a browser's Origin) must name this server
        if not hosts.allows(request.headers.get("host", "")):
            return JSONResponse({"detail": "Wrong Host header: open the page at the address siamkit serve printed."},
                                status_code=403)
        origin = request.headers.get("origin")
        if origin is not None and not hosts.origin_allowed(origin):
            return JSONResponse({"detail": "Cross-site request refused."}, status_code=403)
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
    async def upload(request: Request) -> dict:
        try:
            store.check_upload_room()
        except OverflowError as exc:
            raise HTTPException(429, str(exc)) from None
        limit = min(max_bytes, store.total_room())
        video_id, partial = store.new_upload_path(".partial")
        path = partial
        try:
            # streamed: the limit is checked on every chunk, nothing is spooled beyond it
            await receive_upload(request, partial, limit)
            with partial.open("rb") as fh:
                suffix = sniff_video_suffix(fh.read(64))
            if suffix is None:
                raise HTTPException(415, "Unsupported file: upload an MP4, MOV, AVI, MKV or WebM video.")
            path = partial.with_suffix(suffix)
            partial.rename(path)
            info = await run_in_threadpool(store.probe, path)  # decoding blocks: off the event loop
        except UploadTooLarge:
            path.unlink(missing_ok=True)
            detail = f"The video is larger than the {max_upload_mb:g} MB limit." if limit == max_bytes else \
                "The video does not fit in the server's upload space; try again later."
            raise HTTPException(413, detail) from None
        except BadUpload as exc:
            path.unlink(missing_ok=True)
            raise HTTPException(400, str(exc)) from None
        except SiamkitError as exc:
            path.unlink(missing_ok=True)
            raise HTTPException(415, str(exc)) from None
        except BaseException:
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
        if store.video_path(request.video_id) is None or request.video_id not in store.sizes:
            raise HTTPException(404, "Unknown video: upload it first.")
        names = tracker_names()
        if request.tracker not in names:
            raise HTTPException(422, f"Unknown tracker {request.tracker!r}; choose one of {', '.join(names)}.")
        try:  # the same box rule as the CLI and the Python API (bounded size: bounded crops)
            box = check_box(request.box, image_size=store.sizes.get(request.video_id), name="box")
        except SiamkitError as exc:
            raise HTTPException(422, str(exc)) from None
        try:
            job = store.submit(request.video_id, request.tracker, [float(v) for v in box])
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
