"""Atrous ResNet-50 of SiamRPN++/SiamMask/SiamBAN (pysot ``resnet_atrous``): total stride 8, 127 → 15×15 and
255 → 31×31 at layer2/3/4.

Differences from torchvision's ResNet-50, all needed to load the published weights and keep the geometry:

* ``conv1`` 7×7 stride 2 with **padding 0** (the max-pool keeps padding 1);
* the first block of ``layer2`` has an unpadded stride-2 3×3 ``conv2``, and its downsample is a **3×3
  stride-2 conv without padding** (not 1×1);
* ``layer3``/``layer4`` keep stride 1 and dilate by 2/4; their first block uses half the dilation (1/2) in
  ``conv2`` and a 3×3 downsample with that half dilation and matching padding.

``forward`` returns the maps listed in ``used_layers`` out of ``[stem, layer1, layer2, layer3, layer4]``
(indices 0…4; the stem map is ReLU(BN(conv1)) before the max-pool — SiamMask's refine uses 0/1/2). Layers past
the last used one are not built (as pysot), so SiamMask's ResNet stops at layer3.
"""

from __future__ import annotations

import torch
from torch import nn

from siamkit.errors import ConfigError

__all__ = ["Bottleneck", "ResNetAtrous", "resnet50_atrous"]


class Bottleneck(nn.Module):
    """1×1 reduce → 3×3 (stride or dilation) → 1×1 expand ×4, with an optional downsample on the shortcut."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1, downsample=None):
        super().__init__()
        padding = 2 - stride  # 1 for stride 1; 0 for the stride-2 block (unpadded, as pysot)
        if downsample is not None and dilation > 1:
            dilation //= 2  # the first block of a dilated layer uses half the dilation
            padding = dilation
        if dilation > 1:
            padding = dilation
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(
            planes, planes, kernel_size=3, stride=stride, padding=padding, dilation=dilation, bias=False
        )
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class ResNetAtrous(nn.Module):
    """Bottleneck ResNet with stride 8 (layer3/4 dilated), returning the maps in ``used_layers``.

    ``base_width`` (64 in ResNet-50) and ``blocks`` exist so tests can build tiny variants; ``out_channels``
    lists the channels of each returned map (512/1024/2048 for layers 2/3/4 at the published width).
    """

    stride = 8

    def __init__(
        self,
        blocks: tuple[int, int, int, int] = (3, 4, 6, 3),
        used_layers: tuple[int, ...] = (2, 3, 4),
        base_width: int = 64,
    ):
        super().__init__()
        used_layers = tuple(int(i) for i in used_layers)
        if not used_layers or any(i not in range(5) for i in used_layers):
            raise ConfigError(f"used_layers must be indices in 0…4 (stem, layer1…layer4), got {used_layers}.")
        if len(blocks) != 4 or min(blocks) < 1:
            raise ConfigError(f"blocks must be four positive block counts, got {blocks}.")
        self.used_layers = used_layers
        w = int(base_width)
        self.inplanes = w
        self.conv1 = nn.Conv2d(3, w, kernel_size=7, stride=2, padding=0, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(w, blocks[0])
        self.layer2 = self._make_layer(2 * w, blocks[1], stride=2)
        last = max(used_layers)
        self.layer3 = self._make_layer(4 * w, blocks[2], dilation=2) if last >= 3 else None
        self.layer4 = self._make_layer(8 * w, blocks[3], dilation=4) if last >= 4 else None
        channels = (w, 4 * w, 8 * w, 16 * w, 32 * w)
        self.out_channels = tuple(channels[i] for i in used_layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, planes: int, n: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
        downsample = None
        out = planes * Bottleneck.expansion
        if stride != 1 or self.inplanes != out:
            if stride == 1 and dilation == 1:
                conv = nn.Conv2d(self.inplanes, out, kernel_size=1, stride=1, bias=False)
            else:  # 3×3 downsample: unpadded for the stride-2 layer, half dilation for dilated layers
                dd = dilation // 2 if dilation > 1 else 1
                pad = dd if dilation > 1 else 0
                conv = nn.Conv2d(self.inplanes, out, 3, stride=stride, padding=pad, dilation=dd, bias=False)
            downsample = nn.Sequential(conv, nn.BatchNorm2d(out))
        layers = [Bottleneck(self.inplanes, planes, stride, dilation, downsample)]
        self.inplanes = out
        layers += [Bottleneck(out, planes, 1, dilation) for _ in range(1, n)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        stem = self.relu(self.bn1(self.conv1(x)))
        maps = [stem]
        y = self.maxpool(stem)
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            if layer is None or len(maps) > max(self.used_layers):
                break
            y = layer(y)
            maps.append(y)
        return tuple(maps[i] for i in self.used_layers)


def resnet50_atrous(used_layers: tuple[int, ...] = (2, 3, 4), base_width: int = 64, blocks=(3, 4, 6, 3)):
    """The published atrous ResNet-50 (``base_width``/``blocks`` shrink it for tests)."""
    return ResNetAtrous(tuple(blocks), tuple(used_layers), base_width)
