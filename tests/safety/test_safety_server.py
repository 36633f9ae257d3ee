"""The web server against a hostile page and a careless user (issue 17 rows 4, 5, 7, 13, 14)."""

from __future__ import annotations

import socket
import stat
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from siamkit.serve.app import create_app
from siamkit.serve.jobs import valid_id
from siamkit.video import VideoSink

BASE = "http://127.0.0.1:8000"


def make_clip(path, n=6, size=(96, 64)):
    with VideoSink(path, 10, size) as sink:
        for i in range(n):
            frame = np.full((size[1], size[0], 3), 30, np.uint8)
            frame[20:40, 30 + i : 50 + i] = 250
            sink.write(frame)
    return path


@pytest.fixture
def clip(tmp_path):
    return make_clip(tmp_path / "clip.avi")


def upload(client, path, **kw):
    with open(path, "rb") as f:
        return client.post("/api/videos", files={"file": ("v.avi", f, "video/x-msvideo")}, **kw)


def test_requests_for_another_host_are_refused(tmp_path, clip):
    """DNS rebinding: evil.example resolves to 127.0.0.1, but the browser still sends its name."""
    app = create_app(work_dir=tmp_path / "w", trackers=["opencv:kcf"], port=8000)
    with TestClient(app, base_url="http://evil.example:8000") as client:
        assert client.get("/api/trackers").status_code == 403
        assert upload(client, clip).status_code == 403
    assert list((tmp_path / "w" / "uploads").iterdir()) == []


def test_cross_site_origin_is_refused_and_same_origin_allowed(tmp_path, clip):
    app = create_app(work_dir=tmp_path / "w", trackers=["opencv:kcf"], port=8000)
    with TestClient(app, base_url=BASE) as client:
        assert upload(client, clip, headers={"Origin": "https://evil.example"}).status_code == 403
        assert upload(client, clip, headers={"Origin": "null"}).status_code == 403
        assert upload(client, clip, headers={"Origin": "http://127.0.0.1:9999"}).status_code == 403
        assert upload(client, clip, headers={"Origin": BASE}).status_code == 200
        assert client.get("/api/trackers", headers={"Origin": "http://localhost:8000"}).status_code == 200


def test_uploads_are_capped_by_count_and_total_size(tmp_path, clip):
    app = create_app(work_dir=tmp_path / "w", trackers=["opencv:kcf"], max_uploads=2)
    with TestClient(app, base_url=BASE) as client:
        assert upload(client, clip).status_code == 200 and upload(client, clip).status_code == 200
        third = upload(client, clip)
        assert third.status_code == 429 and "limit" in third.json()["detail"]
    size_mb = clip.stat().st_size / (1 << 20)
    app = create_app(work_dir=tmp_path / "w2", trackers=["opencv:kcf"], max_total_mb=1.5 * size_mb)
    with TestClient(app, base_url=BASE) as client:
        assert upload(client, clip).status_code == 200
        second = upload(client, clip)
        assert second.status_code == 413 and "upload space" in second.json()["detail"]
    assert len(list((tmp_path / "w2" / "uploads").iterdir())) == 1


def test_size_limit_is_enforced_while_the_body_streams(tmp_path):
    """A chunked upload with no Content-Length is answered 413 after about the limit, not after the whole body."""
    import uvicorn

    app = create_app(work_dir=tmp_path / "w", trackers=["opencv:kcf"], max_upload_mb=0.25)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.time() + 20
        while not server.started and time.time() < deadline:
            time.sleep(0.05)
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(f"POST /api/videos HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: video/x-msvideo\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n".encode())
        chunk = b"RIFF\x00\x00\x00\x00AVI " + bytes(64 * 1024 - 12)
        sent, reply = 0, b""
        sock.settimeout(0.05)
        while sent < 64 * len(chunk) and not reply:  # would be 4 MB; the limit is 0.25 MB
            try:
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += len(chunk)
                reply = sock.recv(4096)
            except (TimeoutError, BlockingIOError):
                continue
            except (BrokenPipeError, ConnectionResetError):
                sock.settimeout(5)
                reply = sock.recv(4096)
                break
        sock.close()
        assert reply.startswith(b"HTTP/1.1 413"), reply[:100]
        assert sent <= 1 << 20  # stopped near the limit, not after the whole body
        assert list((tmp_path / "w" / "uploads").iterdir()) == []
    finally:
        server.should_exit = True
        thread.join(10)


