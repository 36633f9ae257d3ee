"""Tracking losses against float64 NumPy references written from the formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from siamkit.losses.tracking import (
    balanced_logistic_loss,
    balanced_weights,
    ban_loc_loss,
    fuse_levels,
    linear_iou_loss,
    mask_loss,
    select_cross_entropy,
    siamfc_labels,
    weighted_l1_loss,
    weighted_total,
)


def test_balanced_logistic_loss_matches_float64():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 1, 17, 17)) * 3
    labels = np.stack([siamfc_labels(17, offset=(8 * k, 0)) for k in range(3)])[:, None]
    ref = 0.0
    for b in range(3):
        y = labels[b, 0] * 2 - 1
        pos, neg = labels[b, 0] == 1, labels[b, 0] == 0
        loss = np.log1p(np.exp(-y * logits[b, 0]))
        ref += 0.5 * loss[pos].mean() + 0.5 * loss[neg].mean()
    ref /= 3
    got = balanced_logistic_loss(torch.tensor(logits, dtype=torch.float32), torch.tensor(labels))
    assert float(got) == pytest.approx(ref, rel=1e-5)
    w = torch.from_numpy(balanced_weights(labels[:, 0]))[:, None]
    got_w = balanced_logistic_loss(torch.tensor(logits), torch.tensor(labels), w)
    assert float(got_w) == pytest.approx(ref, rel=1e-6)
    # huge logits stay finite (softplus, not log(1 + exp))
    big = balanced_logistic_loss(torch.full((1, 1, 17, 17), -1e4), torch.tensor(labels[:1]))
    assert torch.isfinite(big) and float(big) == pytest.approx(0.5 * 1e4, rel=1e-6)


def _logsoftmax(x: np.ndarray) -> np.ndarray:
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def test_select_cross_entropy_pysot_layout():
    rng = np.random.default_rng(1)
    b, a, s = 2, 5, 4
    cls = rng.normal(size=(b, 2 * a, s, s))
    labels = rng.integers(-1, 2, size=(b, a, s, s))
    # reference: channel k < A is background of anchor k, channel A + k its foreground
    pos_terms, neg_terms = [], []
    for bi in range(b):
        for k in range(a):
            for i in range(s):
                for j in range(s):
                    logp = _logsoftmax(np.array([cls[bi, k, i, j], cls[bi, a + k, i, j]]))
                    if labels[bi, k, i, j] == 1:
                        pos_terms.append(-logp[1])
                    elif labels[bi, k, i, j] == 0:
                        neg_terms.append(-logp[0])
    ref = 0.5 * np.mean(pos_terms) + 0.5 * np.mean(neg_terms)
    got = select_cross_entropy(torch.tensor(cls), torch.tensor(labels))
    assert float(got) == pytest.approx(ref, rel=1e-10)
    # no positives at all (negative pair): only the negative half counts
    only_neg = np.where(labels == 1, -1, labels)
    got = select_cross_entropy(torch.tensor(cls), torch.tensor(only_neg))
    assert float(got) == pytest.approx(0.5 * np.mean(neg_terms), rel=1e-10)


def test_weighted_l1_loss():
    rng = np.random.default_rng(2)
    b, a, s = 3, 5, 3
    loc = rng.normal(size=(b, 4 * a, s, s))
    delta = rng.normal(size=(b, 4, a, s, s))
    weight = rng.random(size=(b, a, s, s))
    ref = 0.0
    for bi in range(b):
        for k in range(a):
            for c in range(4):
                ref += (np.abs(loc[bi, c * a + k] - delta[bi, c, k]) * weight[bi, k]).sum()
    ref /= b
    got = weighted_l1_loss(torch.tensor(loc), torch.tensor(delta), torch.tensor(weight))
    assert float(got) == pytest.approx(ref, rel=1e-10)


def test_linear_iou_loss_against_box_intersection():
    rng = np.random.default_rng(3)
    pred = rng.uniform(1, 30, size=(50, 4))
    tgt = rng.uniform(1, 30, size=(50, 4))
    ref = []
    for p, t in zip(pred, tgt, strict=True):
        # boxes around the shared point (0, 0): [−l, −t, r, b]
        pb = np.array([-p[0], -p[1], p[2], p[3]])
        tb = np.array([-t[0], -t[1], t[2], t[3]])
        iw = max(0.0, min(pb[2], tb[2]) - max(pb[0], tb[0]))
        ih = max(0.0, min(pb[3], tb[3]) - max(pb[1], tb[1]))
        inter = iw * ih
        union = (pb[2] - pb[0]) * (pb[3] - pb[1]) + (tb[2] - tb[0]) * (tb[3] - tb[1]) - inter
        ref.append(1 - (inter + 1) / (union + 1))
    got = linear_iou_loss(torch.tensor(pred), torch.tensor(tgt))
    assert float(got) == pytest.approx(np.mean(ref), rel=1e-10)
    assert float(linear_iou_loss(torch.tensor(pred), torch.tensor(pred))) == pytest.approx(0.0, abs=1e-12)
    # over positives only, B×4×S×S layout
    loc = torch.tensor(rng.uniform(1, 30, size=(2, 4, 3, 3)))
    ltrb = torch.tensor(rng.uniform(1, 30, size=(2, 4, 3, 3)))
    labels = torch.full((2, 3, 3), -1)
    labels[0, 1, 2] = 1
    labels[1, 0, 0] = 1
    labels[1, 2, 2] = 0
    sel = [(0, 1, 2), (1, 0, 0)]
    p = torch.stack([loc[b, :, i, j] for b, i, j in sel])
    t = torch.stack([ltrb[b, :, i, j] for b, i, j in sel])
    assert float(ban_loc_loss(loc, ltrb, labels)) == pytest.approx(float(linear_iou_loss(p, t)), rel=1e-12)
    assert float(ban_loc_loss(loc, ltrb, torch.zeros(2, 3, 3))) == 0.0


def _upsample_align_corners(x: np.ndarray, size: int) -> np.ndarray:
    n = x.shape[0]
    pos = np.arange(size) * (n - 1) / (size - 1)
    lo = np.clip(np.floor(pos).astype(int), 0, n - 2)
    f = pos - lo
    rows = x[lo] * (1 - f)[:, None] + x[lo + 1] * f[:, None]
    return rows[:, lo] * (1 - f)[None] + rows[:, lo + 1] * f[None]


def test_mask_loss_small_geometry():
    # out 3×3 logits → window 5×5; 7×7 mask, stride 2, padding 1 → 3×3 cells
    rng = np.random.default_rng(4)
    b, o, win, stride, pad, s = 2, 3, 5, 2, 1, 3
    pred = rng.normal(size=(b, o * o, s, s))
    mask = np.where(rng.random(size=(b, 1, 7, 7)) > 0.5, 1.0, -1.0)
    weight = np.zeros((b, 1, s, s))
    weight[0, 0, 1, 1] = 1
    weight[1, 0, 0, 2] = 1
    terms = []
    for bi, i, j in [(0, 1, 1), (1, 0, 2)]:
        logits = _upsample_align_corners(pred[bi, :, i, j].reshape(o, o), win)
        padded = np.pad(mask[bi, 0], pad)  # unfold pads with zeros
        target = padded[i * stride : i * stride + win, j * stride : j * stride + win]
        terms.append(np.log1p(np.exp(-target * logits)).mean())
    ref = np.mean(terms)
    got = mask_loss(torch.tensor(pred), torch.tensor(mask), torch.tensor(weight), o, win, stride, pad)
    assert float(got) == pytest.approx(ref, rel=1e-10)
    assert float(mask_loss(torch.tensor(pred), torch.tensor(mask), torch.zeros(b, 1, s, s), o, win, stride, pad)) == 0


def test_published_mask_geometry_gives_25_windows():
    pred = torch.zeros(1, 63 * 63, 25, 25)
    mask = -torch.ones(1, 1, 255, 255)
    weight = torch.zeros(1, 1, 25, 25)
    weight[0, 0, 12, 12] = 1
    assert float(mask_loss(pred, mask, weight)) == pytest.approx(np.log(2), rel=1e-6)


def test_fuse_and_weighted_total():
    a, b = torch.ones(2, 3), 3 * torch.ones(2, 3)
    assert torch.allclose(fuse_levels([a, b]), 2 * torch.ones(2, 3))
    w = torch.tensor([0.0, np.log(3.0)])  # softmax → 1/4, 3/4
    assert torch.allclose(fuse_levels([a, b], w), (0.25 + 2.25) * torch.ones(2, 3))
    total = weighted_total({"cls": torch.tensor(2.0), "loc": torch.tensor(3.0)}, {"cls": 1.0, "loc": 1.2})
    assert float(total) == pytest.approx(2 + 3.6)
    from siamkit.errors import ConfigError

    with pytest.raises(ConfigError):
        weighted_total({"cls": torch.tensor(1.0)}, {"cls": 1.0, "mask": 36.0})
