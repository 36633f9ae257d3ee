"""``siamkit track``: video files and frame folders in, boxes and annotated video out; one-line errors."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from siamkit.cli import main
from siamkit.cli.options import parse_box
from siamkit.video import FrameSource, read_boxes


def synthetic_frames(n=5, size=(96, 128)):
    frames = []
    for t in range(n):
        f = np.full((*size, 3), 30, np.uint8)
        cv2.rectangle(f, (40 + 3 * t, 30), (60 + 3 * t, 55), (250, 250, 250), -1)
        frames.append(f)
    return frames


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "frames"
    d.mkdir()
    for i, f in enumerate(synthetic_frames(3)):
        cv2.imwrite(str(d / f"{i + 1:04d}.png"), f)
    return d


def run(capsys, *args):
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def run_ok(capsys, *args):
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def test_track_a_folder_and_save_json_and_csv(folder, tmp_path, capsys):
    out_json = tmp_path / "boxes.json"
    code, out, _ = run_ok(
        capsys,
        "track",
        str(folder),
        "--box",
        "40,30,21,26",
        "--tracker",
        "siamrpnpp_alexnet",
        "--weights",
        "none",
        "--device",
        "cpu",
        "--save",
        str(out_json),
    )
    assert code == 0, out
    data = json.loads(out_json.read_text())
    assert data["targets"] == 1 and len(data["frames"]) == 3 and data["frames"][0][0]["box"] == [40, 30, 21, 26]
    assert all(np.isfinite(f[0]["score"]) for f in data["frames"])
    assert "through 3 frames" in out
    out_csv = tmp_path / "boxes.csv"
    code, _, _ = run_ok(capsys, "track", str(folder), "--box", "40,30,21,26", "--save", str(out_csv), "--device",
                        "cpu", "--tracker", "siamfc")
    rows = list(csv.reader(out_csv.open()))
    assert rows[0] == ["frame", "target", "x", "y", "w", "h", "score"] and len(rows) == 4
    assert [float(v) for v in rows[1][2:6]] == [40, 30, 21, 26]


def test_track_a_video_file(tmp_path, capsys):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (128, 96))
    if not writer.isOpened():
        pytest.skip("OpenCV cannot write MJPG here")
    for f in synthetic_frames(4):
        writer.write(f)
    writer.release()
    assert len(list(FrameSource(path))) == 4
    code, out, _ = run_ok(capsys, "track", str(path), "--box", "40,30,21,26", "--tracker", "siamfc", "--device", "cpu")
    assert code == 0 and "through 4 frames" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--box", "1,2,3"], "has 3 values"),
        (["--box", "a,b,c,d"], "Cannot read the box"),
        (["--box", "500,10,5,5"], "outside"),
        (["--box", "10,10,0,5"], "zero or negative size"),
        (["--box", "10,10,5,5", "--tracker", "nope"], "Unknown tracker 'nope'"),
        (["--box", "10,10,5,5", "--save", "out.txt"], ".json or .csv"),
        (["--box", "10,10,5,5", "--out", "out.gif"], ".mp4"),
    ],
)
def test_bad_arguments_print_one_line(folder, capsys, args, message):
    code, _, err = run(capsys, "track", str(folder), *args)
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line.startswith("siamkit: error:")]
    assert len(lines) == 1 and message in lines[0], err


def test_unreadable_sources(tmp_path, capsys):
    code, _, err = run(capsys, "track", str(tmp_path / "missing.mp4"), "--box", "1,1,5,5")
    assert code == 2 and "does not exist" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "track", str(tmp_path / "empty"), "--box", "1,1,5,5")
    assert code == 2 and "holds no images" in err
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    code, _, err = run(capsys, "track", str(tmp_path / "junk.mp4"), "--box", "1,1,5,5")
    assert code == 2 and "siamkit: error:" in err


def test_parse_box():
    assert parse_box("1, 2.5,3,4") == [1.0, 2.5, 3.0, 4.0]


def test_track_with_zoo_weights(folder, tmp_path, capsys):
    import torch

    import siamkit.nn  # noqa: F401  (registers the model builders)
    from siamkit import zoo
    from siamkit.config import MODELS

    torch.manual_seed(0)
    model = MODELS.build("siamrpnpp_alexnet", width_mult=0.25, hidden=16)
    path = zoo.save_model(model, tmp_path / "alex", "siamrpnpp_alexnet", config={"width_mult": 0.25, "hidden": 16})
    code, out, err = run_ok(
        capsys,
        "track",
        str(folder),
        "--box",
        "40,30,21,26",
        "--weights",
        str(path),
        "--device",
        "cpu",
        "--preset",
        "otb",
    )
    assert code == 0 and "through 3 frames" in out
    assert "randomly initialised" not in err


def test_several_targets_and_an_annotated_video(folder, tmp_path, capsys):
    video, boxes = tmp_path / "out.mp4", tmp_path / "boxes.json"
    code, out, _ = run_ok(capsys, "track", str(folder), "--box", "40,30,21,26", "--box", "5,5,20,20", "--tracker",
                          "siamrpnpp_alexnet", "--weights", "none", "--device", "cpu", "--out", str(video),
                          "--save", str(boxes))
    assert code == 0 and "2 target(s) through 3 frames" in out
    assert read_boxes(boxes).shape == (3, 2, 4)
    assert len(list(FrameSource(video))) == 3


def test_interrupted_run_keeps_a_playable_video_and_valid_boxes(tmp_path, capsys, monkeypatch):
    frames_dir = tmp_path / "many"
    frames_dir.mkdir()
    for i, f in enumerate(synthetic_frames(8)):
        cv2.imwrite(str(frames_dir / f"{i:04d}.png"), f)
    original = FrameSource.__iter__

    def interrupted(self):
        for i, frame in enumerate(original(self)):
            if i == 5 and str(self.source) == str(frames_dir):
                raise KeyboardInterrupt
            yield frame

    monkeypatch.setattr(FrameSource, "__iter__", interrupted)
    video, boxes = tmp_path / "part.avi", tmp_path / "part.csv"
    code, _, err = run(capsys, "track", str(frames_dir), "--box", "40,30,21,26", "--tracker", "opencv:kcf",
                       "--out", str(video), "--save", str(boxes))
    assert code == 130 and "interrupted" in err and "part.avi" in err
    monkeypatch.setattr(FrameSource, "__iter__", original)
    assert len(list(FrameSource(video))) == 5
    assert read_boxes(boxes).shape == (5, 1, 4)
