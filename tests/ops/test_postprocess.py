"""Post-processing ops against independent NumPy / OpenCV references (pysot-style loops)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from siamkit.ops.anchors import anchor_grid, anchor_shapes, point_grid, score_size
from siamkit.ops.postprocess import (
    clip_state,
    decode_deltas,
    decode_ltrb,
    exemplar_side,
    foreground_scores,
    select_best,
    siamfc_select,
    smooth_update,
    state_to_xywh,
    upsample_responses,
)
from siamkit.ops.windows import anchor_window, change_penalty, hann_window, hanning

# --------------------------------------------------------------------------- NumPy references


def np_anchors(score_size: int, stride=8, ratios=(0.33, 0.5, 1, 2, 3), scales=(8,)):
    """pysot's generate_anchor, restated with explicit loops."""
    rows = []
    shapes = []
    for r in ratios:
        ws = int(math.sqrt(stride * stride / r))
        hs = int(ws * r)
        for s in scales:
            shapes.append((ws * s, hs * s))
    ori = -(score_size // 2) * stride
    for w, h in shapes:
        for i in range(score_size):
            for j in range(score_size):
                rows.append((ori + stride * j, ori + stride * i, w, h))
    return np.array(rows, dtype=np.float64)


def np_penalty(w, h, w0, h0, k):
    def sz(a, b):
        pad = (a + b) * 0.5
        return np.sqrt((a + pad) * (b + pad))

    def change(r):
        return np.maximum(r, 1.0 / r)

    s_c = change(sz(w, h) / sz(w0, h0))
    r_c = change((w0 / h0) / (w / h))
    return np.exp(-(r_c * s_c - 1) * k)


def np_softmax_fg(cls: np.ndarray) -> np.ndarray:
    """pysot _convert_score on one sample: permute(1,2,3,0).view(2,-1) then softmax."""
    flat = cls.reshape(2, -1)
    e = np.exp(flat - flat.max(0))
    return e[1] / e.sum(0)


# --------------------------------------------------------------------------- anchors / windows


def test_anchor_shapes_are_the_published_ones():
    assert anchor_shapes() == [(104.0, 32.0), (88.0, 40.0), (64.0, 64.0), (40.0, 80.0), (32.0, 96.0)]


@pytest.mark.parametrize("size", [17, 19, 21, 25, 97])
def test_anchor_grid_matches_pysot_loops(size):
    got = anchor_grid(size).numpy()
    np.testing.assert_array_equal(got, np_anchors(size))
    if size == 25:
        assert got[:, 0].min() == -96 and got[:, 0].max() == 96


def test_point_grid_is_row_major():
    pts = point_grid(3, 8).numpy()
    np.testing.assert_array_equal(pts, [[-8, -8], [0, -8], [8, -8], [-8, 0], [0, 0], [8, 0], [-8, 8], [0, 8], [8, 8]])


def test_score_sizes():
    assert score_size(255, 127, 8, 8) == 25
    assert score_size(287, 127, 8, 0) == 21
    assert score_size(271, 127, 8, 0) == 19
    assert score_size(831, 127, 8, 8) == 97
    assert score_size(255, 127, 8, 0) == 17


@pytest.mark.parametrize("n", [1, 2, 17, 25, 272])
def test_hanning_equals_numpy(n):
    np.testing.assert_allclose(hanning(n).numpy(), np.hanning(n), atol=1e-15)
    if n == 2:  # all zeros: nothing to normalise
        return
    w = hann_window(n, normalise=True).numpy()
    ref = np.outer(np.hanning(n), np.hanning(n))
    np.testing.assert_allclose(w, ref / ref.sum(), atol=1e-15)


def test_anchor_window_tiles_over_anchors():
    ref = np.tile(np.outer(np.hanning(5), np.hanning(5)).flatten(), 3)
    np.testing.assert_allclose(anchor_window(5, 3).numpy(), ref, atol=1e-15)


pos = st.floats(1.0, 500.0, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(pos, pos, pos, pos, st.floats(0.0, 1.0))
def test_change_penalty_matches_numpy(w, h, w0, h0, k):
    got = change_penalty(torch.tensor(w, dtype=torch.float64), torch.tensor(h, dtype=torch.float64), w0, h0, k)
    assert got.item() == pytest.approx(np_penalty(w, h, w0, h0, k), rel=1e-12)
    assert 0 <= got.item() <= 1 + 1e-12  # exp underflows to 0 for extreme changes


def test_change_penalty_is_one_for_the_same_box():
    assert change_penalty(torch.tensor(30.0), torch.tensor(60.0), 30.0, 60.0, 0.5).item() == pytest.approx(1.0)


# --------------------------------------------------------------------------- decoding and selection


def test_foreground_scores_match_pysot_layout():
    g = torch.Generator().manual_seed(1)
    cls = torch.randn(3, 10, 4, 4, generator=g)
    got = foreground_scores(cls, 5)
    for b in range(3):
        np.testing.assert_allclose(got[b].numpy(), np_softmax_fg(cls[b].numpy().astype(np.float64)), atol=1e-12)
    one = torch.randn(2, 1, 3, 3, generator=g)
    np.testing.assert_allclose(foreground_scores(one, 1).numpy(), 1 / (1 + np.exp(-one.numpy().reshape(2, -1))), 1e-6)
    with pytest.raises(ValueError):
        foreground_scores(torch.zeros(1, 3, 2, 2), 5)


def test_decode_deltas_matches_pysot_convert_bbox():
    g = torch.Generator().manual_seed(2)
    size = 5
    loc = torch.randn(2, 20, size, size, generator=g) * 0.3
    anchors = np_anchors(size)
    got = decode_deltas(loc, torch.from_numpy(anchors)).numpy()
    for b in range(2):
        d = loc[b].numpy().astype(np.float64).reshape(4, -1)
        ref = np.stack(
            [
                d[0] * anchors[:, 2] + anchors[:, 0],
                d[1] * anchors[:, 3] + anchors[:, 1],
                np.exp(d[2]) * anchors[:, 2],
                np.exp(d[3]) * anchors[:, 3],
            ],
            1,
        )
        np.testing.assert_allclose(got[b], ref, rtol=1e-12)


def test_decode_ltrb_by_hand():
    loc = torch.zeros(1, 4, 1, 1, dtype=torch.float64)
    loc[0, :, 0, 0] = torch.tensor([10.0, 4.0, 2.0, 8.0])  # l, t, r, b around the point (0, 0)
    box = decode_ltrb(loc, torch.zeros(1, 2, dtype=torch.float64))[0, 0].tolist()
    assert box == [(-10 + 2) / 2, (-4 + 8) / 2, 12.0, 12.0]


def np_select(score, boxes, ref, k, window, lam):
    penalty = np_penalty(boxes[:, 2], boxes[:, 3], ref[0], ref[1], k)
    pscore = penalty * score
    pscore = pscore * (1 - lam) + window * lam
    i = int(np.argmax(pscore))
    return i, penalty[i]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.0, 0.5), st.floats(0.0, 1.0))
