"""Tracker training targets checked against small grids worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from siamkit.errors import ConfigError
from siamkit.losses.tracking import (
    IGNORE,
    NEGATIVE,
    POSITIVE,
    AnchorTargets,
    PointTargets,
    SiamFCTargets,
    balanced_weights,
    siamfc_labels,
)


def cells(mask: np.ndarray) -> set[tuple[int, int]]:
    return {(int(i), int(j)) for i, j in zip(*np.nonzero(mask), strict=True)}


def test_siamfc_centred_label_is_the_13_published_cells():
    # r_pos 16 px / stride 8 = 2 cells around the centre (8, 8) of a 17×17 map: the centre, 4 cells at
    # distance 1, 4 diagonals (√2) and 4 cells at distance 2 — same 13 cells as siamfc-pytorch's city-block rule.
    expected = {(8, 8), (7, 8), (9, 8), (8, 7), (8, 9), (7, 7), (7, 9), (9, 7), (9, 9)}
    expected |= {(6, 8), (10, 8), (8, 6), (8, 10)}
    label = siamfc_labels(17, 8, 16)
    assert cells(label == 1) == expected
    ii, jj = np.mgrid[:17, :17]
    city = np.abs(ii - 8) + np.abs(jj - 8) <= 2
    assert np.array_equal(label == 1, city)


def test_siamfc_label_follows_a_shifted_target():
    # target 8 px right of the crop centre: the same 13-cell diamond, one column to the right
    label = siamfc_labels(17, 8, 16, offset=(8, 0))
    assert cells(label == 1) == {(i, j + 1) for i, j in cells(siamfc_labels(17) == 1)}
    # half a cell (4 px) right: (dj − 0.5)² + di² ≤ 4 → di = 0 and ±1 give dj ∈ {−1, 0, 1, 2}; di = ±2 gives none
    half = siamfc_labels(17, 8, 16, offset=(4, 0))
    expected = {(8 + di, 8 + dj) for di in (-1, 0, 1) for dj in (-1, 0, 1, 2)}
    assert cells(half == 1) == expected


def test_siamfc_targets_balanced_weights():
    t = SiamFCTargets(score_size=17)
    out = t((127 - 20, 127 - 10, 127 + 20, 127 + 10), False, np.random.default_rng(0))  # centred on pixel 127
    label, weight = out["label"][0], out["label_weight"][0]
    assert label.sum() == 13
    np.testing.assert_allclose(weight[label == 1], 0.5 / 13)
    np.testing.assert_allclose(weight[label == 0], 0.5 / (289 - 13))
    assert weight.sum() == pytest.approx(1.0)
    neg = t((0, 0, 10, 10), True, np.random.default_rng(0))
    assert neg["label"].sum() == 0 and neg["label_weight"].sum() == pytest.approx(1.0)
    # a batch is balanced map by map
    batch = np.stack([label, np.zeros_like(label)])
    w = balanced_weights(batch)
    assert w[0].sum() == pytest.approx(1.0) and w[1].sum() == pytest.approx(1.0)


def test_anchor_labels_on_a_hand_computed_3x3_grid():
    # One anchor shape: stride 32, ratio 1, scale 2 → int(√1024)·2 = 64×64; centres 127 − 32, 127, 127 + 32.
    # GT: 64×64 centred at (131, 127). IoUs by hand (overlap / (2·4096 − overlap)):
    #   row 0 (y 95):  left 28×32 = 896 → 0.123 neg, centre 60×32 = 1920 → 0.306 ignore, right 36×32 → 0.164 neg
    #   row 1 (y 127): left 28×64 → 0.280 neg, centre 60×64 → 0.882 POS, right 36×64 → 0.391 ignore
    #   row 2 mirrors row 0
    t = AnchorTargets(score_size=3, search_size=255, stride=32, ratios=(1.0,), scales=(2.0,))
    gt = (131 - 32, 127 - 32, 131 + 32, 127 + 32)
    out = t(gt, False, np.random.default_rng(0))
    cls = out["label_cls"][0]
    expected = np.array(
        [[NEGATIVE, IGNORE, NEGATIVE], [NEGATIVE, POSITIVE, IGNORE], [NEGATIVE, IGNORE, NEGATIVE]]
    )
    assert np.array_equal(cls, expected)
    # deltas of the centre anchor: dx = 4/64, dy = 0, dw = dh = ln(64/64) = 0; weight 1/#pos = 1
    np.testing.assert_allclose(out["label_loc"][:, 0, 1, 1], [4 / 64, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(out["label_loc"][:, 0, 0, 2], [(131 - 159) / 64, (127 - 95) / 64, 0, 0], atol=1e-6)
    assert out["label_loc_weight"][0, 1, 1] == pytest.approx(1.0, rel=1e-5)
    assert out["label_loc_weight"].sum() == pytest.approx(1.0, rel=1e-5)


def test_anchor_targets_caps_and_published_anchor_sizes():
    t = AnchorTargets(score_size=25)
    # the five published shapes (104×32, 88×40, 64×64, 40×80, 32×96) at the centre cell (pixel 127)
    np.testing.assert_array_equal(t.anchors[2:, :, 12, 12].T, [[104, 32], [88, 40], [64, 64], [40, 80], [32, 96]])
    np.testing.assert_array_equal(t.anchors[0, 0, 12, :3], [127 - 96, 127 - 96 + 8, 127 - 96 + 16])
    rng = np.random.default_rng(1)
    out = t((127 - 32, 127 - 32, 127 + 32, 127 + 32), False, rng)  # a 64×64 target: many IoU > 0.6
    cls = out["label_cls"]
    assert (cls == POSITIVE).sum() <= 16 and (cls == NEGATIVE).sum() == 48
    # positives really have IoU > 0.6, negatives < 0.3
    acx, acy, aw, ah = t.anchors
    from siamkit.geometry import iou as box_iou

    corners = np.stack([acx - aw / 2, acy - ah / 2, acx + aw / 2, acy + ah / 2], -1)
    iou = box_iou(corners, np.array([95.0, 95, 159, 159]), fmt="xyxy")
    assert (iou[cls == POSITIVE] > 0.6).all() and (iou[cls == NEGATIVE] < 0.3).all()
    assert (cls == POSITIVE).sum() == (iou > 0.6).sum() == 9  # the 64×64 shape at the 3×3 central cells
    capped = AnchorTargets(score_size=25, pos_num=4, total_num=10)((95, 95, 159, 159), False, rng)["label_cls"]
    assert (capped == POSITIVE).sum() == 4 and (capped == NEGATIVE).sum() == 6
    assert (iou[capped == POSITIVE] > 0.6).all()
    # SiamMask: negatives fill up to 64 in all; mask weight marks cells with a positive anchor
    m = AnchorTargets(score_size=25, fill_negatives=True, with_mask=True)(
        (127 - 32, 127 - 32, 127 + 32, 127 + 32), False, np.random.default_rng(1)
    )
    npos = (m["label_cls"] == POSITIVE).sum()
    assert npos + (m["label_cls"] == NEGATIVE).sum() == 64
    assert np.array_equal(m["label_mask_weight"][0] == 1, (m["label_cls"] == POSITIVE).any(0))


def test_negative_pair_window_around_the_unrelated_object():
    t = AnchorTargets(score_size=17)
    # object 40 px right of the centre: pysot's cell = 17//2 + ceil(40/8 + 0.5) = 8 + 6 = 14 (column),
    # row = 8 + ceil(0 + 0.5) = 9 → negatives only in rows 6…12, columns 11…16 (clipped), at most 16
    out = t((167 - 10, 127 - 10, 167 + 10, 127 + 10), True, np.random.default_rng(0))
    cls = out["label_cls"]
    assert t.negative_cell((157, 117, 177, 137)) == (14, 9)
    _, rows, cols = np.nonzero(cls == NEGATIVE)
    assert len(rows) == 16 and (cls == POSITIVE).sum() == 0
    assert rows.min() >= 6 and rows.max() <= 12 and cols.min() >= 11 and cols.max() <= 16
    assert out["label_loc_weight"].sum() == 0
    centre = AnchorTargets(score_size=17, neg_window="centre")(
        (157, 117, 177, 137), True, np.random.default_rng(0)
    )["label_cls"]
    _, rows, cols = np.nonzero(centre == NEGATIVE)
    assert rows.min() >= 5 and rows.max() <= 11 and cols.min() >= 5 and cols.max() <= 11


def test_ban_ellipse_labels_by_hand():
    # 5×5 points at 127 + {−16, −8, 0, 8, 16}; GT 64×32 centred at (127, 127).
    # positive: (dx/16)² + (dy/8)² < 1 → only dy = 0 and dx ∈ {−8, 0, 8};
    # negative: (dx/32)² + (dy/16)² > 1 → only dy = ±16 with dx ≠ 0 (8 points); the rest is ignored.
    t = PointTargets(score_size=5, search_size=255, stride=8)
    out = t((127 - 32, 127 - 16, 127 + 32, 127 + 16), False, np.random.default_rng(0))
    cls = out["label_cls"]
    assert cells(cls == POSITIVE) == {(2, 1), (2, 2), (2, 3)}
    assert cells(cls == NEGATIVE) == {(r, c) for r in (0, 4) for c in (0, 1, 3, 4)}
    np.testing.assert_allclose(out["label_loc"][:, 2, 2], [32, 16, 32, 16])
    np.testing.assert_allclose(out["label_loc"][:, 0, 0], [127 - 16 - 95, 127 - 16 - 111, 159 - 111, 143 - 111])
    # negative pair: points inside the small ellipse become negatives
    neg = t((127 - 32, 127 - 16, 127 + 32, 127 + 16), True, np.random.default_rng(0))["label_cls"]
    assert cells(neg == NEGATIVE) == {(2, 1), (2, 2), (2, 3)} and (neg == POSITIVE).sum() == 0


def test_bad_box_raises():
    with pytest.raises(ConfigError):
        SiamFCTargets()((10, 10, 5, 20), False, np.random.default_rng(0))
    with pytest.raises(ConfigError):
        AnchorTargets(neg_window="middle")
