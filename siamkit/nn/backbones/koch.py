"""Koch et al. (2015) convolutional twin for 105×105 greyscale characters.

Four conv layers (10×10, 7×7, 4×4, 4×4 kernels) with ReLU, max-pooling after the first three;
the published widths are 64-128-128-256 followed by a 4096-d sigmoid layer (that layer lives in
:class:`siamkit.nn.embedding.EmbeddingNet`, with ``pooling="flatten"``). ``widths`` can be made
smaller for CPU training and small shipped weights.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

KOCH_KERNELS = (10, 7, 4, 4)
KOCH_WIDTHS = (64, 128, 128, 256)


class KochNet(nn.Module):
    """Koch's convolutional trunk: returns the last feature map (N×C×6×6 at 105×105 input)."""

    def __init__(
        self,
        in_channels: int = 1,
        widths: Sequence[int] = KOCH_WIDTHS,
        kernels: Sequence[int] = KOCH_KERNELS,
        batch_norm: bool = False,
    ):
        super().__init__()
        if len(widths) != len(kernels):
            raise ValueError(f"widths {tuple(widths)} and kernels {tuple(kernels)} must have the same length")
        layers: list[nn.Module] = []
        channels = in_channels
        for i, (width, kernel) in enumerate(zip(widths, kernels, strict=True)):
            layers.append(nn.Conv2d(channels, width, kernel, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU(inplace=True))
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            channels = width
        self.features = nn.Sequential(*layers)
        self.out_channels = channels

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)