def test_frames_larger_than_the_cap_are_refused(tmp_path, clip):
    app = create_app(work_dir=tmp_path / "w", trackers=["opencv:kcf"], max_frame_side=64)
    with TestClient(app, base_url=BASE) as client:
        response = upload(client, clip)  # 96×64 frames
        assert response.status_code == 415 and "at most 64 px" in response.json()["detail"]
    assert list((tmp_path / "w" / "uploads").iterdir()) == []


@pytest.mark.parametrize("box", [[10, 10, 3000, 3000], [10, 10, 1e5, 1e5], [10, 10, 1e300, 1e300], [0, 0, 0, 5]])
def test_oversized_boxes_are_refused_before_a_job(tmp_path, clip, box):
    app = create_app(work_dir=tmp_path / "w", trackers=["opencv:kcf"])
    with TestClient(app, base_url=BASE) as client:
        video = upload(client, clip).json()
        response = client.post("/api/jobs", json={"video_id": video["video_id"], "tracker": "opencv:kcf", "box": box})
        assert response.status_code == 422
        assert client.app.state.store.jobs == {}


def test_ids_must_match_in_full():
    good = "0123456789abcdef0123456789abcdef"
    assert valid_id(good)
    assert not valid_id(good + "\n") and not valid_id(good + "0") and not valid_id(good[:-1])


def test_work_folder_is_private(tmp_path, clip):
    app = create_app(work_dir=tmp_path / "w", trackers=["opencv:kcf"])
    with TestClient(app, base_url=BASE) as client:
        upload(client, clip)
    for folder in ("", "uploads", "results", "thumbs"):
        assert stat.S_IMODE((tmp_path / "w" / folder).stat().st_mode) == 0o700, folder


def test_shutdown_during_a_job_is_quick_and_leaves_no_files(tmp_path):
    clip = make_clip(tmp_path / "long.avi", n=400, size=(64, 48))
    app = create_app(trackers=["siamfc"])  # a temporary work folder, removed at shutdown
    client = TestClient(app, base_url=BASE)
    client.__enter__()
    work = app.state.store.work_dir
    video = upload(client, clip).json()
    job = client.post("/api/jobs", json={"video_id": video["video_id"], "tracker": "siamfc",
                                         "box": [30, 20, 20, 20]}).json()
    deadline = time.time() + 60
    while client.get(f"/api/jobs/{job['id']}").json()["done"] < 2 and time.time() < deadline:
        time.sleep(0.05)
    started = time.perf_counter()
    client.__exit__(None, None, None)  # what uvicorn runs on Ctrl-C: the lifespan shutdown
    assert time.perf_counter() - started < 5
    assert not any(t.name.startswith("siamkit-job") and t.is_alive() for t in threading.enumerate())
    time.sleep(0.3)
    assert not work.exists()  # removed, and not re-created by a job still writing


def test_uploads_are_decoded_off_the_event_loop(tmp_path, clip):
    """The real decoder runs, but in a worker thread: the page keeps answering during a long decode."""
    import asyncio

    app = create_app(work_dir=tmp_path / "w", trackers=["opencv:kcf"])
    store = app.state.store
    decode, where = store.probe, []

    def watched(path):
        try:
            asyncio.get_running_loop()
            where.append("event loop")
        except RuntimeError:
            where.append("worker thread")
        return decode(path)

    store.probe = watched
    with TestClient(app, base_url=BASE) as client:
        assert upload(client, clip).status_code == 200
    assert where == ["worker thread"]
