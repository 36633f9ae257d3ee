"""Evaluation runner: resume after an interrupted run, result files round-trip, VOT supervised restarts."""

import json

import cv2
import numpy as np
import pytest
from conftest import shared_path

from siamkit.config import TRACKERS
from siamkit.data.benchmarks import open_dataset
from siamkit.data.sequences import Sequence
from siamkit.errors import ConfigError, DataError
from siamkit.eval.tracking import results_io as rio
from siamkit.eval.tracking.runner import EvalJob, evaluate_run, run_evaluation, run_supervised
from siamkit.trackers.base import Tracker, TrackResult


class _Static(Tracker):
    """Returns its initial box forever; counts init calls and can fail on purpose."""

    inits: list[tuple] = []
    fail_on: set[int] = set()

    def _init(self, frame, box):
        _Static.inits.append(tuple(frame.shape))
        if len(_Static.inits) in _Static.fail_on:
            raise RuntimeError("simulated crash")
        self.box = box.copy()

    def _track(self, frame):
        return TrackResult(box=self.box.copy(), score=0.5)


@pytest.fixture(autouse=True)
def _static_tracker():
    """Register the test tracker only while this module's tests run (other tests list the registry)."""
    TRACKERS.register("test-evt-static")(_build_static)
    yield
    TRACKERS._builders.pop("test-evt-static", None)


def _build_static(weights=None, device=None, **options):
    return _Static()


@pytest.fixture
def clips():
    return shared_path("tracking")


def test_resume_after_interrupted_run(tmp_path, clips):
    _Static.inits.clear()
    _Static.fail_on = {2}  # the second sequence crashes
    job = EvalJob("test-evt-static", f"otb:{clips}", str(tmp_path / "run"), max_frames=6)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_evaluation(job, sequences=["Biker", "Crossing", "Soccer"])
    assert (tmp_path / "run" / "Biker.txt").is_file()
    assert not (tmp_path / "run" / "Crossing.txt").exists()
    before = (tmp_path / "run" / "Biker.txt").stat().st_mtime_ns
    _Static.inits.clear()
    _Static.fail_on = set()
    metrics = run_evaluation(job, sequences=["Biker", "Crossing", "Soccer"])
    assert len(_Static.inits) == 2  # only Crossing and Soccer ran again
    assert (tmp_path / "run" / "Biker.txt").stat().st_mtime_ns == before
    assert metrics["n_sequences"] == 3 and set(metrics["sequences"]) == {"Biker", "Crossing", "Soccer"}
    # a static tracker scores exactly IoU(init box, GT) per frame: check against the GT directly
    ds = open_dataset(f"otb:{clips}")
    gt = ds["Soccer"].gt[:6]
    from siamkit.geometry import iou

    expected = np.mean([(iou(gt[0], g) > np.linspace(0, 1, 21)).mean() for g in gt])
    assert metrics["sequences"]["Soccer"]["success_auc"] == pytest.approx(expected)
    # nothing left to do: a third call runs no tracker at all
    _Static.inits.clear()
    run_evaluation(job, sequences=["Biker", "Crossing", "Soccer"])
    assert _Static.inits == []


def test_different_run_in_same_folder_is_refused(tmp_path, clips):
    job = EvalJob("test-evt-static", f"otb:{clips}", str(tmp_path), max_frames=3)
    run_evaluation(job, sequences=["Biker"])
    other = EvalJob("test-evt-static", f"otb:{clips}", str(tmp_path), max_frames=4)
    with pytest.raises(ConfigError, match="different run"):
        run_evaluation(other, sequences=["Biker"])
    with pytest.raises(ConfigError, match="Unknown protocol"):
        EvalJob("x", "otb:y", str(tmp_path), protocol="eao")


