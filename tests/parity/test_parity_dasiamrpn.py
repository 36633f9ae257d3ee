"""siamkit's SiamRPN and DaSiamRPN against foolwood/DaSiamRPN (``code/``): anchors, crops, one step, 30 frames.

DaSiamRPN was written for Python 2 and PyTorch 0.3; ``peers.dasiamrpn_env`` restores Python 2's floor
division in ``generate_anchor`` and Python 2's ``round`` (halves away from zero) in the crop, without
editing the files (``.cuda()`` is a no-op in ``peer_sources``). The tests below show that both shims are
needed: under Python 3 semantics the anchor grid is half a cell off and tied crop origins one pixel off.

The distractor-aware re-scoring of the paper has no public reference implementation (DaSiamRPN's code
does not contain it), so it is not compared here; siamkit's version is tested on its own
(``tests/trackers/test_dasiamrpn.py``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from peers import compare_dasiamrpn, dasiamrpn_env, peaked_outputs

from siamkit.ops.anchors import anchor_grid
from siamkit.ops.crop import crop_numpy
from siamkit.ops.postprocess import decode_deltas, foreground_scores, select_best, smooth_update
from siamkit.ops.windows import anchor_window

RATIOS, SCALES, A = (0.33, 0.5, 1.0, 2.0, 3.0), (8.0,), 5


@pytest.fixture(scope="module")
def dasiamrpn():
    with dasiamrpn_env() as env:
        yield env


@pytest.mark.parametrize("size", [19, 21])  # 271 and 287 search sizes
def test_anchors_in_dasiamrpn_order_with_python2_division(dasiamrpn, size):
    theirs = dasiamrpn["run"].generate_anchor(8, [8], list(RATIOS), size)
    np.testing.assert_array_equal(anchor_grid(size, 8, RATIOS, SCALES).numpy(), theirs)
    py3 = dasiamrpn["generate_anchor_py3"](8, [8], list(RATIOS), size)
    assert py3[:, 0].min() == -(size / 2) * 8 != theirs[:, 0].min()  # −76 instead of −72: why the shim exists


@pytest.mark.parametrize("centre", [(60.5, 40.5), (60.3, 40.7), (0.0, 0.0), (-20.5, 50.2), (119.5, 79.5), (150, -30)])
@pytest.mark.parametrize(("side", "out"), [(37, 127), (139, 271), (301, 287)])
def test_uint8_crop_is_get_subwindow_tracking(dasiamrpn, centre, side, out):
    """Bit-exact, except one documented case: an origin ``pos − (s + 1)/2`` that is a *negative* half
    (the crop starts outside the top/left border on a tie). Python 2's round goes away from zero there
    (−9.5 → −10) while pysot's ``floor(x + 0.5)``, which siamkit follows, gives −9: DaSiamRPN's crop
    starts one pixel further up/left. Every other tie and non-tie agrees."""
    from utils import get_subwindow_tracking

    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (80, 120, 3), dtype=np.uint8)
    avg = image.reshape(-1, 3).mean(0) + 0.6
    theirs = get_subwindow_tracking(image, np.array(centre, np.float64), out, side, avg).numpy()
    origin = np.asarray(centre, np.float64) - (side + 1) / 2
    negative_tie = (origin < 0) & (origin % 1 == 0.5)
    ours = crop_numpy(image, tuple(np.asarray(centre) - negative_tie), side, out, avg, quantize=True)
    np.testing.assert_array_equal(ours.transpose(2, 0, 1), theirs)
    if negative_tie.any() and (origin + side > 1)[negative_tie].all():  # the shifted edge holds image pixels
        plain = crop_numpy(image, centre, side, out, avg, quantize=True).transpose(2, 0, 1)
        assert not np.array_equal(plain, theirs)


def test_python3_round_would_shift_tied_crops(dasiamrpn):
    """With Python 3's round the tied origin 104.5 becomes 104 (pysot, Python 2 and siamkit: 105)."""
    import utils

    assert utils.round(104.5) == 105.0 and utils.round(-2.5) == -3.0
    assert round(104.5) == 104


@pytest.mark.parametrize(("anchor", "row", "col"), [(0, 0, 0), (4, 18, 1), (2, 9, 9), (1, 3, 17), (3, 16, 14)])
def test_one_step_of_post_processing_matches_tracker_eval(dasiamrpn, anchor, row, col):
    run = dasiamrpn["run"]
    p = run.TrackerConfig()
    p.update({"lr": 0.45, "window_influence": 0.44, "penalty_k": 0.04, "instance_size": 271, "adaptive": False})
    size = int(p.score_size)
    p.anchor = run.generate_anchor(p.total_stride, p.scales, p.ratios, size)
    window = np.tile(np.outer(np.hanning(size), np.hanning(size)).flatten(), p.anchor_num)
    cls, loc = peaked_outputs(size, anchor, row, col, np.random.default_rng(anchor * 100 + row * 10 + col))

    def net(_):
        return loc.clone(), cls.clone()

    centre, tsize = np.array([150.0, 90.0]), np.array([30.0, 60.0])
    s_z = np.sqrt(np.prod(tsize + p.context_amount * tsize.sum()))
    scale_z = p.exemplar_size / s_z
    pos, sz, score = run.tracker_eval(net, None, centre.copy(), tsize * scale_z, window, scale_z, p)

    grid = anchor_grid(size, 8, RATIOS, SCALES)
    t_size = torch.from_numpy(tsize[None].copy())
    sz_t = torch.tensor([scale_z], dtype=torch.float64)
    sel = select_best(
        foreground_scores(cls, A), decode_deltas(loc, grid), t_size * sz_t, p.penalty_k, anchor_window(size, A),
        p.window_influence,
    )
    new_c, new_s = smooth_update(torch.from_numpy(centre[None].copy()), t_size, sel, sz_t, p.lr)
    np.testing.assert_allclose(new_c[0].numpy(), pos, atol=1e-4)
    np.testing.assert_allclose(new_s[0].numpy(), sz, atol=1e-4)
    assert float(sel.score) == pytest.approx(float(score), abs=1e-6)
    assert np.abs(pos - centre).max() > 1 or (row, col) == (9, 9)  # the peak moved the box


@pytest.mark.parametrize("name", ["siamrpn", "dasiamrpn"])
def test_boxes_match_dasiamrpn(dasiamrpn, name, tmp_path):
    result = compare_dasiamrpn(name, dasiamrpn, tmp_path)
    assert len(result.ours) == 30
    assert result.max_box_px <= 0.5
    np.testing.assert_allclose(result.scores_ours, result.scores_theirs, atol=1e-4)
    assert np.median(result.scores_theirs) > 0.5 and result.travel_px > 5
    assert result.extra["instance_size"] == (287 if name == "dasiamrpn" else 271)  # the adaptive search
