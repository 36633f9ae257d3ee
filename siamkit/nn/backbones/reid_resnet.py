"""A ResNet (BasicBlock, ResNet-18/34 layout) for person crops, e.g. 256×128 or 128×64.

``last_stride=1`` keeps the last stage at 1/16 resolution (the BoT trick); ``base_width``
scales every stage (64 = the standard ResNet-18/34 widths).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


class BasicBlock(nn.Module):
    """Two 3×3 convs with a residual connection (1×1 projection when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ReIDResNet(nn.Module):
    """ResNet-18/34-style trunk; returns the last feature map (stride 16 or 32)."""

    def __init__(
        self,
        depth: int = 18,
        in_channels: int = 3,
        base_width: int = 64,
        last_stride: int = 1,
        blocks: Sequence[int] | None = None,
    ):
        super().__init__()
        if blocks is None:
            if depth not in DEPTHS:
                raise ValueError(f"depth must be one of {sorted(DEPTHS)} (or pass blocks=...), got {depth}")
            blocks = DEPTHS[depth]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, base_width, 7, 2, 3, bias=False),
            nn.BatchNorm2d(base_width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        stages = []
        cin = base_width
        for i, n in enumerate(blocks):
            cout = base_width * 2**i
            stride = 1 if i == 0 else (last_stride if i == len(blocks) - 1 else 2)
            layers = [BasicBlock(cin, cout, stride)] + [BasicBlock(cout, cout, 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*layers))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.out_channels = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():  # zero-init the last BN of each block: blocks start as identities
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x: Tensor) -> Tensor:
        return self.stages(self.stem(x))
