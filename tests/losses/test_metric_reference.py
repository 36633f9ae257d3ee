"""Float64 brute-force references for the metric-learning tests (explicit loops), and their own checks."""

from __future__ import annotations

import math

import numpy as np


def dist(u: np.ndarray, v: np.ndarray, kind: str = "euclidean", normalize: bool = False) -> float:
    """Distance (or similarity for 'cosine_similarity') between two vectors, in float64."""
    u = np.asarray(u, np.float64)
    v = np.asarray(v, np.float64)
    if normalize or kind.startswith("cosine"):
        u = u / max(np.linalg.norm(u), 1e-12)
        v = v / max(np.linalg.norm(v), 1e-12)
    if kind == "euclidean":
        return math.sqrt(sum((a - b) ** 2 for a, b in zip(u, v, strict=True)))
    if kind == "sqeuclidean":
        return sum((a - b) ** 2 for a, b in zip(u, v, strict=True))
    if kind == "cosine":
        return max(1.0 - float(np.dot(u, v)), 0.0)
    if kind == "cosine_similarity":
        return float(np.dot(u, v))
    raise ValueError(kind)


def matrix(x: np.ndarray, kind: str = "euclidean", normalize: bool = False) -> np.ndarray:
    b = len(x)
    return np.array([[dist(x[i], x[j], kind, normalize) for j in range(b)] for i in range(b)])


def reduce(values: list[float], reduction: str) -> float:
    if not values:
        return 0.0
    if reduction == "sum":
        return float(sum(values))
    if reduction == "mean":
        return float(sum(values) / len(values))
    nonzero = [v for v in values if v > 0]
    return float(sum(values) / max(len(nonzero), 1))


def softplus(x: float) -> float:
    return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


def triplets(labels):
    b = len(labels)
    for a in range(b):
        for p in range(b):
            if p == a or labels[p] != labels[a]:
                continue
            for n in range(b):
                if labels[n] != labels[a]:
                    yield a, p, n


def test_reference_distances_hand_computed():
    assert dist([0, 0], [3, 4]) == 5.0
    assert dist([0, 0], [3, 4], "sqeuclidean") == 25.0
    assert abs(dist([1, 0], [0, 2], "cosine") - 1.0) < 1e-15
    assert abs(dist([3, 0], [0, 4], normalize=True) - math.sqrt(2)) < 1e-15
    assert list(triplets([0, 0, 1])) == [(0, 1, 2), (1, 0, 2)]
    assert reduce([0.0, 2.0, 4.0], "mean_nonzero") == 3.0
