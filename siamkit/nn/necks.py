"""Adjust layers between backbone and head (pysot ``AdjustLayer``/``AdjustAllLayer``).

Each level is a 1×1 conv (no bias) + BN to the head's width. Template maps (narrower than 20 cells — the
15×15 of a 127 crop) are centre-cropped to ``center_size`` (7) so the depth-wise heads see 7×7 → 5×5 kernels;
search maps (31×31) pass whole. The crop offset is ``(W − 7) // 2`` (4 for 15), as pysot and SiamBAN-ACM.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from siamkit.errors import ConfigError

__all__ = ["AdjustLayer", "AdjustAllLayer", "center_crop"]

#: Maps narrower than this are treated as template maps and centre-cropped (pysot's rule).
TEMPLATE_MAX_WIDTH = 20


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``size``×``size`` cells of a B×C×H×W map (offset ``(W − size) // 2`` on both axes)."""
    left = (x.shape[3] - size) // 2
    top = (x.shape[2] - size) // 2
    return x[:, :, top : top + size, left : left + size]


class AdjustLayer(nn.Module):
    """1×1 conv + BN; template maps (width < 20) are centre-cropped to ``center_size``."""

    def __init__(self, in_channels: int, out_channels: int, center_size: int = 7):
        super().__init__()
        self.downsample = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False), nn.BatchNorm2d(out_channels)
        )
        self.center_size = center_size

    def forward(self, x: torch.Tensor, crop: bool | None = None) -> torch.Tensor:
        """``crop``: True for template maps, False for search maps, None for pysot's rule (width < 20)."""
        x = self.downsample(x)
        if crop is None:
            crop = x.shape[3] < TEMPLATE_MAX_WIDTH
        if crop:
            x = center_crop(x, self.center_size)
        return x


class AdjustAllLayer(nn.Module):
    """One :class:`AdjustLayer` per backbone level: ``downsample`` for one level, else ``downsample2``,
    ``downsample3``, … (pysot's names). Takes and returns a tuple of maps (a lone tensor for one level)."""

    def __init__(self, in_channels: Sequence[int], out_channels: Sequence[int], center_size: int = 7):
        super().__init__()
        if len(in_channels) != len(out_channels) or not in_channels:
            raise ConfigError(
                f"AdjustAllLayer needs as many input as output widths, got {list(in_channels)} and "
                f"{list(out_channels)}."
            )
        self.num = len(out_channels)
        self.out_channels = tuple(out_channels)
        if self.num == 1:
            self.downsample = AdjustLayer(in_channels[0], out_channels[0], center_size)
        else:
            for i, (cin, cout) in enumerate(zip(in_channels, out_channels, strict=True)):
                self.add_module(f"downsample{i + 2}", AdjustLayer(cin, cout, center_size))

    def forward(self, features, crop: bool | None = None):
        if self.num == 1:
            return self.downsample(features[0] if isinstance(features, (tuple, list)) else features, crop)
        if len(features) != self.num:
            raise ConfigError(f"AdjustAllLayer expected {self.num} feature maps, got {len(features)}.")
        return tuple(getattr(self, f"downsample{i + 2}")(f, crop) for i, f in enumerate(features))
