"""siamkit's SiamBAN against hqucv/siamban: points, one post-processing step on peaked maps, 30 frames end to end.

* points (values and order) and the cosine window vs ``SiamBANTracker.generate_points`` / ``window``;
* one whole step (softmax, (l, t, r, b) decoding, scale and aspect penalties, window, arg-max, size
  smoothing, clipping) driven by **peaked** maps: one sharp maximum at a known cell near each border
  and in the centre, a weaker one at the mirrored cell, distances that differ from cell to cell;
* end to end: ``peers.compare_siamban`` (same weights, planted as described there) to 0.5 px.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from peers import compare_siamban, siamban_env

from siamkit.ops.anchors import point_grid
from siamkit.ops.postprocess import decode_ltrb, foreground_scores, select_best, smooth_update
from siamkit.ops.windows import hann_window


@pytest.fixture(scope="module")
def siamban():
    with siamban_env() as env:
        env["model"]("siamban_r50_l234", {}, [1, 1, 1, 1])  # loads the published config into cfg
        yield env


def make_tracker(env):
    from siamban.tracker.siamban_tracker import SiamBANTracker

    return SiamBANTracker(torch.nn.Identity())


@pytest.mark.parametrize("size", [17, 25])
def test_points_and_window_in_siamban_order(siamban, size):
    theirs = make_tracker(siamban)
    np.testing.assert_array_equal(point_grid(size, 8).numpy(), theirs.generate_points(8, size))
    np.testing.assert_allclose(hann_window(theirs.score_size).reshape(-1).numpy(), theirs.window)


@pytest.mark.parametrize(("row", "col"), [(0, 0), (24, 1), (12, 12), (3, 23), (22, 20)])
def test_one_step_of_post_processing_matches_siamban(siamban, row, col):
    cfg = siamban["cfg"]
    theirs = make_tracker(siamban)
    size = theirs.score_size
    rng = np.random.default_rng(row * 10 + col)
    cls = torch.zeros(1, 2, size, size)
    cls[0, 1] = -6.0
    cls[0, 1, row, col] = 8.0
    cls[0, 1, size - 1 - row, size - 1 - col] = 3.0
    loc = torch.from_numpy(rng.uniform(10, 60, (1, 4, size, size)).astype(np.float32))
    centre, tsize, frame = np.array([150.0, 90.0]), np.array([30.0, 60.0]), np.zeros((180, 320, 3), np.uint8)
    theirs.center_pos, theirs.size, theirs.channel_average = centre.copy(), tsize.copy(), np.zeros(3)
    theirs.model = type("Model", (), {"track": staticmethod(lambda x: {"cls": cls.clone(), "loc": loc.clone()})})()
    want = theirs.track(frame)

    s_z = np.sqrt(np.prod(tsize + cfg.TRACK.CONTEXT_AMOUNT * tsize.sum()))
    scale_z = torch.tensor([cfg.TRACK.EXEMPLAR_SIZE / s_z], dtype=torch.float64)
    boxes = decode_ltrb(loc, point_grid(size, cfg.POINT.STRIDE))
    t_size = torch.from_numpy(tsize[None].copy())
    sel = select_best(
        foreground_scores(cls, 1), boxes, t_size * scale_z, cfg.TRACK.PENALTY_K, hann_window(size).reshape(-1),
        cfg.TRACK.WINDOW_INFLUENCE,
    )
    new_c, new_s = smooth_update(torch.from_numpy(centre[None].copy()), t_size, sel, scale_z, cfg.TRACK.LR)
    cx, cy = np.clip(new_c[0].numpy(), 0, [320, 180])
    w, h = np.clip(new_s[0].numpy(), 10, [320, 180])
    np.testing.assert_allclose([cx - w / 2, cy - h / 2, w, h], want["bbox"], atol=1e-4)
    assert float(sel.score) == pytest.approx(float(want["best_score"]), abs=1e-6)
    assert (row, col) == (12, 12) or np.abs(np.array([cx, cy]) - centre).max() > 1


def test_siamban_boxes_match_siamban(siamban, tmp_path):
    result = compare_siamban(siamban, tmp_path)
    assert len(result.ours) == 30
    assert result.max_box_px <= 0.5
    np.testing.assert_allclose(result.scores_ours, result.scores_theirs, atol=1e-4)
    assert np.median(result.scores_theirs) > 0.1 and result.travel_px > 5
