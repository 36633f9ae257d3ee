"""siamkit's NanoTrack v1/v2/v3 against the original HonglinChu PyTorch tracker, on every shared clip.

Runs only when the original code is found (``third_party/SiamTrackers/NanoTrack`` or
``../shared/peers-src/NanoTrack``) with ``yacs`` importable (``$NANOTRACK_PYLIB``); see
``benchmarks/nanotrack_parity.py``, which this test reuses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import benchmark_script, shared_path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "nanotrack_parity.py"


def _bench():
    return benchmark_script("nanotrack_parity")


@pytest.mark.slow
def test_boxes_agree_with_the_original_tracker_on_every_clip():
    clips = shared_path("tracking")
    for version in (1, 2, 3):
        shared_path("peers", f"nanotrack_v{version}", f"nanotrackv{version}.pth")
    bench = _bench()
    reason = bench.original_available()
    if reason:
        pytest.skip(reason)
    names = sorted(p.name for p in clips.iterdir() if (p / "groundtruth_rect.txt").is_file())
    assert len(names) >= 12
    for name in names:
        record = bench.compare_clip(name, with_original=True, with_steps=False, versions=(1, 2, 3))
        for version in (1, 2, 3):
            agree = record[f"original_v{version}"][f"vs_siamkit_v{version}"]
            assert agree["mean_iou"] >= 0.99, (name, version, agree)
            assert agree["max_centre_dist"] < 0.5, (name, version, agree)
        assert record["siamkit_opencv"]["vs_opencv"]["mean_iou"] >= 0.99, name


def test_success_auc_helper_hand_computed():
    bench = _bench()
    gt = np.array([[0, 0, 10, 10]] * 4, dtype=float)
    # IoUs 1, 0.5 (half overlap), 0 (disjoint), 0.25 (quarter of the area, same size → 25/175).
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 5], [20, 20, 5, 5], [5, 5, 10, 10]], dtype=float)
    ious = np.array([1.0, 0.5, 0.0, 25 / 175])
    expected = np.mean([(ious > t).mean() for t in np.linspace(0, 1, 21)])
    assert bench.success_auc(boxes, gt) == pytest.approx(expected)
    # Hand count: IoU 1 succeeds at 20 of 21 thresholds (not t = 1), 0.5 at 10 (t < 0.5), 1/7 at 3, 0 at none.
    assert expected == pytest.approx((20 + 10 + 3 + 0) / (21 * 4))
    nan_gt = gt.copy()
    nan_gt[2] = np.nan
    assert bench.success_auc(boxes, nan_gt) == pytest.approx((20 + 10 + 3) / (21 * 3))