def test_saved_files_round_trip_through_readers(tmp_path, clips):
    job = EvalJob("test-evt-static", f"otb:{clips}", str(tmp_path / "ope"), max_frames=5)
    run_evaluation(job, sequences=["Biker"])
    saved = rio.read_ope(tmp_path / "ope", "Biker", one_based=True)
    seq = open_dataset(f"otb:{clips}")["Biker"]
    assert np.allclose(saved["boxes"], np.tile(seq.gt[0], (5, 1)))
    assert saved["times"].shape == (5,) and saved["scores"][1] == 0.5
    # the OPE result is an OTB ground-truth file: the OTB reader gives back the same boxes
    fake = tmp_path / "as_otb" / "Biker"
    (fake / "img").mkdir(parents=True)
    for p in seq.frame_paths[:5]:
        (fake / "img" / p.name).write_bytes(b"")
    (fake / "groundtruth_rect.txt").write_bytes((tmp_path / "ope" / "Biker.txt").read_bytes())
    assert np.allclose(open_dataset(f"otb:{tmp_path / 'as_otb'}")["Biker"].gt, saved["boxes"])
    # GOT-10k layout
    boxes = np.array([[1.25, 2.5, 30.0, 40.0], [np.nan, np.nan, np.nan, np.nan]])
    rio.write_got10k(tmp_path / "got", "seq", boxes, [0.01, 0.02])
    back = rio.read_got10k(tmp_path / "got", "seq")
    assert np.allclose(back["boxes"], boxes, equal_nan=True) and np.allclose(back["times"], [0.01, 0.02])
    assert (tmp_path / "got" / "seq" / "seq_001.txt").read_text().splitlines()[0] == "1.25,2.5,30,40"
    # VOT baseline layout
    traj = [[1], [1.5, 2.0, 3.0, 4.0], [2], [0], [0], [1]]
    rio.write_vot(tmp_path / "vot", "bag", traj, np.zeros(6))
    assert rio.read_vot(tmp_path / "vot", "bag") == traj
    assert (tmp_path / "vot" / "baseline" / "bag" / "bag_001.txt").read_text().splitlines()[:3] == [
        "1",
        "1.5,2,3,4",
        "2",
    ]
    (tmp_path / "vot" / "baseline" / "bag" / "bag_001.txt").write_text("1\n1,2\n")
    with pytest.raises(DataError, match="line 2"):
        rio.read_vot(tmp_path / "vot", "bag")


class _Scripted(Tracker):
    """Replays a fixed list of boxes (one per track call)."""

    def __init__(self, boxes):
        super().__init__()
        self.boxes = list(boxes)

    def _init(self, frame, box):
        pass

    def _track(self, frame):
        return TrackResult(box=np.asarray(self.boxes.pop(0), dtype=np.float64), score=1.0)


def test_supervised_run_reinitialises_five_frames_after_failure(tmp_path):
    paths = []
    for k in range(12):
        path = tmp_path / f"{k:04d}.png"
        cv2.imwrite(str(path), np.zeros((50, 50, 3), np.uint8))
        paths.append(path)
    gt = np.tile([10.0, 10.0, 10.0, 10.0], (12, 1))
    seq = Sequence("s", gt, frame_paths=paths)
    good, bad = [10, 10, 8, 10], [40, 40, 5, 5]
    tracker = _Scripted([good, bad, good, good, good, good, good])
    out = run_supervised(tracker, seq, skip=5)
    # frame 0 init, 1 ok, 2 failure → frames 3–6 skipped, 7 re-init, 8–11 tracked
    codes = [e if len(e) == 1 else "box" for e in out["trajectory"]]
    assert codes == [[1], "box", [2], [0], [0], [0], [0], [1], "box", "box", "box", "box"]
    assert out["times"].shape == (12,)


