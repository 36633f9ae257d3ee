"""Tracking measures on hand-built cases: OPE success/precision, VOT A/R/EAO, long-term F1, GOT-10k AO."""

import numpy as np
import pytest

from siamkit.errors import DataError
from siamkit.eval.tracking import got10k, ope, vot


def _boxes(n=10, box=(10.0, 20.0, 40.0, 40.0)):
    return np.tile(np.asarray(box, dtype=np.float64), (n, 1))


def _raster_iou(a, b, size=200):
    """Independent IoU of integer boxes by painting pixels."""
    ma = np.zeros((size, size), bool)
    mb = np.zeros((size, size), bool)
    ma[a[1] : a[1] + a[3], a[0] : a[0] + a[2]] = True
    mb[b[1] : b[1] + b[3], b[0] : b[0] + b[2]] = True
    union = (ma | mb).sum()
    return (ma & mb).sum() / union if union else 0.0


def test_perfect_tracker_scores_20_of_21():
    gt = _boxes()
    s = ope.score_sequence(gt.copy(), gt)
    assert s.summary()["success_auc"] == pytest.approx(20 / 21)
    assert s.summary()["precision_20px"] == 1.0
    assert s.success[-1] == 0.0  # IoU 1 is not > 1 (strict)


def test_always_off_by_exactly_20px():
    gt = _boxes()
    pred = gt.copy()
    pred[:, 0] += 20.0  # 40×40 box shifted by 20 px: IoU = 800 / 2400 = 1/3
    s = ope.score_sequence(pred, gt)
    assert s.precision[20] == 1.0  # error 20 ≤ 20
    assert s.precision[19] == 0.0
    assert np.allclose(s.ious, 1 / 3)
    # thresholds 0, 0.05, …, 0.30 are below 1/3: 7 of 21
    assert s.summary()["success_auc"] == pytest.approx(7 / 21)
    pred[:, 0] += 1e-9
    assert ope.score_sequence(pred, gt).summary()["precision_20px"] == 0.0


def test_iou_matches_pixel_painting():
    rng = np.random.default_rng(0)
    a = np.column_stack([rng.integers(0, 100, 200), rng.integers(0, 100, 200), rng.integers(1, 90, (200, 2))])
    b = np.column_stack([rng.integers(0, 100, 200), rng.integers(0, 100, 200), rng.integers(1, 90, (200, 2))])
    ours = ope.box_iou(a, b)
    ref = np.array([_raster_iou(x, y) for x, y in zip(a, b, strict=True)])
    assert np.allclose(ours, ref, atol=1e-12)
    assert ours.dtype == np.float64


def test_nan_ground_truth_frames_are_skipped_or_counted():
    gt = _boxes(10)
    gt[[3, 7]] = np.nan
    pred = gt.copy()
    pred[[3, 7]] = (500.0, 500.0, 5.0, 5.0)  # garbage where there is no target
    skip = ope.score_sequence(pred, gt, absent_policy="skip")
    assert skip.denominator == 8
    assert skip.summary()["success_auc"] == pytest.approx(20 / 21)
    fail = ope.score_sequence(pred, gt, absent_policy="failure")
    assert fail.summary()["success_auc"] == pytest.approx(20 / 21 * 8 / 10)
    absent = np.zeros(10, bool)
    absent[0] = True
    assert ope.score_sequence(pred, gt, absent=absent).denominator == 7


def test_eval_range_and_nan_predictions():
    gt = _boxes(10)
    pred = gt.copy()
    pred[:5] = np.nan  # before the init frame: not scored
    s = ope.score_sequence(pred, gt, eval_range=(5, 10))
    assert s.denominator == 5 and s.summary()["success_auc"] == pytest.approx(20 / 21)
    s = ope.score_sequence(pred, gt)
    assert s.summary()["precision_20px"] == pytest.approx(0.5)  # NaN prediction = miss


def test_normalised_precision_both_conventions():
    gt = _boxes(4, (0.0, 0.0, 100.0, 50.0))
    pred = gt.copy()
    pred[:, 0] += 10.0  # normalised error 10/100 = 0.1
    summary = ope.score_sequence(pred, gt).summary()
    assert summary["norm_precision_at_0.20"] == 1.0
    assert summary["norm_precision_auc"] == pytest.approx(41 / 51)  # thresholds 0.10 … 0.50
    pred[:, 1] += 10.0  # + 10/50 vertically: sqrt(0.1² + 0.2²) = 0.2236
    assert ope.score_sequence(pred, gt).summary()["norm_precision_at_0.20"] == 0.0


def test_aggregate_averages_sequence_curves_and_attributes():
    gt = _boxes(10)
    a = ope.score_sequence(gt, gt, name="a", attributes=("OCC",))
    shifted = gt.copy()
    shifted[:, 0] += 20
    b = ope.score_sequence(shifted, gt, name="b", attributes=("OCC", "SV"))
    overall = ope.aggregate([a, b])
    assert overall["success_auc"] == pytest.approx((20 / 21 + 7 / 21) / 2)
    attrs = ope.by_attribute([a, b])
    assert attrs["SV"]["success_auc"] == pytest.approx(7 / 21)
    assert attrs["OCC"]["sequences"] == 2


def test_length_mismatch_is_a_data_error():
    with pytest.raises(DataError, match="3 predicted boxes for 4"):
        ope.score_sequence(_boxes(3), _boxes(4), name="x")


