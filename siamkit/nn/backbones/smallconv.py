"""A small VGG-style convnet for faces and signatures (CPU-trainable in minutes).

Each stage is ``conv3×3-BN-ReLU`` twice (or once) followed by 2×2 max-pooling.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class SmallConvNet(nn.Module):
    """``len(widths)`` stages, each halving the resolution; returns the last feature map."""

    def __init__(self, in_channels: int = 1, widths: Sequence[int] = (32, 64, 128, 256), convs_per_stage: int = 1):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for width in widths:
            for _ in range(convs_per_stage):
                layers += _conv_bn_relu(channels, width)
                channels = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.out_channels = channels

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)
