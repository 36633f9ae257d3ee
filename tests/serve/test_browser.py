"""End to end in headless Chromium: upload a video, draw the box, track, and see the result play."""

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from siamkit.data.synthetic import make_demo_clip
from siamkit.video import VideoSink

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install '.[dev]')")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")

SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "tests" / "artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    import uvicorn

    from siamkit.serve.app import create_app

    port = free_port()
    app = create_app(work_dir=tmp_path / "work", trackers=["opencv:kcf", "opencv:csrt"])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


def test_track_in_the_browser(server, tmp_path):
    clip = make_demo_clip(num_frames=15, seed=2)
    video = tmp_path / "clip.avi"
    with VideoSink(video, 10, (480, 320)) as sink:
        for frame in clip.frames:
            sink.write(frame)
    x, y, w, h = clip.boxes[0]
    flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"]
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
        page = browser.new_page(viewport={"width": 1100, "height": 1400})
        page.goto(server)
        page.wait_for_selector("#tracker option", state="attached")
        page.set_input_files("#file", str(video))
        page.wait_for_selector("#canvas", state="visible")
        page.wait_for_function("document.getElementById('canvas').width > 0")
        canvas = page.locator("#canvas").bounding_box()
        scale = canvas["width"] / 480
        page.mouse.move(canvas["x"] + x * scale, canvas["y"] + y * scale)
        page.mouse.down()
        page.mouse.move(canvas["x"] + (x + w / 2) * scale, canvas["y"] + (y + h / 2) * scale)
        page.mouse.move(canvas["x"] + (x + w) * scale, canvas["y"] + (y + h) * scale)
        page.mouse.up()
        assert "Box x=" in page.inner_text("#box-label")
        page.select_option("#tracker", "opencv:csrt")
        page.click("#track")
        page.wait_for_selector("#step-result", state="visible", timeout=60000)
        assert page.locator("#error").is_hidden()
        assert page.get_attribute("#download-json", "href").endswith("/boxes.json")
        page.wait_for_function("document.getElementById('result').readyState >= 2", timeout=20000)
        duration = page.evaluate("document.getElementById('result').duration")
        assert duration > 0
        assert "opencv:csrt" in page.inner_text("#result-info")
        SCREENSHOT_DIR.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT_DIR / "serve_page.png"), full_page=True)
        browser.close()
