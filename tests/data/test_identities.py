"""Identity dataset readers: generated fixtures in tmp_path, then the shared real data (skipped if absent)."""

from __future__ import annotations

import zipfile

import cv2
import numpy as np
import pytest
from conftest import shared_path

from siamkit.data import identities as ids
from siamkit.errors import DataError


def _png(value: int, size=(8, 6)) -> bytes:
    ok, buf = cv2.imencode(".png", np.full(size, value, np.uint8))
    assert ok
    return buf.tobytes()


# ---------------------------------------------------------------------------- ORL


def _orl(root, subjects=(1, 2, 10), per=3):
    for s in subjects:
        (root / f"s{s}").mkdir(parents=True)
        for k in range(1, per + 1):
            cv2.imwrite(str(root / f"s{s}" / f"{k}.pgm"), np.full((7, 5), 10 * s + k, np.uint8))
    (root / "README").write_text("not a subject")
    return root


def test_orl_layout_labels_in_numeric_subject_order(tmp_path):
    ds = ids.orl_faces(_orl(tmp_path / "orl"))
    assert len(ds) == 9 and ds.num_classes == 3
    assert ds.identities() == ["s1", "s2", "s10"]  # s10 after s2, not after s1
    image, label = ds[8]
    assert label == 2 and image.shape == (7, 5) and image.dtype == np.uint8 and image[0, 0] == 103
    test = ds.split_identities(["s10"])
    assert test.labels.tolist() == [0, 0, 0] and test.identities() == ["s10"]


def test_orl_errors_name_the_path_and_layout(tmp_path):
    with pytest.raises(DataError, match=r"not found: .*missing\. Expected layout: root/s1"):
        ids.orl_faces(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="No subject folders"):
        ids.orl_faces(tmp_path / "empty")
    (tmp_path / "bad" / "s1").mkdir(parents=True)
    with pytest.raises(DataError, match="holds no .pgm"):
        ids.orl_faces(tmp_path / "bad")


def test_corrupt_image_raises_dataerror(tmp_path):
    root = _orl(tmp_path / "orl", subjects=(1,), per=1)
    (root / "s1" / "1.pgm").write_bytes(b"garbage")
    with pytest.raises(DataError, match="Cannot decode"):
        ids.orl_faces(root).read(0)


# ---------------------------------------------------------------------------- Omniglot


