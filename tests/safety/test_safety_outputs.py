"""Outputs: never over an input, checked before the work, verified after it (issue 17 rows 3, 6, 9, 14)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from siamkit.errors import VideoError
from siamkit.video import VideoSink, count_frames, read_boxes


def frames_folder(path, n=4, size=(48, 64)):
    path.mkdir()
    for i in range(n):
        frame = np.full((*size, 3), 30, np.uint8)
        cv2.rectangle(frame, (20 + i, 10), (35 + i, 30), (250, 250, 250), -1)
        cv2.imwrite(str(path / f"{i:04d}.png"), frame)
    return path


def write_video(path, n=4, size=(64, 48)):
    with VideoSink(path, 10, size) as sink:
        for i in range(n):
            sink.write(np.full((size[1], size[0], 3), 40 * i, np.uint8))
    return path


def test_track_refuses_to_overwrite_its_input_video(tmp_path, cli):
    clip = write_video(tmp_path / "clip.mp4")
    before = clip.read_bytes()
    code, _, err = cli("track", str(clip), "--box", "20,10,15,20", "--tracker", "opencv:kcf",
                       "--out", str(clip))
    assert code == 2 and "would overwrite the input" in err and "Traceback" not in err
    assert clip.read_bytes() == before


def test_track_refuses_an_output_that_is_a_link_to_the_input(tmp_path, cli):
    clip = write_video(tmp_path / "clip.mp4")
    (tmp_path / "link.json").symlink_to(clip)
    code, _, err = cli("track", str(clip), "--box", "20,10,15,20", "--tracker", "opencv:kcf",
                       "--save", str(tmp_path / "link.json"))
    assert code == 2 and "would overwrite the input" in err
    assert count_frames(clip) == 4


def test_unwritable_output_folder_fails_before_any_tracking(tmp_path, cli):
    frames = frames_folder(tmp_path / "frames")
    (tmp_path / "a_file").write_text("not a folder")
    code, out, err = cli("track", str(frames), "--box", "20,10,15,20", "--tracker", "opencv:kcf",
                         "--out", str(tmp_path / "a_file" / "sub" / "out.mp4"))
    assert code == 2 and err.count("\n") == 1 and "Cannot create" in err
    assert "tracked" not in out  # the work was not done first and lost afterwards


@pytest.mark.parametrize("args", [["--max-frames", "0"], ["--max-frames", "-3"]])
def test_track_rejects_a_zero_frame_limit_in_one_line(tmp_path, cli, args):
    frames = frames_folder(tmp_path / "frames")
    code, _, err = cli("track", str(frames), "--box", "20,10,15,20", "--tracker", "opencv:kcf", *args)
    assert code == 2 and "Traceback" not in err and "max-frames" in err


def test_a_failed_video_write_raises_and_keeps_the_earlier_file(tmp_path):
    target = write_video(tmp_path / "out.mp4")
    before = target.read_bytes()
    sink = VideoSink(target, 10, (64, 48))
    for _ in range(3):  # frames of another size: OpenCV drops them without a word
        sink.write(np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(VideoError, match="0 of 3 frames"):
        sink.close()
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # no partial file left behind


def test_a_written_video_holds_every_frame(tmp_path):
    path = write_video(tmp_path / "ok.avi", n=5)
    assert count_frames(path) == 5


def test_truncated_jpeg_frame_is_an_error_not_grey_pixels(tmp_path, cli):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"{i:04d}.jpg"), np.random.default_rng(i).integers(0, 255, (48, 64, 3), np.uint8))
    cut = frames / "0001.jpg"
    cut.write_bytes(cut.read_bytes()[: len(cut.read_bytes()) // 2])
    code, _, err = cli("track", str(frames), "--box", "20,10,15,20", "--tracker", "opencv:kcf")
    assert code == 2 and "truncated" in err and "0001.jpg" in err


def test_boxes_are_on_disk_while_tracking(tmp_path):
    """A crash (kill, power loss) keeps the boxes written so far: the file is valid mid-run."""
    from siamkit.trackers.session import track_source

    frames = frames_folder(tmp_path / "frames", n=6)
    save = tmp_path / "boxes.json"
    seen = []

    def on_frame(done, total):
        seen.append(read_boxes(save).shape[0] if save.exists() else 0)

    track_source(frames, [[20, 10, 15, 20]], tracker="opencv:kcf", save=save, on_frame=on_frame, save_every_s=0.0,
                 show_progress=False)
    assert seen == [1, 2, 3, 4, 5, 6]
    assert len(json.loads(save.read_text())["frames"]) == 6


def test_track_output_beside_input_works(tmp_path, cli):
    clip = write_video(tmp_path / "clip.mp4", n=4)
    code, out, err = cli("track", str(clip), "--box", "20,10,15,20", "--tracker", "opencv:kcf",
                         "--out", str(tmp_path / "tracked.mp4"), "--save", str(tmp_path / "boxes.csv"))
    assert code == 0, err
    assert count_frames(tmp_path / "tracked.mp4") == 4 and read_boxes(tmp_path / "boxes.csv").shape == (4, 1, 4)


def test_demo_refuses_to_overwrite_its_input_video(tmp_path, cli):
    """The demo writes OUT/out.mp4: a user video at that very path must survive."""
    clip = write_video(tmp_path / "out.mp4")
    before = clip.read_bytes()
    code, _, err = cli("demo", "--video", str(clip), "--box", "20,10,15,20", "--tracker", "opencv:kcf",
                       "--out", str(tmp_path))
    assert code == 2 and "would overwrite the input" in err and "Traceback" not in err
    assert clip.read_bytes() == before


def test_python_tracking_refuses_to_overwrite_its_input(tmp_path):
    from siamkit.errors import ConfigError
    from siamkit.trackers.session import track_source

    clip = write_video(tmp_path / "clip.mp4")
    before = clip.read_bytes()
    with pytest.raises(ConfigError, match="would overwrite the input"):
        track_source(str(clip), [[20, 10, 15, 20]], tracker="opencv:kcf", out_video=clip, show_progress=False)
    assert clip.read_bytes() == before


@pytest.mark.parametrize("command", [
    ["eval", "--model", "omniglot", "--dataset", "pairs:{data}"],
    ["demo", "--tracker", "opencv:kcf"],
    ["train", "--config", "{data}/missing.yaml"],
])
def test_unwritable_output_folder_fails_before_the_work_for_every_command(tmp_path, cli, command):
    (tmp_path / "a_file").write_text("not a folder")
    args = [a.format(data=tmp_path) for a in command]
    code, out, err = cli(*args, "--out", str(tmp_path / "a_file" / "run"))
    assert code == 2 and err.count("\n") == 1 and "is not a folder" in err, err
    assert out == ""  # nothing was run first


def test_a_file_system_error_during_the_work_is_one_line(tmp_path, cli):
    """An output name taken by a folder is only found when writing: still one line, exit 2."""
    frames = frames_folder(tmp_path / "frames")
    (tmp_path / "g" / "gallery.json").mkdir(parents=True)
    code, _, err = cli("index", "build", str(frames), "--model", "omniglot", "--out", str(tmp_path / "g"))
    assert code == 2 and err.count("\n") == 1 and "Is a directory" in err and "gallery.json" in err, err
    assert not [p for p in (tmp_path / "g").iterdir() if p.name.startswith(".gallery.json")]  # no temp file left


def _siamkit_with_file_size_limit(args, limit_bytes=8000):
    """``python -m siamkit ARGS`` where no file may grow past ``limit_bytes``: a disk that fills up."""
    resource = pytest.importorskip("resource", reason="needs POSIX file-size limits")
    import signal

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes then fail with EFBIG instead of killing

    run = subprocess.run([sys.executable, "-m", "siamkit", *map(str, args)], preexec_fn=limit, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1", "SIAMKIT_PROGRESS": "0",
                                                        "SIAMKIT_DEBUG": "0"})
    return run.returncode, run.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file-size limits")
@pytest.mark.parametrize("room", [8000, 3000])  # 8000: the video overflows; 3000: the boxes file too
def test_a_full_disk_keeps_the_earlier_files_and_leaves_no_partial_ones(tmp_path, room):
    frames = frames_folder(tmp_path / "frames", n=120)
    out = tmp_path / "out"
    out.mkdir()
    earlier = write_video(out / "o.avi")
    before = earlier.read_bytes()
    code, err = _siamkit_with_file_size_limit(["track", frames, "--box", "20,10,15,20", "--tracker", "opencv:kcf",
                                               "--out", out / "o.avi", "--save", out / "b.json"], room)
    errors = [line for line in err.splitlines() if line.startswith("siamkit: error")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert "b.json" in errors[0] or "o.avi" in errors[0]
    assert earlier.read_bytes() == before
    left = sorted(p.name for p in out.iterdir())
    assert left in (["o.avi"], ["b.json", "o.avi"]), left  # no half-written video or temporary file left behind
    if "b.json" in left:  # the boxes fit: then they are all there and valid
        assert read_boxes(out / "b.json").shape == (120, 1, 4)
