"""Evaluation and gallery folders: failed runs bind nothing, corrupt files are one line, workers die with the parent
(issue 17 rows 8, 9, 10, 11)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest


def otb(root, name="Tiny", frames=4, boxes=None):
    seq = root / name / "img"
    seq.mkdir(parents=True)
    for i in range(frames):
        image = np.full((48, 64, 3), 30, np.uint8)
        cv2.rectangle(image, (20 + i, 10), (35 + i, 30), (250, 250, 250), -1)
        cv2.imwrite(str(seq / f"{i + 1:04d}.jpg"), image)
    n = frames if boxes is None else boxes
    (root / name / "groundtruth_rect.txt").write_text("".join(f"{21 + i},11,15,20\n" for i in range(n)))
    return root


def test_a_failed_first_eval_does_not_lock_the_folder(tmp_path, cli):
    data = otb(tmp_path / "data")
    out = str(tmp_path / "run")
    code, _, err = cli("eval", "--tracker", "no-such-tracker", "--dataset", f"otb:{data}", "--out", out)
    assert code == 2
    code, stdout, err = cli("eval", "--tracker", "opencv:kcf", "--dataset", f"otb:{data}", "--out", out)
    assert code == 0, err
    assert json.loads((tmp_path / "run" / "run.json").read_text())["tracker"] == "opencv:kcf"


def test_a_finished_run_still_guards_its_folder(tmp_path, cli):
    data = otb(tmp_path / "data")
    out = str(tmp_path / "run")
    assert cli("eval", "--tracker", "opencv:kcf", "--dataset", f"otb:{data}", "--out", out)[0] == 0
    code, _, err = cli("eval", "--tracker", "opencv:mil", "--dataset", f"otb:{data}", "--out", out)
    assert code == 2 and "different run" in err


def test_corrupt_run_json_is_one_line(tmp_path, cli):
    data = otb(tmp_path / "data")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text('{"tracker": "opencv:kcf", ')
    code, _, err = cli("eval", "--tracker", "opencv:kcf", "--dataset", f"otb:{data}", "--out",
                       str(tmp_path / "run"))
    assert code == 2 and "run.json is corrupt" in err and err.count("\n") == 1
    code, _, err = cli("report", str(tmp_path / "run"))
    assert code == 2 and "corrupt" in err and "Traceback" not in err


def test_ground_truth_shorter_than_the_video_is_refused(tmp_path, cli):
    data = otb(tmp_path / "data", frames=5, boxes=3)
    code, _, err = cli("eval", "--tracker", "opencv:kcf", "--dataset", f"otb:{data}", "--out",
                       str(tmp_path / "run"))
    assert code == 2 and "ground truth has 2 box(es) fewer" in err
    assert not (tmp_path / "run").exists()


def test_unwritable_eval_folder_fails_before_tracking(tmp_path, cli):
    data = otb(tmp_path / "data")
    (tmp_path / "file").write_text("x")
    code, _, err = cli("eval", "--tracker", "opencv:kcf", "--dataset", f"otb:{data}", "--out",
                       str(tmp_path / "file" / "run"))
    assert code == 2 and "is not a folder" in err


def _gallery(tmp_path):
    from siamkit.index import Gallery

    gallery = Gallery.from_arrays(np.random.default_rng(0).normal(size=(5, 4)), info={"model": "orl_faces"})
    return gallery.save(tmp_path / "gallery")


@pytest.mark.parametrize("victim", ["index.faiss", "vectors.npy", "gallery.json"])
def test_corrupt_gallery_files_are_one_line(tmp_path, cli, victim):
    folder = _gallery(tmp_path)
    (folder / victim).write_bytes(b"\x00garbage" * 3)
    image = tmp_path / "q.png"
    cv2.imwrite(str(image), np.zeros((8, 8), np.uint8))
    code, _, err = cli("search", str(folder), str(image))
    assert code == 2 and "corrupt" in err and err.count("\n") == 1


def test_index_build_batch_size_zero_is_one_line(tmp_path, cli):
    (tmp_path / "imgs").mkdir()
    cv2.imwrite(str(tmp_path / "imgs" / "a.png"), np.zeros((8, 8), np.uint8))
    code, _, err = cli("index", "build", str(tmp_path / "imgs"), "--model", "orl_faces", "--out",
                       str(tmp_path / "g"), "--batch-size", "0")
    assert code == 2 and "batch-size" in err and "Traceback" not in err
    from siamkit.errors import ConfigError
    from siamkit.index import Gallery

    with pytest.raises(ConfigError, match="batch_size"):
        Gallery.from_folder(tmp_path / "imgs", "orl_faces", batch_size=0)


PARENT = """
import sys, time
from concurrent.futures import ProcessPoolExecutor
import multiprocessing, os
from siamkit.eval.tracking.runner import _init_worker
if __name__ == "__main__":
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                               initargs=(os.getpid(),))
    print(pool.submit(os.getpid).result(), flush=True)
    pool.submit(time.sleep, 120)
    time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_eval_workers_die_with_a_killed_parent(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        worker = int(parent.stdout.readline())
        assert _alive(worker)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.time() + 5
        while _alive(worker) and time.time() < deadline:
            time.sleep(0.05)
        assert not _alive(worker), "the worker outlived its parent"
    finally:
        parent.kill()
