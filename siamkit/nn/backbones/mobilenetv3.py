"""MobileNetV3-Small, truncated the way NanoTrack uses it (stride 16, 48 output channels).

NanoTrack v1/v2 keep the stem and the first eight inverted-residual blocks of MobileNetV3-Small ×1.0
(Howard et al., 2019) and drops the rest, so a 255 px crop gives a 16×16×48 map and a 127 px crop
an 8×8×48 map (v3 adds a ninth, stride-1 block to 96 channels). Every convolution pads by
``(k − 1)/2``, so the map side is ``ceil(input / 16)``.

Block settings are ``(kernel, hidden, out, squeeze-excite, hard-swish, stride)``; the squeeze-excite
gate sits between the depth-wise convolution's batch-norm and its activation (NanoTrack's order).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

# (kernel, hidden channels, output channels, squeeze-excite, hard-swish, stride) after the 16-channel stem.
NANOTRACK_BLOCKS: tuple[tuple[int, int, int, bool, bool, int], ...] = (
    (3, 16, 16, True, False, 2),
    (3, 72, 24, False, False, 2),
    (3, 88, 24, False, False, 1),
    (5, 96, 40, True, True, 2),
    (5, 240, 40, True, True, 1),
    (5, 240, 40, True, True, 1),
    (5, 120, 48, True, True, 1),
    (5, 144, 48, True, True, 1),
)

# NanoTrack v3 adds one more stride-1 block (48 → 288 → 96 channels), so its features have 96 channels.
NANOTRACK_V3_BLOCKS: tuple[tuple[int, int, int, bool, bool, int], ...] = (
    *NANOTRACK_BLOCKS,
    (5, 288, 96, True, True, 1),
)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never dropping more than 10 %."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvBN(nn.Sequential):
    """Bias-free convolution followed by batch-norm (``conv``, ``bn``)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)


class SqueezeExcite(nn.Module):
    """Channel gate: global average → FC → ReLU → FC → hard-sigmoid → scale the input."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = make_divisible(channels // reduction, 8)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = x.mean(dim=(2, 3))
        gate = nn.functional.hardsigmoid(self.fc2(torch.relu(self.fc1(gate))))
        return x * gate[:, :, None, None]


class InvertedResidual(nn.Module):
    """1×1 expand (skipped when hidden == input) → depth-wise k×k → [SE] → act → 1×1 project.

    The residual connection is used when the stride is 1 and the channel count is unchanged.
    """

    def __init__(self, cin: int, hidden: int, cout: int, kernel: int, stride: int, use_se: bool, use_hs: bool):
        super().__init__()
        self.act = nn.Hardswish() if use_hs else nn.ReLU()
        self.expand = ConvBN(cin, hidden, 1) if hidden != cin else None
        self.dw = ConvBN(hidden, hidden, kernel, stride, groups=hidden)
        self.se = SqueezeExcite(hidden) if use_se else None
        self.project = ConvBN(hidden, cout, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x if self.expand is None else self.act(self.expand(x))
        y = self.dw(y)
        if self.expand is None:
            # Block without expansion: activation first, then the gate (MobileNetV3's layout).
            y = self.act(y)
            if self.se is not None:
                y = self.se(y)
        else:
            if self.se is not None:
                y = self.se(y)
            y = self.act(y)
        y = self.project(y)
        return x + y if self.residual else y


class MobileNetV3Small(nn.Module):
    """Stem (3×3/2 conv → BN → hard-swish) plus the inverted-residual ``blocks``."""

    def __init__(self, blocks: Sequence[tuple[int, int, int, bool, bool, int]] = NANOTRACK_BLOCKS, stem: int = 16):
        super().__init__()
        self.stem = ConvBN(3, stem, 3, stride=2)
        layers = []
        cin = stem
        for kernel, hidden, cout, use_se, use_hs, stride in blocks:
            layers.append(InvertedResidual(cin, hidden, cout, kernel, stride, use_se, use_hs))
            cin = cout
        self.blocks = nn.Sequential(*layers)
        self.out_channels = cin
        self.stride = 2 ** (1 + sum(1 for b in blocks if b[5] == 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """N×3×H×W float image (BGR 0–255 for NanoTrack) → N×C×⌈H/16⌉×⌈W/16⌉ features."""
        x = nn.functional.hardswish(self.stem(x))
        return self.blocks(x)


def mobilenetv3_small_nanotrack() -> MobileNetV3Small:
    """The truncated MobileNetV3-Small of NanoTrack v1 and v2 (190,520 parameters, stride 16, 48 channels)."""
    return MobileNetV3Small(NANOTRACK_BLOCKS)


def mobilenetv3_small_nanotrack_v3() -> MobileNetV3Small:
    """NanoTrack v3's trunk: v2's plus a 5×5 block to 96 channels (stride 16 kept)."""
    return MobileNetV3Small(NANOTRACK_V3_BLOCKS)
