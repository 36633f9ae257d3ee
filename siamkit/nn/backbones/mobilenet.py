"""Dilated MobileNetV2 of SiamRPN++ (pysot ``mobile_v2``): stride 8, 127 → 15×15 and 255 → 31×31.

Modules ``layer0`` … ``layer7`` (stem + the seven inverted-residual stages); the published model uses width
1.4 and returns layers 3/5/7 with 44/134/448 channels. Stages 4–7 keep stride 1 and dilate by 2/2/4/4 (the
first block of a stage whose dilation grows uses half of it). Stride-2 convs are unpadded (``2 − stride``), as
in pysot, which gives the 15/31 sizes.
"""

from __future__ import annotations

import torch
from torch import nn

from siamkit.errors import ConfigError

__all__ = ["InvertedResidual", "MobileNetV2"]

# expansion t, channels c, repeats n, stride s, dilation d (pysot's dilated setting)
_SETTING = (
    (1, 16, 1, 1, 1),
    (6, 24, 2, 2, 1),
    (6, 32, 3, 2, 1),
    (6, 64, 4, 1, 2),
    (6, 96, 3, 1, 2),
    (6, 160, 3, 1, 4),
    (6, 320, 1, 1, 4),
)


class InvertedResidual(nn.Module):
    """1×1 expand → 3×3 depth-wise (stride/dilation) → 1×1 linear projection; residual iff shape is kept."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int, dilation: int = 1):
        super().__init__()
        self.use_res_connect = stride == 1 and inp == oup
        padding = dilation if dilation > 1 else 2 - stride
        hidden = inp * expand_ratio
        self.conv = nn.Sequential(
            nn.Conv2d(inp, hidden, 1, 1, 0, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, padding, dilation=dilation, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """Dilated MobileNetV2; ``forward`` returns the outputs of ``used_layers`` (indices into layer0…layer7)."""

    stride = 8

    def __init__(self, width_mult: float = 1.4, used_layers: tuple[int, ...] = (3, 5, 7)):
        super().__init__()
        used_layers = tuple(int(i) for i in used_layers)
        if not used_layers or any(i not in range(8) for i in used_layers):
            raise ConfigError(f"used_layers must be indices in 0…7, got {used_layers}.")
        if width_mult <= 0:
            raise ConfigError(f"width_mult must be positive, got {width_mult}.")
        self.used_layers = used_layers
        inp = int(32 * width_mult)
        self.layer0 = nn.Sequential(
            nn.Conv2d(3, inp, 3, 2, 0, bias=False), nn.BatchNorm2d(inp), nn.ReLU6(inplace=True)
        )
        channels = [inp]
        last_dilation = 1
        for idx, (t, c, n, s, d) in enumerate(_SETTING, start=1):
            oup = int(c * width_mult)
            blocks = []
            for i in range(n):
                if i == 0:
                    dd = d if d == last_dilation else max(d // 2, 1)
                    blocks.append(InvertedResidual(inp, oup, s, t, dd))
                else:
                    blocks.append(InvertedResidual(inp, oup, 1, t, d))
                inp = oup
            last_dilation = d
            self.add_module(f"layer{idx}", nn.Sequential(*blocks))
            channels.append(oup)
        self.out_channels = tuple(channels[i] for i in used_layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = []
        for idx in range(max(self.used_layers) + 1):
            x = getattr(self, f"layer{idx}")(x)
            outputs.append(x)
        return tuple(outputs[i] for i in self.used_layers)
