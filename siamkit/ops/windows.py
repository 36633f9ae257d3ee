"""Cosine (Hann) windows and the scale/ratio change penalty of the Siamese trackers.

The window favours small displacements; the penalty favours boxes whose size and aspect
ratio are close to the previous ones (reference §1.7–1.8):

    g(w, h) = √((w + q)(h + q)),  q = (w + h) / 2
    s_c = max(ρ, 1/ρ),  ρ = g(w, h) / g(w₀, h₀)
    r_c = max(τ, 1/τ),  τ = (w₀ / h₀) / (w / h)
    penalty = exp(−(r_c·s_c − 1)·k)
"""

from __future__ import annotations

import torch


def hanning(size: int, device=None, dtype=torch.float64) -> torch.Tensor:
    """Symmetric Hann window of ``size`` points, peak 1 (NumPy's ``hanning``)."""
    if size == 1:
        return torch.ones(1, device=device, dtype=dtype)
    n = torch.arange(size, device=device, dtype=dtype)
    return 0.5 - 0.5 * torch.cos(2 * torch.pi * n / (size - 1))


def hann_window(size: int, device=None, dtype=torch.float64, normalise: bool = False) -> torch.Tensor:
    """S×S outer product of two Hann windows (peak 1, or sum 1 with ``normalise``)."""
    h = hanning(size, device, dtype)
    window = torch.outer(h, h)
    return window / window.sum() if normalise else window


def anchor_window(size: int, anchor_num: int, device=None, dtype=torch.float64) -> torch.Tensor:
    """The S×S Hann window flattened and tiled over ``anchor_num`` anchors: (A·S·S,)."""
    return hann_window(size, device, dtype).reshape(-1).repeat(anchor_num)


def padded_side(w: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """The side of the context square around a (w, h) box, ``√((w + p)(h + p))`` with ``p = (w + h)/2``."""
    pad = (w + h) * 0.5
    return torch.sqrt((w + pad) * (h + pad))


def change(r: torch.Tensor) -> torch.Tensor:
    """How far a ratio is from 1, either way: ``max(r, 1/r)``."""
    return torch.maximum(r, 1.0 / r)


def change_penalty(
    w: torch.Tensor, h: torch.Tensor, w0: torch.Tensor, h0: torch.Tensor, k: float | torch.Tensor
) -> torch.Tensor:
    """Scale/ratio change penalty of predicted sizes (w, h) against the reference (w₀, h₀).

    All arguments broadcast; typically w, h are B×N and w₀, h₀, k are B×1.
    """
    w0 = torch.as_tensor(w0, dtype=w.dtype, device=w.device)
    h0 = torch.as_tensor(h0, dtype=w.dtype, device=w.device)
    s_c = change(padded_side(w, h) / padded_side(w0, h0))
    r_c = change((w0 / h0) / (w / h))
    return torch.exp(-(r_c * s_c - 1.0) * k)
