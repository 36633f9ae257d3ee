"""Distances vs float64 brute force; zero-distance gradients; fp16/bf16 handling; Mahalanobis."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_metric_reference import dist, matrix

from siamkit.errors import ConfigError
from siamkit.losses.distances import (
    CosineDistance,
    CosineSimilarity,
    EuclideanDistance,
    MahalanobisDistance,
    SquaredEuclideanDistance,
    get_distance,
    safe_sqrt,
)

KINDS = [
    ("euclidean", False, lambda: EuclideanDistance()),
    ("euclidean", True, lambda: EuclideanDistance(normalize=True)),
    ("sqeuclidean", False, lambda: SquaredEuclideanDistance()),
    ("sqeuclidean", True, lambda: EuclideanDistance(squared=True, normalize=True)),
    ("cosine", False, lambda: CosineDistance()),
    ("cosine_similarity", False, lambda: CosineSimilarity()),
]


@st.composite
def embeddings(draw, max_b=9, max_d=6):
    b = draw(st.integers(1, max_b))
    d = draw(st.integers(1, max_d))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    x = rng.normal(size=(b, d)) * draw(st.sampled_from([0.1, 1.0, 10.0]))
    if b > 1 and draw(st.booleans()):
        x[rng.integers(b)] = x[rng.integers(b)]  # duplicate rows: zero distances off the diagonal
    return x


@pytest.mark.parametrize("kind,normalize,make", KINDS)
@settings(max_examples=20, deadline=None)
@given(x=embeddings())
def test_pairwise_and_paired_match_brute_force(kind, normalize, make, x):
    d = make()
    ref = matrix(x, kind, normalize)
    got = d.pairwise(torch.from_numpy(x)).numpy()
    # the matmul form cancels: error ~ eps64 * ‖x‖², so tolerance scales with the squared norm
    scale = 1.0 + float((x**2).sum(1).max())
    tol = 1e-6 * scale if kind == "euclidean" else 1e-11 * scale
    np.testing.assert_allclose(got, ref, atol=tol, rtol=1e-9)
    y = x[::-1].copy()
    paired = d.paired(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    np.testing.assert_allclose(paired, [dist(u, v, kind, normalize) for u, v in zip(x, y, strict=True)],
                               atol=1e-12, rtol=1e-9)


@pytest.mark.parametrize("kind,normalize,make", KINDS)
def test_cross_pairwise_shape_and_values(kind, normalize, make):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(6, 3))
    got = make().pairwise(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    assert got.shape == (4, 6)
    ref = np.array([[dist(u, v, kind, normalize) for v in y] for u in x])
    np.testing.assert_allclose(got, ref, atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind,normalize,make", KINDS)
def test_low_precision_inputs_are_computed_in_fp32(dtype, kind, normalize, make):
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(size=(7, 5)) * 30).to(dtype)
    x[3] = 300.0  # squared norm 450000 overflows fp16 (max 65504): must be computed in fp32
    got = make().pairwise(x)
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    ref = matrix(x.double().numpy(), kind, normalize)
    np.testing.assert_allclose(got.numpy(), ref, rtol=2e-3, atol=2e-3 * (1 + np.abs(ref).max()) ** 0.5)


@pytest.mark.parametrize("kind,normalize,make", KINDS + [("mahalanobis", False, lambda: MahalanobisDistance(3))])
def test_gradient_finite_at_zero_distance(kind, normalize, make):
    x = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], requires_grad=True)
    d = make()
    (d.pairwise(x).sum() + d.paired(x, x.flip(0)).sum() + d.paired(x, x).sum()).backward()
    assert torch.isfinite(x.grad).all()
    if kind == "euclidean" and not normalize:
        assert d.pairwise(x)[0, 1] == 0.0 and d.paired(x[:1], x[1:2])[0] == 0.0


def test_safe_sqrt_value_and_gradient():
    v = torch.tensor([0.0, 1e-20, 4.0], dtype=torch.float64, requires_grad=True)
    r = safe_sqrt(v)
    r.sum().backward()
    assert r.tolist() == [0.0, 0.0, 2.0]
    assert v.grad.tolist() == [0.0, 0.0, 0.25]


def test_mahalanobis_equals_quadratic_form_and_is_psd():
    torch.manual_seed(0)
    d = MahalanobisDistance(4, rank=3).double()
    with torch.no_grad():
        d.A.copy_(torch.randn(3, 4, dtype=torch.float64))
    x, y = torch.randn(5, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    m = d.metric().detach().numpy()
    assert np.linalg.eigvalsh(m).min() > -1e-12
    ref = np.array([[np.sqrt((u - v) @ m @ (u - v)) for v in y.numpy()] for u in x.numpy()])
    np.testing.assert_allclose(d.pairwise(x, y).detach().numpy(), ref, rtol=1e-10)
    np.testing.assert_allclose(d.paired(x, y[:5]).detach().numpy(), np.diag(ref[:, :5]), rtol=1e-10)
    # identity initialisation == Euclidean, and A is learnable
    fresh = MahalanobisDistance(4).double()
    np.testing.assert_allclose(fresh.pairwise(x).detach(), EuclideanDistance().pairwise(x), atol=1e-7)
    fresh.pairwise(x, y).sum().backward()
    assert fresh.A.grad is not None and torch.isfinite(fresh.A.grad).all()


def test_similarity_flag_and_bad_input():
    assert CosineSimilarity.inverted and not CosineDistance.inverted and not EuclideanDistance.inverted
    assert isinstance(get_distance("sqeuclidean"), SquaredEuclideanDistance)
    with pytest.raises(ConfigError, match="Unknown distance"):
        get_distance("manhattan")
    with pytest.raises(ConfigError, match="2-D"):
        EuclideanDistance().pairwise(torch.zeros(3))
    with pytest.raises(ConfigError, match="same shape"):
        EuclideanDistance().paired(torch.zeros(3, 2), torch.zeros(4, 2))
    with pytest.raises(ConfigError, match="dim"):
        MahalanobisDistance(3).pairwise(torch.zeros(2, 4))


def test_self_squared_distance_backward_passes_gradcheck():
    torch.manual_seed(0)
    x = torch.randn(7, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: EuclideanDistance(squared=True).pairwise(t), (x,))
    # asymmetric upstream gradient, against autograd on the explicit difference tensor
    w = torch.randn(7, 7, dtype=torch.float64)
    (EuclideanDistance(squared=True).pairwise(x) * w).sum().backward()
    ref_x = x.detach().clone().requires_grad_(True)
    (((ref_x[:, None] - ref_x[None]) ** 2).sum(-1) * w).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), ref_x.grad.numpy(), rtol=1e-10, atol=1e-10)
