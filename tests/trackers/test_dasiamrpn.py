"""DaSiamRPN's distractor-aware re-scoring (paper Eq. 3; no public reference implementation)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from standins import standin_tracker
from test_published_loops import load_clip

from siamkit.trackers.dasiamrpn import distractor_rescore, select_distractors
from siamkit.trackers.engine import BatchedTracker


def test_rescore_matches_the_formula():
    rng = np.random.default_rng(0)
    scores = rng.random((3, 7))
    d_scores = rng.random((4, 7))
    weights = np.array([0.9, 0.6, 0.7, 0.8])
    target = np.array([0, 0, 2, 2])
    got = distractor_rescore(
        torch.from_numpy(scores), torch.from_numpy(d_scores), torch.from_numpy(weights), torch.from_numpy(target), 0.5
    ).numpy()
    want = scores.copy()
    for b in range(3):
        rows = target == b
        if rows.any():
            want[b] -= 0.5 * (weights[rows, None] * d_scores[rows]).sum(0) / weights[rows].sum()
    np.testing.assert_allclose(got, want, atol=1e-12)
    np.testing.assert_array_equal(got[1], scores[1])  # no distractors: unchanged


def test_select_distractors_by_hand():
    boxes = np.array(
        [[0, 0, 10, 10], [1, 0, 10, 10], [40, 0, 10, 10], [41, 1, 10, 10], [-40, 0, 10, 10], [80, 0, 8, 8]], dtype=float
    )
    scores = np.array([0.99, 0.95, 0.9, 0.85, 0.4, 0.8])
    keep = select_distractors(boxes, scores, boxes[0], threshold=0.5, iou=0.3, k=3)
    # 0 is the target, 1 overlaps it, 3 overlaps 2, 4 is below the threshold.
    assert keep == [2, 5]
    assert select_distractors(boxes, scores, boxes[0], threshold=0.5, iou=0.3, k=1) == [2]


def test_without_distractors_the_tracker_is_unchanged():
    frames, box = load_clip(n=6)
    plain = standin_tracker("dasiamrpn")
    aware = standin_tracker("dasiamrpn", distractor_aware=True, distractor_threshold=1.0)
    plain.init(frames[0], box)
    aware.init(frames[0], box)
    for f in frames[1:]:
        np.testing.assert_allclose(aware.track(f).box, plain.track(f).box, atol=1e-9)
        assert not aware._state["dw"].any()


@pytest.mark.parametrize("long_term", [False, True])
def test_distractor_aware_runs_and_batches(long_term):
    frames, box = load_clip(n=4)
    opts = dict(
        distractor_aware=True, distractor_threshold=0.3, long_term=long_term, confidence_low=0.55, confidence_high=0.6
    )
    boxes = np.array([box, [40.0, 60.0, 30.0, 40.0]])
    singles = []
    seen = False
    for b in boxes:
        t = standin_tracker("dasiamrpn", **opts)
        t.init(frames[0], b)
        rows = []
        for f in frames[1:]:
            r = t.track(f)
            assert np.isfinite(r.box).all()
            seen |= bool(t._state["dw"].any())
            rows.append(r.box)
        singles.append(rows)
    assert seen, "distractors should have been found with a 0.3 threshold"
    bt = BatchedTracker(standin_tracker("dasiamrpn", **opts))
    bt.add(frames[0], boxes)
    got = np.array([[r.box for r in bt.track(f)] for f in frames[1:]]).transpose(1, 0, 2)
    np.testing.assert_allclose(got, np.array(singles), atol=1e-3)


def test_distractor_aware_with_the_real_network():
    from siamkit.trackers import create_tracker

    frames, box = load_clip(n=4)
    torch.manual_seed(0)
    t = create_tracker("dasiamrpn", device="cpu", distractor_aware=True, distractor_threshold=0.0)  # shipped lite0
    t.init(frames[0], box)
    for f in frames[1:]:
        r = t.track(f)
        assert np.isfinite(r.box).all() and r.box[2] > 0
    assert t._state["dw"].any()
