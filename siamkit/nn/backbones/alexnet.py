"""AlexNet backbones of the Siamese trackers: unpadded, total stride 8, 127 → 6×6 and 255 → 22×22.

* :class:`AlexNetV1` — SiamFC (siamfc-pytorch ``AlexNetV1``): grouped conv2/4/5 (two groups, as the original
  two-GPU AlexNet), BatchNorm with eps 1e-6 and momentum 0.05, no BN/ReLU after conv5 (conv5 keeps its bias).
* :class:`AlexNetLegacy` — SiamRPN/DaSiamRPN ``featureExtract`` and pysot ``alexnetlegacy``: plain convs, BN
  after every conv (eps 1e-5), max-pool *before* ReLU, a width multiplier (DaSiamRPN ``SiamRPNBIG`` is ×2).

Parameter names follow the reference modules (``conv1.0.weight`` …, ``features.0.weight`` …) so checkpoints
map with short tables.
"""

from __future__ import annotations

import torch
from torch import nn

from siamkit.errors import ConfigError

__all__ = ["AlexNetV1", "AlexNetLegacy", "alexnet_channels"]

_BASE = (96, 256, 384, 384, 256)


def alexnet_channels(width_mult: float, even: bool = False) -> tuple[int, ...]:
    """Channel widths of the five convs for a width multiplier (``int(c·m)`` as pysot; rounded up to even
    when ``even`` so two conv groups divide them)."""
    if width_mult <= 0:
        raise ConfigError(f"width_mult must be positive, got {width_mult}.")
    chans = [max(1, int(c * width_mult)) for c in _BASE]
    if even:
        chans = [c + (c % 2) for c in chans]
    return tuple(chans)


class AlexNetV1(nn.Module):
    """SiamFC AlexNet (grouped convs, BN eps 1e-6). Returns the conv5 map (256 channels at width 1)."""

    stride = 8

    def __init__(self, width_mult: float = 1.0):
        super().__init__()
        c1, c2, c3, c4, c5 = alexnet_channels(width_mult, even=True)

        def bn(c: int) -> nn.BatchNorm2d:
            return nn.BatchNorm2d(c, eps=1e-6, momentum=0.05)

        self.conv1 = nn.Sequential(nn.Conv2d(3, c1, 11, 2), bn(c1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
        self.conv2 = nn.Sequential(nn.Conv2d(c1, c2, 5, 1, groups=2), bn(c2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
        self.conv3 = nn.Sequential(nn.Conv2d(c2, c3, 3, 1), bn(c3), nn.ReLU(inplace=True))
        self.conv4 = nn.Sequential(nn.Conv2d(c3, c4, 3, 1, groups=2), bn(c4), nn.ReLU(inplace=True))
        self.conv5 = nn.Sequential(nn.Conv2d(c4, c5, 3, 1, groups=2))
        self.out_channels = c5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv5(self.conv4(self.conv3(self.conv2(self.conv1(x)))))


class AlexNetLegacy(nn.Module):
    """SiamRPN/DaSiamRPN/pysot AlexNet: conv-BN-pool-ReLU ×2, conv-BN-ReLU ×2, conv-BN (no final ReLU)."""

    stride = 8

    def __init__(self, width_mult: float = 1.0):
        super().__init__()
        c1, c2, c3, c4, c5 = alexnet_channels(width_mult)
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, kernel_size=11, stride=2),
            nn.BatchNorm2d(c1),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c1, c2, kernel_size=5),
            nn.BatchNorm2d(c2),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c2, c3, kernel_size=3),
            nn.BatchNorm2d(c3),
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, kernel_size=3),
            nn.BatchNorm2d(c4),
            nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, kernel_size=3),
            nn.BatchNorm2d(c5),
        )
        self.out_channels = c5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)