def _omniglot_zip(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def test_omniglot_zip_reader(tmp_path):
    members = {
        f"images_background/Alpha/character0{c}/09{c}{d}_0{d}.png": _png(10 * c + d)
        for c in (1, 2) for d in (1, 2, 3)
    }
    members["images_background/Beta/character01/0999_07.png"] = _png(200)
    _omniglot_zip(tmp_path / "images_background.zip", members)
    ds = ids.omniglot(tmp_path)  # the folder holding the zip
    assert len(ds) == 7 and ds.num_classes == 3
    assert ds.identities() == ["Alpha/character01", "Alpha/character02", "Beta/character01"]
    assert [it.group for it in ds.items].count("Alpha") == 6
    assert ds.items[-1].camera == 7  # drawer number from NNNN_DD.png
    assert ds.read(4)[0, 0] == 22 and ds[6][1] == 2
    import pickle

    clone = pickle.loads(pickle.dumps(ds))  # zip handles are re-opened per process
    assert clone.read(6)[0, 0] == 200


def test_omniglot_malformed(tmp_path):
    _omniglot_zip(tmp_path / "a.zip", {"images_background/flat.png": _png(1)})
    with pytest.raises(DataError, match="No Omniglot images .* found images_background/flat.png"):
        ids.omniglot(tmp_path / "a.zip")
    (tmp_path / "b.zip").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a valid zip"):
        ids.omniglot(tmp_path / "b.zip")
    with pytest.raises(DataError, match="Archive not found"):
        ids.omniglot(tmp_path / "nowhere")


def test_omniglot_runs_reader(tmp_path):
    members = {f"run01/training/class0{c}.png": _png(c) for c in (1, 2, 3)}
    members.update({f"run01/test/item0{c}.png": _png(100 + c) for c in (1, 2, 3)})
    members["run01/class_labels.txt"] = (
        "run01/test/item01.png run01/training/class03.png\n"
        "run01/test/item02.png run01/training/class01.png\n"
        "run01/test/item03.png run01/training/class02.png\n"
    )
    _omniglot_zip(tmp_path / "all_runs.zip", members)
    (run,) = ids.omniglot_runs(tmp_path)
    assert run.answers.tolist() == [2, 0, 1]
    assert run.support[:, 0, 0].tolist() == [1, 2, 3] and run.queries[:, 0, 0].tolist() == [101, 102, 103]
    members["run01/class_labels.txt"] = "run01/test/item01.png run01/training/class09.png\n"
    _omniglot_zip(tmp_path / "broken.zip", members)
    with pytest.raises(DataError, match="missing image"):
        ids.omniglot_runs(tmp_path / "broken.zip")


# ---------------------------------------------------------------------------- Market-1501 / signatures / folders


def test_market_names_junk_and_distractors(tmp_path):
    folder = tmp_path / "m" / "bounding_box_test"
    folder.mkdir(parents=True)
    for name in ("0002_c1s1_000451_03.jpg", "0002_c6s2_000001_01.jpg", "-1_c3s1_000001_00.jpg",
                 "0000_c2s1_000002_00.jpg", "0010_c4s3_000003_02.jpg"):
        cv2.imwrite(str(folder / name), np.zeros((16, 8, 3), np.uint8))
    ds = ids.market1501(tmp_path / "m", "bounding_box_test")
    assert len(ds) == 4  # junk (-1) dropped
    assert ids.pids(ds).tolist() == [0, 2, 2, 10]  # distractor 0 kept
    assert ds.cameras.tolist() == [1, 0, 5, 3]  # 0-based cameras
    assert ds.labels.tolist() == [0, 1, 1, 2] and ds.read(0).shape == (16, 8, 3)
    assert ids.parse_market_name("1501_c6s4_001977_02.jpg") == (1501, 5)
    with pytest.raises(DataError, match="not a Market-1501 file name"):
        ids.parse_market_name("person1.jpg")
    with pytest.raises(DataError, match="Unknown Market-1501 split"):
        ids.market1501(tmp_path / "m", "train")
    with pytest.raises(DataError, match="bounding_box_train"):
        ids.market1501(tmp_path / "m", "query")


def test_signatures_genuine_and_forgeries(tmp_path):
    for lang, writer in (("Bengali", "001"), ("Hindi", "002")):
        folder = tmp_path / "sig" / lang / writer
        folder.mkdir(parents=True)
        for kind, n in (("G", 2), ("F", 3)):
            for i in range(1, n + 1):
                cv2.imwrite(str(folder / f"X-S-{int(writer)}-{kind}-{i:02d}.tif"), np.zeros((5, 9), np.uint8))
    ds = ids.signatures(tmp_path / "sig")
    assert ds.identities() == ["Bengali/001", "Hindi/002"]
    assert sum(it.genuine for it in ds.items) == 4 and len(ds) == 10
    assert {it.group for it in ds.items} == {"Bengali", "Hindi"}
    for f in (tmp_path / "sig" / "Hindi" / "002").glob("*-G-*"):
        f.unlink()
    with pytest.raises(DataError, match="no genuine"):
        ids.signatures(tmp_path / "sig")


def test_image_folder(tmp_path):
    for who, n in (("alice", 3), ("bob", 1), ("carol", 2)):
        (tmp_path / who).mkdir()
        for i in range(n):
            cv2.imwrite(str(tmp_path / who / f"{i}.png"), np.full((4, 4, 3), i, np.uint8))
    (tmp_path / "alice" / "notes.txt").write_text("x")
    ds = ids.image_folder(tmp_path, min_images=2)
    assert ds.identities() == ["alice", "carol"] and ds.labels.tolist() == [0, 0, 0, 1, 1]
    assert ds.read(0).shape == (4, 4, 3)
    with pytest.raises(DataError, match="one folder per identity"):
        ids.image_folder(tmp_path / "alice")


# ---------------------------------------------------------------------------- shared real data


def test_shared_omniglot_background_and_runs():
    root = shared_path("metric", "omniglot")
    ds = ids.omniglot(root)
    assert len(ds) == 19280 and ds.num_classes == 964 and len({it.group for it in ds.items}) == 30
    assert ds.read(0).shape == (105, 105)
    runs = ids.omniglot_runs(root)
    assert len(runs) == 20 and all(r.support.shape == (20, 105, 105) for r in runs)
    # independent parse of the first line of run01's answers
    with zipfile.ZipFile(root / "all_runs.zip") as z:
        first = z.read("run01/class_labels.txt").decode().split()[1]
    assert runs[0].answers[0] == int(first[-6:-4]) - 1
    assert sorted(np.bincount(runs[0].answers, minlength=20).tolist()) == [1] * 20  # each class once


def test_shared_orl_signatures_market():
    orl = ids.orl_faces(shared_path("metric", "orl_faces"))
    assert len(orl) == 400 and orl.num_classes == 40 and orl.read(0).shape == (112, 92)
    sig = ids.signatures(shared_path("metric", "signatures", "bhsig260_subset"))
    assert len(sig) == 4 * 54 and sum(it.genuine for it in sig.items) == 4 * 24
    root = shared_path("metric", "market1501_subset")
    train = ids.market1501(root, "bounding_box_train")
    query, gallery = ids.market1501(root, "query"), ids.market1501(root, "bounding_box_test")
    assert (len(train), train.num_classes, len(query), len(gallery)) == (1479, 75, 272, 1216)
    assert not set(ids.pids(train)) & set(ids.pids(query))
    first = sorted(p.name for p in (root / "query").glob("*.jpg"))[0]
    assert (ids.pids(query)[0], query.cameras[0]) == (int(first[:4]), int(first[6]) - 1)
