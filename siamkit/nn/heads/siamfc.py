"""SiamFC score head: plain cross-correlation of the template over the search map, scaled and biased."""

from __future__ import annotations

import torch
from torch import nn

from siamkit.ops.correlation import xcorr

__all__ = ["SiamFCHead"]


class SiamFCHead(nn.Module):
    """``response = out_scale · (z ⋆ x) + bias`` (B×1×S×S).

    ``out_scale`` (0.001, a constant, not a parameter) keeps the raw correlations of 256-channel maps in the
    range of a logistic loss; ``bias`` is the learnable scalar of the original SiamFC's adjust layer
    (siamfc-pytorch drops it: load its checkpoints with ``bias`` = 0).
    """

    def __init__(self, out_scale: float = 0.001):
        super().__init__()
        self.out_scale = float(out_scale)
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return xcorr(x, z) * self.out_scale + self.bias
