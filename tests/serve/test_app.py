"""The web page's API: uploads are checked and bounded, ids validated, jobs report their results and errors."""

import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from siamkit.data.synthetic import make_demo_clip
from siamkit.serve.app import create_app
from siamkit.video import VideoSink, read_boxes


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory):
    clip = make_demo_clip(num_frames=12, seed=0)
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    with VideoSink(path, 10, (480, 320)) as sink:
        for frame in clip.frames:
            sink.write(frame)
    return path, clip.boxes


@pytest.fixture
def client(tmp_path):
    app = create_app(work_dir=tmp_path / "work", max_upload_mb=1.0, trackers=["opencv:kcf"])
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        c.work_dir = tmp_path / "work"
        yield c


def upload(client, path, name="my video.avi"):
    with open(path, "rb") as f:
        return client.post("/api/videos", files={"file": (name, f, "video/x-msvideo")})


def wait(client, job_id, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError("job did not finish")


def test_page_and_tracker_list(client):
    assert "draw a box" in client.get("/").text.lower()
    assert client.get("/api/trackers").json() == {"trackers": ["opencv:kcf"], "default": "opencv:kcf"}


def test_upload_track_and_download(client, clip_file):
    path, truth = clip_file
    video = upload(client, path).json()
    assert (video["width"], video["height"]) == (480, 320)
    stored = list((client.work_dir / "uploads").iterdir())
    assert all(p.stem.startswith(video["video_id"]) for p in stored)  # the client's name is never used
    assert client.get(video["first_frame"]).headers["content-type"] == "image/jpeg"
    job = client.post("/api/jobs", json={"video_id": video["video_id"], "tracker": "opencv:kcf",
                                         "box": truth[0].tolist()}).json()
    job = wait(client, job["id"])
    assert job["status"] == "done" and job["done"] == 12, job
    assert client.get(f"/api/jobs/{job['id']}/video").headers["content-type"] == "video/webm"
    boxes_json = client.get(f"/api/jobs/{job['id']}/boxes.json")
    assert boxes_json.status_code == 200 and len(boxes_json.json()["frames"]) == 12
    csv_path = client.work_dir / "check.csv"
    csv_path.write_text(client.get(f"/api/jobs/{job['id']}/boxes.csv").text)
    assert read_boxes(csv_path).shape == (12, 1, 4)


def test_oversized_upload_is_rejected_and_removed(client):
    big = client.work_dir.parent / "big.avi"
    big.write_bytes(b"RIFF\x00\x00\x00\x00AVI " + bytes(2 << 20))
    response = upload(client, big)
    assert response.status_code == 413 and "limit" in response.json()["detail"]
    assert list((client.work_dir / "uploads").iterdir()) == []


@pytest.mark.parametrize("payload", [b"just some text, not a video", b"\x89PNG\r\n\x1a\n" + bytes(100)])
def test_wrong_content_is_rejected(client, tmp_path, payload):
    path = tmp_path / "fake.mp4"
    path.write_bytes(payload)
    assert upload(client, path).status_code == 415


def test_corrupt_video_with_a_valid_header_is_rejected(client, tmp_path):
    path = tmp_path / "corrupt.avi"
    path.write_bytes(b"RIFF\x00\x10\x00\x00AVI LIST" + bytes(5000))
    response = upload(client, path)
    assert response.status_code == 415 and "decoded" in response.json()["detail"]
    assert list((client.work_dir / "uploads").iterdir()) == []


@pytest.mark.parametrize("bad_id", ["../../etc/passwd", "..%2F..%2Fetc", "0" * 31, "g" * 32, "nope"])
def test_unknown_and_path_like_ids_are_404(client, bad_id):
    assert client.get(f"/api/jobs/{bad_id}").status_code == 404
    assert client.get(f"/api/videos/{bad_id}/first_frame.jpg").status_code == 404
    response = client.post("/api/jobs", json={"video_id": bad_id, "tracker": "opencv:kcf", "box": [1, 1, 5, 5]})
    assert response.status_code == 404


def test_path_like_upload_name_is_ignored(client, clip_file):
    path, _ = clip_file
    video = upload(client, path, name="../../../../tmp/evil.avi").json()
    names = [p.name for p in (client.work_dir / "uploads").iterdir()]
    assert all("evil" not in n for n in names) and any(video["video_id"] in n for n in names)


def test_bad_job_requests(client, clip_file):
    video = upload(client, clip_file[0]).json()
    unknown = client.post("/api/jobs", json={"video_id": video["video_id"], "tracker": "nope", "box": [1, 1, 5, 5]})
    assert unknown.status_code == 422 and "Unknown tracker" in unknown.json()["detail"]
    empty = client.post("/api/jobs", json={"video_id": video["video_id"], "tracker": "opencv:kcf",
                                           "box": [1, 1, 0, 5]})
    assert empty.status_code == 422


def test_box_outside_the_frame_is_refused_before_a_job_starts(client, clip_file):
    video = upload(client, clip_file[0]).json()
    # checked against the video's frame size at the request, with the same rule as the CLI
    response = client.post("/api/jobs", json={"video_id": video["video_id"], "tracker": "opencv:kcf",
                                              "box": [5000, 5000, 10, 10]})
    assert response.status_code == 422 and "outside" in response.json()["detail"]
    assert client.app.state.store.jobs == {}


def test_jobs_are_bounded(tmp_path, clip_file):
    app = create_app(work_dir=tmp_path / "w", trackers=["opencv:kcf"], max_jobs=1, max_queued=1)
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        video = upload(client, clip_file[0]).json()
        body = {"video_id": video["video_id"], "tracker": "opencv:kcf", "box": clip_file[1][0].tolist()}
        first = client.post("/api/jobs", json=body)
        second = client.post("/api/jobs", json=body)
        assert first.status_code == 200
        assert second.status_code == 429 or client.get(f"/api/jobs/{first.json()['id']}").json()["status"] == "done"
        wait(client, first.json()["id"])


def test_temporary_work_dir_is_removed_at_shutdown():
    app = create_app(trackers=["opencv:kcf"])
    with TestClient(app, base_url="http://127.0.0.1:8000"):
        work = app.state.store.work_dir
        assert work.is_dir()
    assert not work.exists()


def test_expired_files_are_swept(client, clip_file):
    upload(client, clip_file[0])
    store = client.app.state.store
    store.ttl = -1  # everything is expired
    client.get("/api/trackers")
    assert list(store.uploads.iterdir()) == []
    assert np.isfinite(store.ttl)