def test_select_best_matches_numpy(seed, k, lam):
    rng = np.random.default_rng(seed)
    b, n = 3, 5 * 9
    score = rng.random((b, n))
    boxes = np.concatenate([rng.normal(0, 20, (b, n, 2)), rng.uniform(5, 120, (b, n, 2))], axis=2)
    ref = rng.uniform(10, 100, (b, 2))
    window = anchor_window(3, 5).numpy()
    sel = select_best(
        torch.from_numpy(score), torch.from_numpy(boxes), torch.from_numpy(ref), k, torch.from_numpy(window), lam
    )
    for i in range(b):
        idx, pen = np_select(score[i], boxes[i], ref[i], k, window, lam)
        assert sel.index[i].item() == idx
        assert sel.penalty[i].item() == pytest.approx(pen, rel=1e-12)
        assert sel.score[i].item() == score[i, idx]
        assert bool(sel.valid[i])


def test_select_best_skips_non_finite_candidates_and_keeps_state_when_none_is_valid():
    score = torch.tensor([[0.9, 0.1], [0.5, 0.5]], dtype=torch.float64)
    boxes = torch.tensor(
        [[[0, 0, float("nan"), 10], [2, 3, 10, 10]], [[0, 0, float("inf"), 1], [0, 0, 10, float("nan")]]],
        dtype=torch.float64,
    )
    sel = select_best(score, boxes, torch.full((2, 2), 10.0, dtype=torch.float64), 0.1, torch.ones(2), 0.2)
    assert sel.index.tolist()[0] == 1 and sel.valid.tolist() == [True, False]
    centre = torch.tensor([[50.0, 60.0], [70.0, 80.0]], dtype=torch.float64)
    size = torch.tensor([[20.0, 30.0], [40.0, 50.0]], dtype=torch.float64)
    c, s = smooth_update(centre, size, sel, torch.ones(2, dtype=torch.float64), 0.5)
    assert torch.isfinite(c).all() and torch.isfinite(s).all()
    assert c[1].tolist() == [70.0, 80.0] and s[1].tolist() == [40.0, 50.0]
    assert c[0].tolist() == [52.0, 63.0]