def test_parallel_workers_and_vot_protocol(tmp_path, clips):
    job = EvalJob("opencv:kcf", f"otb:{clips}", str(tmp_path / "vot"), protocol="vot", max_frames=15)
    metrics = run_evaluation(job, sequences=["Biker", "vot_bag"], workers=2)
    assert metrics["protocol"] == "vot" and 0 < metrics["accuracy"] <= 1
    assert (tmp_path / "vot" / "baseline" / "vot_bag" / "vot_bag_001.txt").is_file()
    again = evaluate_run(tmp_path / "vot", write=False)
    assert again["accuracy"] == pytest.approx(metrics["accuracy"])
    assert json.loads((tmp_path / "vot" / "metrics.json").read_text())["eao_by_year"].keys() == {
        "vot2016",
        "vot2017",
        "vot2018",
        "vot2019",
    }


@pytest.mark.parametrize(
    ("protocol", "path", "key"),
    [
        ("got10k", "Biker/Biker_001.txt", "ao"),
        ("lasot", "Biker.txt", "overall"),
        ("vot-lt", "longterm/Biker/Biker_001_confidence.value", "f1"),
    ],
)
def test_other_protocols_write_their_layouts(tmp_path, clips, protocol, path, key):
    job = EvalJob("test-evt-static", f"otb:{clips}", str(tmp_path), protocol=protocol, max_frames=5)
    metrics = run_evaluation(job, sequences=["Biker"])
    assert (tmp_path / path).is_file() and key in metrics and metrics["protocol"] == protocol
    if protocol == "got10k":  # frame 0 excluded: 4 scored frames, IoU of the static box with each GT
        gt = open_dataset(f"otb:{clips}")["Biker"].gt[:5]
        from siamkit.eval.tracking.ope import box_iou

        assert metrics["frames"] == 4
        assert metrics["ao"] == pytest.approx(box_iou(np.tile(gt[0], (4, 1)), gt[1:], bound=(480, 270)).mean())


def test_vot_dataset_with_polygons_end_to_end(tmp_path):
    root = tmp_path / "vot2018"
    (root / "diamond" / "color").mkdir(parents=True)
    (root / "list.txt").write_text("diamond\n")
    for k in range(1, 13):
        cv2.imwrite(str(root / "diamond" / "color" / f"{k:08d}.jpg"), np.full((120, 120, 3), 90, np.uint8))
    (root / "diamond" / "groundtruth.txt").write_text("60,10,110,60,60,110,10,60\n" * 12)
    job = EvalJob("test-evt-static", f"vot:{root}", str(tmp_path / "out"), protocol="vot")
    metrics = run_evaluation(job)
    # the static tracker keeps the enclosing box of a diamond: overlap = 5000 / 10000 on every frame
    assert metrics["lost_number"] == 0 and metrics["robustness"] == 0
    assert metrics["accuracy"] == pytest.approx(0.5)  # frames 10 and 11 after the 10-frame burn-in
    assert np.allclose(metrics["expected_overlap_curve"][1:], 0.5)
    assert np.isnan(metrics["eao"])  # 12 frames are shorter than VOT2018's interval 100–356
    assert rio.read_vot(tmp_path / "out", "diamond")[0] == [1.0]


def test_absent_policy_is_a_scoring_choice(tmp_path):
    seq_dir = tmp_path / "otb" / "Gap"
    (seq_dir / "img").mkdir(parents=True)
    for k in range(1, 7):
        cv2.imwrite(str(seq_dir / "img" / f"{k:04d}.jpg"), np.full((40, 40, 3), 100, np.uint8))
    (seq_dir / "groundtruth_rect.txt").write_text("11,11,10,10\n" * 3 + "NaN,NaN,NaN,NaN\n" * 3)
    skip = run_evaluation(EvalJob("test-evt-static", f"otb:{tmp_path / 'otb'}", str(tmp_path / "a")))
    fail = run_evaluation(
        EvalJob("test-evt-static", f"otb:{tmp_path / 'otb'}", str(tmp_path / "b"), absent_policy="failure")
    )
    assert skip["overall"]["success_auc"] == pytest.approx(20 / 21)  # 3 visible frames, all perfect
    assert fail["overall"]["success_auc"] == pytest.approx(20 / 21 / 2)  # 3 more frames counted as misses
    assert fail["absent_policy"] == "failure"
