"""Sequence readers: the shared OTB-layout clips and small generated fixtures for every benchmark quirk."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import shared_path

from siamkit.data.benchmarks import (
    open_dataset,
    parse_spec,
    read_got10k,
    read_lasot,
    read_nfs,
    read_otb,
    read_trackingnet,
    read_uav,
    read_vot,
)
from siamkit.data.sequences import polygon_to_box, read_numbers
from siamkit.errors import DataError


def _touch_frames(folder: Path, n: int, digits: int = 4, start: int = 1, real: bool = False):
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(start, start + n):
        path = folder / f"{k:0{digits}d}.jpg"
        if real:
            cv2.imwrite(str(path), np.full((24, 32, 3), k % 255, np.uint8))
        else:
            path.write_bytes(b"")


# --------------------------------------------------------------------------- shared clips
def test_shared_clips_read_as_otb():
    root = shared_path("tracking")
    ds = open_dataset(f"otb:{root}")
    assert len(ds) == 12 and "Biker" in ds and "vot_bag" in ds
    assert ds._cache == {}  # nothing read until asked
    biker = ds["Biker"]
    raw = np.loadtxt(root / "Biker" / "groundtruth_rect.txt", delimiter=",")
    assert np.allclose(biker.gt, raw - [1, 1, 0, 0])  # 1-based → 0-based
    assert biker.gt.dtype == np.float64 and len(biker) == 60 == len(biker.frame_paths)
    assert biker.attributes == ("SV", "OCC", "MB", "FM", "OPR", "OV", "LR")
    assert biker.frame(0).shape == (270, 480, 3) and biker.image_size() == (480, 270)
    assert ds["Tiger1"].init_frame == 0
    assert open_dataset(f"otb100:{root}")["Tiger1"].init_frame == 5  # OTB-100 protocol skips 5 frames
    assert open_dataset(f"otb100:{root}")["Tiger1"].eval_range == (5, 60)
    # MANIFEST marks exactly these five clips as OTB-2013 sequences
    assert open_dataset(f"otb2013:{root}").names == ["Crossing", "MotorRolling", "MountainBike", "Soccer", "Tiger1"]


# --------------------------------------------------------------------------- OTB quirks
def test_otb_quirks(tmp_path):
    # two-target sequence with tab separators
    _touch_frames(tmp_path / "Jogging" / "img", 3)
    (tmp_path / "Jogging" / "groundtruth_rect.1.txt").write_text("11\t21\t5\t6\n12\t22\t5\t6\n13\t23\t5\t6\n")
    (tmp_path / "Jogging" / "groundtruth_rect.2.txt").write_text("1 1 4 4\n2 2 4 4\n3 3 4 4\n")
    # 5-digit frame names, comma separators and a NaN row
    _touch_frames(tmp_path / "Board" / "img", 3, digits=5)
    (tmp_path / "Board" / "groundtruth_rect.txt").write_text("1,1,10,10\nNaN,NaN,NaN,NaN\n3,3,10,10\n")
    # scored frame range 300–770 out of 770 images
    _touch_frames(tmp_path / "David" / "img", 770)
    (tmp_path / "David" / "groundtruth_rect.txt").write_text("5,5,20,20\n" * 471)
    ds = read_otb(tmp_path)
    assert sorted(ds.names) == ["Board", "David", "Jogging-1", "Jogging-2"]
    j1, j2 = ds["Jogging-1"], ds["Jogging-2"]
    assert np.allclose(j1.gt[0], [10, 20, 5, 6]) and np.allclose(j2.gt[2], [2, 2, 4, 4])
    assert j1.frame_paths == j2.frame_paths
    board = ds["Board"]
    assert board.frame_paths[0].name == "00001.jpg" and np.isnan(board.gt[1]).all()
    assert board.visible().tolist() == [True, False, True]
    david = ds["David"]
    assert len(david) == 471 and david.frame_paths[0].name == "0300.jpg" and david.frame_paths[-1].name == "0770.jpg"


def test_otb_malformed_lines_name_file_and_line(tmp_path):
    _touch_frames(tmp_path / "Bad" / "img", 3)
    gt = tmp_path / "Bad" / "groundtruth_rect.txt"
    gt.write_text("1,1,10,10\n2,2,ten,10\n")
    with pytest.raises(DataError, match=r"groundtruth_rect\.txt, line 2"):
        read_otb(tmp_path)["Bad"]
    gt.write_text("1,1,10,10\n2,2,10\n")
    with pytest.raises(DataError, match="line 2: expected 4 values, got 3"):
        read_otb(tmp_path)["Bad"]
    gt.write_text("1,1,10,10\n" * 5)
    with pytest.raises(DataError, match="5 boxes but .* only 3 frames"):
        read_otb(tmp_path)["Bad"]
    with pytest.raises(DataError, match="No OTB sequences"):
        read_otb(tmp_path / "Bad" / "img")


# --------------------------------------------------------------------------- VOT
def test_vot_polygons_color_frames_and_tags(tmp_path):
    (tmp_path / "list.txt").write_text("bag\n")
    _touch_frames(tmp_path / "bag" / "color", 3, digits=8)
    poly = "50,0,100,50,50,100,0,50\n"
    (tmp_path / "bag" / "groundtruth.txt").write_text(poly * 3)
    (tmp_path / "bag" / "occlusion.tag").write_text("0\n1\n")  # shorter than the sequence
    seq = read_vot(tmp_path)["bag"]
    assert seq.polygons.shape == (3, 8)
    assert np.allclose(seq.gt[0], [0, 0, 100, 100])
    assert seq.tags["occlusion"].tolist() == [0, 1, 0] and seq.attributes == ("occlusion",)
    assert seq.frame_paths[0].parent.name == "color"
    # pysot's area-preserving box: side lengths √5000 each → area 5000 = s² · 100², plus 1
    area = polygon_to_box(seq.polygons[:1], "area")[0]
    side = np.sqrt(0.5) * 100 + 1
    assert np.allclose(area[2:], [side, side]) and np.allclose(area[:2] + area[2:] / 2, [50, 50])
    (tmp_path / "bag" / "groundtruth.txt").write_text("m1,2,3\n")
    with pytest.raises(DataError, match="VOT2020"):
        read_vot(tmp_path)["bag"]


# --------------------------------------------------------------------------- GOT-10k
def test_got10k_val_and_test(tmp_path):
    val = tmp_path / "val"
    val.mkdir()
    (val / "list.txt").write_text("GOT-10k_Val_000001\n")
    seq_dir = val / "GOT-10k_Val_000001"
    _touch_frames(seq_dir, 4, digits=8)
    (seq_dir / "groundtruth.txt").write_text("1,2,3,4\n1,2,3,4\n1,2,3,4\n1,2,3,4\n")
    (seq_dir / "absence.label").write_text("0\n0\n1\n0\n")
    (seq_dir / "cover.label").write_text("8\n5\n0\n3\n")
    (seq_dir / "meta_info.ini").write_text("[METAINFO]\nobject_class: cat\nmotion_class: walking\n")
    seq = open_dataset(f"got10k:{tmp_path}?split=val")["GOT-10k_Val_000001"]
    assert np.allclose(seq.gt[0], [1, 2, 3, 4])  # read as it is
    assert seq.absent.tolist() == [False, False, True, False] and seq.cover.tolist() == [8, 5, 0, 3]
    assert seq.attributes == ("cat", "walking")
    test = tmp_path / "test" / "GOT-10k_Test_000001"
    _touch_frames(test, 3, digits=8)
    (test / "groundtruth.txt").write_text("5,5,10,10\n")
    t = read_got10k(tmp_path, "test")["GOT-10k_Test_000001"]
    assert len(t) == 3 and np.isnan(t.gt[1:]).all()
    (seq_dir / "cover.label").write_text("8\n5\n")
    with pytest.raises(DataError, match="2 flags but the sequence has 4"):
        read_got10k(tmp_path, "val")["GOT-10k_Val_000001"]


# --------------------------------------------------------------------------- LaSOT, UAV123, NfS, TrackingNet
def test_lasot_absent_flags(tmp_path):
    seq_dir = tmp_path / "cat" / "cat-1"
    _touch_frames(seq_dir / "img", 4, digits=8)
    (seq_dir / "groundtruth.txt").write_text("11,11,5,5\n0,0,0,0\n11,11,5,5\n11,11,5,5\n")
    (seq_dir / "full_occlusion.txt").write_text("0,1,0,0")
    (seq_dir / "out_of_view.txt").write_text("0,0,0,1")
    seq = read_lasot(tmp_path)["cat-1"]
    assert np.allclose(seq.gt[0], [10, 10, 5, 5]) and np.isnan(seq.gt[1]).all()
    assert seq.absent.tolist() == [False, True, False, True] and seq.attributes == ("cat",)
    assert seq.visible().tolist() == [True, False, True, False]


def test_uav123_subsequence_ranges(tmp_path):
    anno = tmp_path / "anno" / "UAV123"
    anno.mkdir(parents=True)
    (anno / "bird1_2.txt").write_text("NaN,NaN,NaN,NaN\n2,2,3,3\n2,2,3,3\n")
    (anno / "car1.txt").write_text("1,1,3,3\n1,1,3,3\n")
    _touch_frames(tmp_path / "data_seq" / "UAV123" / "bird1", 10, digits=6)
    _touch_frames(tmp_path / "data_seq" / "UAV123" / "car1", 2, digits=6)
    with pytest.raises(DataError, match="configSeqs"):
        read_uav(tmp_path)["bird1_2"]
    (tmp_path / "configSeqs.m").write_text(
        "seqs={struct('name','bird1_2','path','D:\\data_seq\\UAV123\\bird1\\','startFrame',5,'endFrame',7,"
        "'nz',6,'ext','jpg','init_rect',[0,0,0,0])};\n"
    )
    ds = read_uav(tmp_path)
    seq = ds["bird1_2"]
    assert [p.name for p in seq.frame_paths] == ["000005.jpg", "000006.jpg", "000007.jpg"]
    assert np.isnan(seq.gt[0]).all() and np.allclose(seq.gt[1], [1, 1, 3, 3])
    assert len(ds["car1"]) == 2


def test_nfs_vatic_annotations(tmp_path):
    base = tmp_path / "ball" / "240"
    _touch_frames(base / "ball", 3, digits=5)
    (base / "ball.txt").write_text(
        '1 10 20 30 60 1 0 0 0 "ball"\n1 12 20 32 60 2 0 1 0 "ball"\n1 0 0 0 0 3 1 0 0 "ball"\n'
    )
    seq = read_nfs(tmp_path, fps=240)["ball"]
    assert np.allclose(seq.gt[0], [10, 20, 20, 40]) and np.isnan(seq.gt[2]).all()
    assert seq.absent.tolist() == [False, False, True] and seq.cover.tolist() == [8, 0, 8]


def test_trackingnet_first_frame_only(tmp_path):
    _touch_frames(tmp_path / "TEST" / "frames" / "abc", 3, digits=1, start=0)
    (tmp_path / "TEST" / "anno").mkdir(parents=True)
    (tmp_path / "TEST" / "anno" / "abc.txt").write_text("1.5,2.5,30,40\n")
    seq = read_trackingnet(tmp_path)["abc"]
    assert len(seq) == 3 and np.allclose(seq.gt[0], [1.5, 2.5, 30, 40]) and np.isnan(seq.gt[2]).all()


# --------------------------------------------------------------------------- plain sources and specs
def test_video_file_and_image_folder(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    assert writer.isOpened()
    for k in range(5):
        writer.write(np.full((48, 64, 3), 40 * k, np.uint8))
    writer.release()
    seq = open_dataset(f"video:{path}?box=4,5,20,10")["clip"]
    assert len(seq) == 5 and np.allclose(seq.init_box, [4, 5, 20, 10]) and np.isnan(seq.gt[1:]).all()
    frames = list(seq.frames())
    assert len(frames) == 5 and frames[0].shape == (48, 64, 3)
    assert abs(int(seq.frame(3).mean()) - 120) < 8
    _touch_frames(tmp_path / "imgs", 4, real=True)
    folder = open_dataset(f"folder:{tmp_path / 'imgs'}?box=1,1,5,5")
    assert len(folder[0]) == 4 and folder[0].frame(2).shape == (24, 32, 3)
    with pytest.raises(DataError, match="box"):
        open_dataset(f"video:{path}")


def test_specs_and_errors(tmp_path):
    assert parse_spec("got10k:/data/GOT?split=val") == ("got10k", "/data/GOT", {"split": "val"})
    with pytest.raises(DataError, match="has no kind"):
        open_dataset("just/a/path")
    with pytest.raises(DataError, match="Unknown dataset kind"):
        open_dataset(f"imagenet:{tmp_path}")
    with pytest.raises(DataError, match="does not exist"):
        open_dataset(f"otb:{tmp_path / 'missing'}")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(DataError, match="is empty"):
        read_numbers(tmp_path / "empty.txt")
