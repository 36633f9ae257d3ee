"""Correlation ops against direct float64 loops over every output position (numpy, no torch conv)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from siamkit.errors import ConfigError
from siamkit.ops.correlation import asymmetric_fuse, xcorr, xcorr_depthwise, xcorr_up

dims = st.tuples(
    st.integers(1, 3),  # batch
    st.integers(1, 4),  # channels
    st.integers(1, 4),  # kernel h
    st.integers(1, 4),  # kernel w
    st.integers(0, 4),  # extra search h
    st.integers(0, 4),  # extra search w
    st.integers(0, 2**31 - 1),  # seed
)


def _rand(rng, *shape):
    return rng.standard_normal(shape)


def _window(x, i, j, h, w):
    return x[..., i : i + h, j : j + w]


@settings(max_examples=40, deadline=None)
@given(dims, st.integers(1, 3))
def test_xcorr_matches_loop(d, scales):
    b, c, h, w, eh, ew, seed = d
    rng = np.random.default_rng(seed)
    z = _rand(rng, b, c, h, w)
    x = _rand(rng, b * scales, c, h + eh, w + ew)
    ref = np.zeros((b * scales, 1, eh + 1, ew + 1))
    for n in range(b * scales):
        for i in range(eh + 1):
            for j in range(ew + 1):
                ref[n, 0, i, j] = np.sum(_window(x[n], i, j, h, w) * z[n % b])
    out = xcorr(torch.tensor(x, dtype=torch.float32), torch.tensor(z, dtype=torch.float32))
    np.testing.assert_allclose(out.double().numpy(), ref, rtol=1e-4, atol=1e-4)


@settings(max_examples=40, deadline=None)
@given(dims, st.integers(1, 4))
def test_xcorr_up_matches_loop(d, k):
    b, c, h, w, eh, ew, seed = d
    rng = np.random.default_rng(seed)
    kernel = _rand(rng, b, k * c, h, w)
    x = _rand(rng, b, c, h + eh, w + ew)
    ref = np.zeros((b, k, eh + 1, ew + 1))
    for n in range(b):
        for o in range(k):
            kern = kernel[n, o * c : (o + 1) * c]  # block o of C channels
            for i in range(eh + 1):
                for j in range(ew + 1):
                    ref[n, o, i, j] = np.sum(_window(x[n], i, j, h, w) * kern)
    out = xcorr_up(torch.tensor(x), torch.tensor(kernel))
    assert out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10, atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(dims)
def test_xcorr_depthwise_matches_loop(d):
    b, c, h, w, eh, ew, seed = d
    rng = np.random.default_rng(seed)
    z = _rand(rng, b, c, h, w)
    x = _rand(rng, b, c, h + eh, w + ew)
    ref = np.zeros((b, c, eh + 1, ew + 1))
    for n in range(b):
        for ch in range(c):
            for i in range(eh + 1):
                for j in range(ew + 1):
                    ref[n, ch, i, j] = np.sum(_window(x[n, ch], i, j, h, w) * z[n, ch])
    out = xcorr_depthwise(torch.tensor(x), torch.tensor(z))
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10, atol=1e-10)


@settings(max_examples=30, deadline=None)
@given(dims, st.integers(1, 3), st.booleans())
def test_asymmetric_fuse_is_conv_over_concatenation(d, c_out, with_bias):
    """Reference: concatenate [template; search window] along channels and apply the full 2C kernel."""
    b, c, h, w, eh, ew, seed = d
    rng = np.random.default_rng(seed)
    z = _rand(rng, b, c, h, w)
    x = _rand(rng, b, c, h + eh, w + ew)
    weight = _rand(rng, c_out, 2 * c, h, w)  # channels [0, C) see the template, [C, 2C) the search window
    bias = _rand(rng, c_out) if with_bias else np.zeros(c_out)
    extra = _rand(rng, b, c_out)
    ref = np.zeros((b, c_out, eh + 1, ew + 1))
    for n in range(b):
        for i in range(eh + 1):
            for j in range(ew + 1):
                stacked = np.concatenate([z[n], _window(x[n], i, j, h, w)], axis=0)
                for o in range(c_out):
                    ref[n, o, i, j] = np.sum(stacked * weight[o]) + bias[o] + extra[n, o]
    t = torch.tensor
    out = asymmetric_fuse(
        t(x), t(z), t(weight[:, c:]), t(weight[:, :c]), t(bias) if with_bias else None, extra=t(extra)
    )
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10, atol=1e-10)


def test_xcorr_hand_computed():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    z = torch.tensor([[[[1.0, 0.0], [0.0, -1.0]]]])  # x[i, j] - x[i+1, j+1] = -5 everywhere
    assert torch.equal(xcorr(x, z), torch.full((1, 1, 3, 3), -5.0))


def test_bad_shapes_raise():
    x = torch.zeros(2, 3, 8, 8)
    with pytest.raises(ConfigError):
        xcorr(x, torch.zeros(2, 4, 3, 3))  # channels differ
    with pytest.raises(ConfigError):
        xcorr_depthwise(torch.zeros(2, 3, 3, 3), torch.zeros(2, 3, 8, 8))  # arguments swapped
    with pytest.raises(ConfigError):
        xcorr_up(x, torch.zeros(2, 7, 3, 3))  # 7 is not a multiple of 3 channels
    with pytest.raises(ConfigError):
        xcorr_depthwise(x, torch.zeros(3, 3))