# --------------------------------------------------------------------------- VOT
def test_polygon_overlap_by_hand():
    diamond = [50, 0, 100, 50, 50, 100, 0, 50]  # area 5000
    assert vot.region_overlap([0, 0, 100, 100], diamond) == pytest.approx(0.5)
    assert vot.region_overlap([50, 0, 50, 100], diamond) == pytest.approx(2500 / 7500)
    assert vot.region_overlap([200, 200, 5, 5], diamond) == 0.0
    assert np.isnan(vot.region_overlap([1], diamond))
    # clipping to the image: the GT box hangs 10 px out of a 100-px-wide frame
    assert vot.region_overlap([90, 0, 10, 10], [90, 0, 20, 10], bound=(100, 100)) == pytest.approx(1.0)
    assert vot.region_overlap([90, 0, 10, 10], [90, 0, 20, 10]) == pytest.approx(0.5)


GT8 = np.tile([0.0, 0.0, 10.0, 10.0], (8, 1))
TRAJ = [[1], [0, 0, 8, 10], [0, 0, 6, 10], [2], [0], [1], [0, 0, 5, 10], [0, 0, 5, 10]]


def test_eao_on_a_hand_computed_failure_pattern():
    # skip 2: failure at 3 → re-init at 5. Segment 0 = frames 0..5 → [0, .8, .6, 0, 0, 0] zero-padded to 8;
    # segment 1 = frames 5..7 → [0, .5, .5], not padded.
    curve = vot.expected_overlap_curve({"s": [TRAJ]}, {"s": GT8}, skip=2)
    expected = [1.0, (0.8 + 0.5) / 2, (0.7 + 0.5) / 2, 1.4 / 3, 1.4 / 4, 1.4 / 5, 1.4 / 6, 1.4 / 7]
    assert np.allclose(curve, expected, atol=1e-12)
    assert vot.eao_from_curve(curve, (2, 4)) == pytest.approx((0.65 + 0.6 + 1.4 / 3) / 3)


def test_accuracy_robustness_with_burn_in():
    result = vot.accuracy_robustness({"s": [TRAJ]}, {"s": GT8}, burnin=2)
    # burn-in hides frames 0,1 and 5,6: left .6 (frame 2) and .5 (frame 7)
    assert result["accuracy"] == pytest.approx(0.55)
    assert result["lost_number"] == 1.0
    assert result["robustness"] == pytest.approx(100 / 8)
    two = vot.accuracy_robustness({"s": [TRAJ, TRAJ]}, {"s": GT8}, burnin=2)
    assert two["lost_number"] == 1.0 and two["accuracy"] == pytest.approx(0.55)


def test_eao_intervals_are_the_published_ones():
    assert vot.EAO_INTERVALS["vot2016"] == (108, 371)
    assert vot.EAO_INTERVALS["vot2018"] == (100, 356)
    assert vot.EAO_INTERVALS["vot2019"] == (46, 291)
    curve = np.linspace(1, 0, 400)
    assert vot.eao_from_curve(curve, "vot2018") == pytest.approx(curve[99:356].mean())
    with pytest.raises(DataError):
        vot.eao_from_curve(curve, "vot2099")


def test_longterm_precision_recall_f1():
    gt = np.tile([0.0, 0.0, 10.0, 10.0], (5, 1))
    gt[[3, 4]] = np.nan  # target absent
    pred = np.tile([0.0, 0.0, 10.0, 10.0], (5, 1))
    honest = vot.evaluate_longterm({"s": pred}, {"s": np.array([1, 1, 1, 0.1, 0.1])}, {"s": gt})
    assert honest["f1"] == pytest.approx(1.0)
    overconfident = vot.evaluate_longterm({"s": pred}, {"s": np.ones(5)}, {"s": gt})
    # every frame reported: precision (1 + 1 + 0 + 0) / 4, recall 2 / 2
    assert overconfident["precision"] == pytest.approx(0.5)
    assert overconfident["recall"] == pytest.approx(1.0)
    assert overconfident["f1"] == pytest.approx(2 * 0.5 / 1.5)


# --------------------------------------------------------------------------- GOT-10k
class _Seq:
    def __init__(self, gt, cover, size):
        self.name, self.gt, self.cover, self._size = "g", gt, cover, size

    def image_size(self):
        return self._size

    def visible(self):
        return np.isfinite(self.gt).all(1)


def test_got10k_ao_sr_first_frame_and_cover_and_clipping():
    gt = np.tile([0.0, 0.0, 10.0, 10.0], (5, 1))
    pred = gt.copy()
    pred[0] = (50, 50, 1, 1)  # frame 0 is never scored
    pred[1] = (0, 0, 10, 20)  # IoU 0.5 within the image … but clipped to a 10-px-high frame → 1.0
    pred[2] = (5, 0, 10, 10)  # IoU 50 / 150 = 1/3
    pred[3] = (30, 30, 5, 5)  # cover 0: not scored
    cover = np.array([8, 8, 8, 0, 8])
    result = got10k.evaluate_got10k({"g": pred}, {"g": _Seq(gt, cover, (100, 10))})
    ious = np.array([1.0, 1 / 3, 1.0])
    assert result["frames"] == 3
    assert result["ao"] == pytest.approx(ious.mean())
    assert result["sr_0.5"] == pytest.approx(2 / 3)
    assert result["sr_0.75"] == pytest.approx(2 / 3)
