"""Anchor and point grids of the Siamese region-proposal trackers (pysot convention).

Anchors are laid out like the network's output channels: index ``a·S·S + i·S + j`` is anchor
shape ``a`` at row ``i``, column ``j`` of the S×S score map. Coordinates are crop pixels
relative to the crop centre: the grid runs from ``−(S // 2)·stride`` to ``+(S // 2)·stride``
(−96 … +96 for S = 25, stride 8). Anchor sizes are truncated to integers before the scale is
applied, exactly as the published trackers do (``w = int(√(stride²/r))``, ``h = int(w·r)``),
giving 104×32, 88×40, 64×64, 40×80 and 32×96 px for stride 8, scale 8.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

DEFAULT_RATIOS = (0.33, 0.5, 1.0, 2.0, 3.0)
DEFAULT_SCALES = (8.0,)


def score_size(instance_size: int, exemplar_size: int, stride: int, base_size: int = 0) -> int:
    """Side of the score map: ``(instance − exemplar) // stride + 1 + base_size``."""
    return (int(instance_size) - int(exemplar_size)) // int(stride) + 1 + int(base_size)


def anchor_shapes(
    stride: int = 8, ratios: Sequence[float] = DEFAULT_RATIOS, scales: Sequence[float] = DEFAULT_SCALES
) -> list[tuple[float, float]]:
    """(width, height) of each anchor shape, ratio-major then scale (``r = h / w``)."""
    area = stride * stride
    shapes = []
    for r in ratios:
        ws = int(math.sqrt(area / r))
        hs = int(ws * r)
        for s in scales:
            shapes.append((float(ws * s), float(hs * s)))
    return shapes


def grid_offsets(size: int, stride: int, device=None, dtype=torch.float64) -> torch.Tensor:
    """The ``size`` cell centres along one axis, in crop pixels relative to the centre."""
    origin = -(size // 2) * stride
    return origin + stride * torch.arange(size, device=device, dtype=dtype)


def anchor_grid(
    size: int,
    stride: int = 8,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    scales: Sequence[float] = DEFAULT_SCALES,
    device=None,
    dtype=torch.float64,
) -> torch.Tensor:
    """All anchors of an S×S map as an (A·S·S)×4 tensor of (cx, cy, w, h)."""
    shapes = torch.tensor(anchor_shapes(stride, ratios, scales), device=device, dtype=dtype)  # A×2
    a = shapes.shape[0]
    offs = grid_offsets(size, stride, device, dtype)
    yy, xx = torch.meshgrid(offs, offs, indexing="ij")
    cx = xx.reshape(1, -1).expand(a, -1).reshape(-1)
    cy = yy.reshape(1, -1).expand(a, -1).reshape(-1)
    wh = shapes[:, None, :].expand(a, size * size, 2).reshape(-1, 2)
    return torch.stack([cx, cy, wh[:, 0], wh[:, 1]], dim=1)


def point_grid(size: int, stride: int = 8, device=None, dtype=torch.float64) -> torch.Tensor:
    """Cell centres of an S×S map as an (S·S)×2 tensor of (x, y), row-major."""
    offs = grid_offsets(size, stride, device, dtype)
    yy, xx = torch.meshgrid(offs, offs, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)
