"""Similarity protocols: pair enumeration against brute force, the HSV stripe-histogram baseline."""

from __future__ import annotations

import itertools

import cv2
import numpy as np

from siamkit.eval.metric.protocols import hsv_stripe_histogram, pair_distances


def test_pair_distances_against_brute_force():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(6, 3)).astype(np.float32)
    labels = np.array([0, 0, 1, 1, 1, 2])
    d, same = pair_distances(emb, labels)
    ref = [(np.linalg.norm(emb[i] - emb[j]), labels[i] == labels[j]) for i, j in itertools.combinations(range(6), 2)]
    np.testing.assert_allclose(d, [r[0] for r in ref], rtol=1e-6)
    assert same.tolist() == [r[1] for r in ref] and same.sum() == 1 + 3
    mask = np.zeros((6, 6), bool)
    mask[0, 1] = mask[2, 5] = True
    d2, same2 = pair_distances(emb, labels, mask)
    assert same2.tolist() == [True, False]


def test_hsv_stripe_histogram_is_normalised():
    img = np.zeros((12, 6, 3), np.uint8)
    img[:6] = (255, 0, 0)
    f = hsv_stripe_histogram([img, cv2.flip(img, 0)], stripes=2, bins=(4, 2, 2))
    assert f.shape == (2, 2 * 16)
    np.testing.assert_allclose((f[0] ** 2).reshape(2, 16).sum(1), [1.0, 1.0], rtol=1e-6)
    assert not np.allclose(f[0], f[1])  # stripes keep the vertical layout
