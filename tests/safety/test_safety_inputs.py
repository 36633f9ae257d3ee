"""Inputs that can be wrong are refused where they enter: one line, exit code 2; ``--debug`` shows the traceback."""

from __future__ import annotations

import tracemalloc

import cv2
import numpy as np
import pytest

from siamkit.errors import BoxError

ONE_CROP_BOUND = 64 << 20  # bytes: far below the 2.1 GB a 3000 px box used to allocate for one crop


@pytest.fixture
def frames(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        frame = np.full((48, 64, 3), 30, np.uint8)
        frame[10:30, 20 + i : 35 + i] = 250
        cv2.imwrite(str(folder / f"{i:04d}.png"), frame)
    return folder


@pytest.mark.parametrize("box", ["10,10,3000,3000", "10,10,1e5,1e5", "10,10,1e300,1e300", "nan,1,5,5", "1,1,0,5",
                                 "-900,-900,20,20", "1,2,3", "1,2,3,four"])
def test_track_refuses_a_bad_box_in_one_line_without_allocating(frames, cli, box):
    tracemalloc.start()
    try:
        code, out, err = cli("track", frames, f"--box={box}", "--tracker", "siamfc")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 2 and err.startswith("siamkit: error:") and err.count("\n") == 1, err
    assert "box" in err.lower() and out == ""
    assert peak < ONE_CROP_BOUND, f"peak {peak / 1e6:.0f} MB"


def test_the_python_api_bounds_the_box_by_the_frame():
    import siamkit

    tracker = siamkit.create_tracker("siamfc", device="cpu")
    frame = np.zeros((48, 64, 3), np.uint8)
    for box in ([10, 10, 3000, 3000], [10, 10, 1e5, 1e5], [0, 0, 1e300, 1e300]):
        with pytest.raises(BoxError, match="larger than the 64×48 image"):
            tracker.init(frame, box)


def test_debug_shows_the_traceback(frames, cli):
    with pytest.raises(BoxError):
        cli("--debug", "track", frames, "--box=10,10,3000,3000", "--tracker", "opencv:kcf")


def _cut_jpeg(path):
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # OpenCV still decodes it, the lower half grey
    assert cv2.imread(str(path)) is not None
    return path


def test_a_truncated_jpeg_in_an_eval_dataset_is_refused(tmp_path, cli):
    seq = tmp_path / "data" / "Tiny" / "img"
    seq.mkdir(parents=True)
    for i in range(4):
        cv2.imwrite(str(seq / f"{i + 1:04d}.jpg"), np.full((48, 64, 3), 60 * i, np.uint8))
    _cut_jpeg(seq / "0003.jpg")
    (tmp_path / "data" / "Tiny" / "groundtruth_rect.txt").write_text("20,10,15,20\n" * 4)
    code, _, err = cli("eval", "--tracker", "opencv:kcf", "--dataset", f"otb:{tmp_path / 'data'}", "--out",
                       tmp_path / "run")
    assert code == 2 and "0003.jpg is truncated" in err and err.count("\n") == 1, err


def test_verify_refuses_a_truncated_jpeg(tmp_path, cli):
    whole = tmp_path / "whole.png"
    cv2.imwrite(str(whole), np.full((48, 64, 3), 90, np.uint8))
    code, _, err = cli("verify", _cut_jpeg(tmp_path / "cut.jpg"), whole, "--model", "omniglot")
    assert code == 2 and "cut.jpg is truncated" in err and err.count("\n") == 1, err


def test_index_build_refuses_a_truncated_jpeg(tmp_path, cli):
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), np.full((48, 64, 3), 90, np.uint8))
    _cut_jpeg(images / "b.jpg")
    code, _, err = cli("index", "build", images, "--model", "faces", "--out", tmp_path / "g")
    assert code == 2 and "b.jpg" in err and ("truncated" in err or "corrupt" in err) and err.count("\n") == 1, err


@pytest.mark.parametrize("command", [["track", "{frames}", "--box", "10,10,20,20", "--tracker", "opencv:kcf"],
                                     ["eval", "--tracker", "opencv:kcf", "--dataset", "otb:{frames}", "--out", "{out}"],
                                     ["index", "build", "{frames}", "--model", "faces", "--out", "{out}"],
                                     ["train", "--config", "{frames}/none.yaml"], ["demo"], ["serve"]])
def test_a_device_this_machine_lacks_is_one_line(frames, tmp_path, cli, command):
    import torch

    args = [a.format(frames=frames, out=tmp_path / "out") for a in command]
    for device in ("banana", "cuda:99" if torch.cuda.is_available() else "cuda"):
        code, out, err = cli(*args, "--device", device)
        assert code == 2 and err.startswith("siamkit: error:") and err.count("\n") == 1 and "device" in err, err
        assert out == ""
    assert not (tmp_path / "out").exists()


def test_a_broken_or_hostile_yaml_config_is_one_line_and_runs_nothing(tmp_path, cli):
    marker = tmp_path / "pwned"
    (tmp_path / "evil.yaml").write_text(f"task: metric\nname: !!python/object/apply:os.system ['touch {marker}']\n")
    (tmp_path / "broken.yaml").write_text("task: [metric\n")
    for name in ("evil.yaml", "broken.yaml"):
        code, _, err = cli("train", "--config", tmp_path / name)
        assert code == 2 and "is not valid YAML (line " in err and err.count("\n") == 1, err
    assert not marker.exists()
