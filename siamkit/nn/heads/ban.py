"""Anchor-free box-adaptive heads (SiamBAN, hqucv/siamban ``head/ban.py`` structure).

``cls`` is B×2×S×S logits (channel 0 background, 1 foreground); ``loc`` of :class:`MultiBAN` is B×4×S×S
distances (l, t, r, b) ≥ 0 **in search-crop pixels** from each point to the box sides
(``exp(loc_scale_level · raw)`` per level, then fused), as siamban's tracker decodes them.
:class:`DepthwiseBAN` alone returns the raw (pre-exp) regression.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from siamkit.errors import ConfigError
from siamkit.nn.heads.rpn import DepthwiseXCorr, fuse_levels
from siamkit.ops.correlation import xcorr

__all__ = ["CorrelationBAN", "DepthwiseBAN", "MultiBAN"]


class DepthwiseBAN(nn.Module):
    """One level: ``cls`` (``cls_out_channels``) and ``loc`` (4, raw) :class:`DepthwiseXCorr` branches."""

    def __init__(self, in_channels: int = 256, out_channels: int = 256, cls_out_channels: int = 2):
        super().__init__()
        self.cls = DepthwiseXCorr(in_channels, out_channels, cls_out_channels)
        self.loc = DepthwiseXCorr(in_channels, out_channels, 4)

    def template(self, zf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cls.template(zf), self.loc.template(zf)

    def search(self, xf: torch.Tensor, kernels) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cls.search(xf, kernels[0]), self.loc.search(xf, kernels[1])

    def forward(self, zf: torch.Tensor, xf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.search(xf, self.template(zf))


class MultiBAN(nn.Module):
    """Levels ``box2``, ``box3``, … fused by a mean or softmax weights; ``loc_scale`` (one learnable scalar
    per level, initialised to 1) scales the raw regression before ``exp``."""

    def __init__(self, in_channels: Sequence[int] = (256, 256, 256), cls_out_channels: int = 2, weighted=False):
        super().__init__()
        if not in_channels:
            raise ConfigError("MultiBAN needs at least one level.")
        self.num = len(in_channels)
        self.weighted = bool(weighted)
        for i, c in enumerate(in_channels):
            self.add_module(f"box{i + 2}", self._level(c, cls_out_channels))
        if self.weighted:
            self.cls_weight = nn.Parameter(torch.ones(self.num))
            self.loc_weight = nn.Parameter(torch.ones(self.num))
        self.loc_scale = nn.Parameter(torch.ones(self.num))

    @staticmethod
    def _level(channels: int, cls_out_channels: int) -> nn.Module:
        return DepthwiseBAN(channels, channels, cls_out_channels)

    def levels(self) -> list[nn.Module]:
        return [getattr(self, f"box{i + 2}") for i in range(self.num)]

    def template(self, zfs: Sequence[torch.Tensor]) -> tuple:
        return tuple(box.template(zf) for box, zf in zip(self.levels(), zfs, strict=True))

    def search(self, xfs: Sequence[torch.Tensor], kernels) -> tuple[torch.Tensor, torch.Tensor]:
        cls, loc = [], []
        for i, (box, xf, k) in enumerate(zip(self.levels(), xfs, kernels, strict=True)):
            c, raw = box.search(xf, k)
            cls.append(c)
            loc.append(torch.exp(raw * self.loc_scale[i]))
        return (
            fuse_levels(cls, self.cls_weight if self.weighted else None),
            fuse_levels(loc, self.loc_weight if self.weighted else None),
        )

    def forward(self, zfs, xfs) -> tuple[torch.Tensor, torch.Tensor]:
        return self.search(xfs, self.template(zfs))


class CorrelationBAN(nn.Module):
    """One level whose score is SiamFC's plain correlation and whose boxes are BAN's (l, t, r, b).

    ``cls`` is B×2×S×S with the foreground logit ``scale · out_scale · (z ⋆ x) + bias`` (background 0),
    so matching has no learned parameters beyond the backbone and the two scalars that calibrate the
    logit (``scale`` starts at 1: SiamFC's response exactly); ``loc`` is
    ``exp(loc_scale · raw)`` from a :class:`DepthwiseXCorr` branch. Parameter names (``bias``) match
    :class:`~siamkit.nn.heads.siamfc.SiamFCHead`, so a trained SiamFC initialises backbone and score.
    A learned classification branch trained on a few clips memorises their objects; plain correlation
    only compares template and search, which carries over to unseen objects.
    """

    def __init__(self, in_channels: int, hidden: int | None = None, out_scale: float = 0.001):
        super().__init__()
        self.out_scale = float(out_scale)
        self.bias = nn.Parameter(torch.zeros(1))
        self.scale = nn.Parameter(torch.ones(1))
        self.loc = DepthwiseXCorr(in_channels, hidden or in_channels, 4)
        self.loc_scale = nn.Parameter(torch.ones(1))

    @staticmethod
    def _one(levels) -> torch.Tensor:
        if isinstance(levels, torch.Tensor):
            return levels
        if len(levels) != 1:
            raise ConfigError(f"CorrelationBAN takes one feature level, got {len(levels)}.")
        return levels[0]

    def template(self, zfs) -> tuple[torch.Tensor, torch.Tensor]:
        zf = self._one(zfs)
        return zf, self.loc.template(zf)

    def search(self, xfs, kernels) -> tuple[torch.Tensor, torch.Tensor]:
        xf = self._one(xfs)
        zf, loc_kernel = kernels
        logit = xcorr(xf, zf) * (self.out_scale * self.scale) + self.bias
        cls = torch.cat([torch.zeros_like(logit), logit], dim=1)
        return cls, torch.exp(self.loc.search(xf, loc_kernel) * self.loc_scale)

    def levels(self) -> list[nn.Module]:
        return [self]

    def forward(self, zfs, xfs) -> tuple[torch.Tensor, torch.Tensor]:
        return self.search(xfs, self.template(zfs))
