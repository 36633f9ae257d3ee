"""Region-proposal heads with anchors (SiamRPN, DaSiamRPN, SiamRPN++) — pysot's ``rpn.py`` structure.

Every head is split into ``template(zf)`` (run once per target: turns template features into correlation
kernels) and ``search(xf, kernels)`` (run per frame), so trackers cache the template half. ``forward(zf, xf)``
chains the two.

Output layout (as pysot/DaSiamRPN): ``cls`` is B×2A×S×S with channels ``[bg_0 … bg_{A−1}, fg_0 … fg_{A−1}]``
(``cls.view(B, 2, A, S, S)`` puts the softmax pair on dim 1); ``loc`` is B×4A×S×S laid out as
``loc.view(B, 4, A, S, S)`` = (dx, dy, dw, dh) per anchor.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from siamkit.errors import ConfigError
from siamkit.ops.correlation import xcorr_depthwise, xcorr_up

__all__ = ["UPChannelRPN", "DepthwiseXCorr", "DepthwiseRPN", "MultiRPN", "fuse_levels"]


class UPChannelRPN(nn.Module):
    """SiamRPN head: a 3×3 conv turns the template map into 2A (cls) and 4A (loc) kernels of ``hidden``
    channels each; a 3×3 conv adapts the search map; :func:`xcorr_up` correlates; 1×1 ``loc_adjust`` on loc.

    DaSiamRPN names: ``conv_cls1``/``conv_r1`` = ``template_cls_conv``/``template_loc_conv``,
    ``conv_cls2``/``conv_r2`` = ``search_cls_conv``/``search_loc_conv``, ``regress_adjust`` = ``loc_adjust``.
    """

    def __init__(self, anchor_num: int = 5, in_channels: int = 256, hidden: int | None = None):
        super().__init__()
        hidden = in_channels if hidden is None else hidden
        self.anchor_num = anchor_num
        self.template_cls_conv = nn.Conv2d(in_channels, hidden * 2 * anchor_num, kernel_size=3)
        self.template_loc_conv = nn.Conv2d(in_channels, hidden * 4 * anchor_num, kernel_size=3)
        self.search_cls_conv = nn.Conv2d(in_channels, hidden, kernel_size=3)
        self.search_loc_conv = nn.Conv2d(in_channels, hidden, kernel_size=3)
        self.loc_adjust = nn.Conv2d(4 * anchor_num, 4 * anchor_num, kernel_size=1)

    def template(self, zf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.template_cls_conv(zf), self.template_loc_conv(zf)

    def search(self, xf: torch.Tensor, kernels) -> tuple[torch.Tensor, torch.Tensor]:
        cls_kernel, loc_kernel = kernels
        cls = xcorr_up(self.search_cls_conv(xf), cls_kernel)
        loc = self.loc_adjust(xcorr_up(self.search_loc_conv(xf), loc_kernel))
        return cls, loc

    def forward(self, zf: torch.Tensor, xf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.search(xf, self.template(zf))


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    """Unpadded conv (no bias) + BN + ReLU: the per-input adapter of the correlation heads."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class DepthwiseXCorr(nn.Module):
    """3×3 conv+BN+ReLU on each input (7→5 template, 31→29 search), depth-wise correlation, then
    ``head`` = 1×1 conv+BN+ReLU and a 1×1 conv (with bias) to ``out_channels``."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int, kernel_size: int = 3):
        super().__init__()
        self.conv_kernel = conv_bn_relu(in_channels, hidden, kernel_size)
        self.conv_search = conv_bn_relu(in_channels, hidden, kernel_size)
        self.head = nn.Sequential(
            nn.Conv2d(hidden, hidden, kernel_size=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, kernel_size=1),
        )

    def template(self, zf: torch.Tensor) -> torch.Tensor:
        return self.conv_kernel(zf)

    def correlate(self, xf: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        """The depth-wise correlation map before ``head`` (SiamMask's refine reads it)."""
        return xcorr_depthwise(self.conv_search(xf), kernel)

    def search(self, xf: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        return self.head(self.correlate(xf, kernel))

    def forward(self, zf: torch.Tensor, xf: torch.Tensor) -> torch.Tensor:
        return self.search(xf, self.template(zf))


class DepthwiseRPN(nn.Module):
    """SiamRPN++ head for one level: ``cls`` (2A) and ``loc`` (4A) :class:`DepthwiseXCorr` branches."""

    def __init__(self, anchor_num: int = 5, in_channels: int = 256, out_channels: int = 256):
        super().__init__()
        self.anchor_num = anchor_num
        self.cls = DepthwiseXCorr(in_channels, out_channels, 2 * anchor_num)
        self.loc = DepthwiseXCorr(in_channels, out_channels, 4 * anchor_num)

    def template(self, zf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cls.template(zf), self.loc.template(zf)

    def search(self, xf: torch.Tensor, kernels) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cls.search(xf, kernels[0]), self.loc.search(xf, kernels[1])

    def forward(self, zf: torch.Tensor, xf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.search(xf, self.template(zf))


def fuse_levels(outputs: Sequence[torch.Tensor], weight: torch.Tensor | None) -> torch.Tensor:
    """Mean of per-level outputs, or their sum weighted by ``softmax(weight)`` (pysot ``weighted: true``)."""
    if weight is None:
        return sum(outputs) / len(outputs)
    w = F.softmax(weight, dim=0)
    return sum(o * w[i] for i, o in enumerate(outputs))


class MultiRPN(nn.Module):
    """One :class:`DepthwiseRPN` per level (``rpn2``, ``rpn3``, …) fused by a mean or learned softmax
    weights ``cls_weight``/``loc_weight`` (initialised to ones, i.e. an equal mix)."""

    def __init__(self, anchor_num: int = 5, in_channels: Sequence[int] = (256, 256, 256), weighted: bool = False):
        super().__init__()
        if not in_channels:
            raise ConfigError("MultiRPN needs at least one level.")
        self.anchor_num = anchor_num
        self.num = len(in_channels)
        self.weighted = bool(weighted)
        for i, c in enumerate(in_channels):
            self.add_module(f"rpn{i + 2}", DepthwiseRPN(anchor_num, c, c))
        if self.weighted:
            self.cls_weight = nn.Parameter(torch.ones(self.num))
            self.loc_weight = nn.Parameter(torch.ones(self.num))

    def levels(self) -> list[DepthwiseRPN]:
        return [getattr(self, f"rpn{i + 2}") for i in range(self.num)]

    def template(self, zfs: Sequence[torch.Tensor]) -> tuple:
        return tuple(rpn.template(zf) for rpn, zf in zip(self.levels(), zfs, strict=True))

    def search(self, xfs: Sequence[torch.Tensor], kernels) -> tuple[torch.Tensor, torch.Tensor]:
        outs = [rpn.search(xf, k) for rpn, xf, k in zip(self.levels(), xfs, kernels, strict=True)]
        cls = fuse_levels([o[0] for o in outs], self.cls_weight if self.weighted else None)
        loc = fuse_levels([o[1] for o in outs], self.loc_weight if self.weighted else None)
        return cls, loc

    def forward(self, zfs, xfs) -> tuple[torch.Tensor, torch.Tensor]:
        return self.search(xfs, self.template(zfs))