def test_smooth_update_clip_and_output_by_hand():
    centre = torch.tensor([[100.0, 50.0]], dtype=torch.float64)
    size = torch.tensor([[20.0, 40.0]], dtype=torch.float64)
    sel = type("S", (), {})()
    sel.box = torch.tensor([[8.0, -4.0, 60.0, 40.0]], dtype=torch.float64)
    sel.score, sel.penalty, sel.valid = torch.tensor([0.8]), torch.tensor([0.5]), torch.tensor([True])
    c, s = smooth_update(centre, size, sel, torch.tensor([2.0], dtype=torch.float64), 0.5)
    # box / scale_z = (4, -2, 30, 20); beta = 0.5 * 0.8 * 0.5 = 0.2
    assert c.tolist() == [[104.0, 48.0]]
    np.testing.assert_allclose(s.numpy(), [[0.8 * 20 + 0.2 * 30, 0.8 * 40 + 0.2 * 20]])
    c2, s2 = clip_state(torch.tensor([[-5.0, 300.0]]), torch.tensor([[3.0, 900.0]]), torch.tensor([[320.0, 240.0]]))
    assert c2.tolist() == [[0.0, 240.0]] and s2.tolist() == [[10.0, 240.0]]
    assert state_to_xywh(torch.tensor([[10.0, 20.0]]), torch.tensor([[4.0, 6.0]])).tolist() == [[8.0, 17.0, 4.0, 6.0]]


def test_exemplar_side():
    w, h = 30.0, 50.0
    p = 0.5 * (w + h)
    expect = math.sqrt((w + p) * (h + p))
    assert exemplar_side(torch.tensor([[w, h]], dtype=torch.float64), 0.5).item() == pytest.approx(expect)


# --------------------------------------------------------------------------- SiamFC


def test_bicubic_upsampling_matches_opencv():
    rng = np.random.default_rng(0)
    resp = rng.normal(size=(2, 1, 17, 17))
    got = upsample_responses(torch.from_numpy(resp), 16).numpy()
    for i in range(2):
        ref = cv2.resize(resp[i, 0], (272, 272), interpolation=cv2.INTER_CUBIC)
        np.testing.assert_allclose(got[i], ref, atol=2e-5)


def np_siamfc(responses, penalty, window, lam):
    """siamfc-pytorch's update() selection on upsampled responses K×U×U."""
    responses = responses.copy()
    k = responses.shape[0]
    responses[: k // 2] *= penalty
    responses[k // 2 + 1 :] *= penalty
    scale = int(np.argmax(np.amax(responses, axis=(1, 2))))
    r = responses[scale]
    r -= r.min()
    r /= r.sum() + 1e-16
    r = (1 - lam) * r + lam * window
    loc = np.unravel_index(r.argmax(), r.shape)
    return scale, loc


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_siamfc_select_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    up = rng.normal(size=(2, 3, 34, 34)).cumsum(axis=2)
    window = np.outer(np.hanning(34), np.hanning(34))
    window /= window.sum()
    scale, row, col, _ = siamfc_select(torch.from_numpy(up), 0.9745, torch.from_numpy(window), 0.176)
    for b in range(2):
        s, loc = np_siamfc(up[b], 0.9745, window, 0.176)
        assert (scale[b].item(), row[b].item(), col[b].item()) == (s, loc[0], loc[1])
