"""SiamBAN-ACM head (wencheng256/SiamBAN-ACM ``head/ban.py``): asymmetric convolution instead of a dynamic
depth-wise correlation, plus an embedding of the initial box size.

Per level and branch (:class:`ACMXCorr`): template 3×3 conv+BN+ReLU (7→5) then ``xorr_kernel`` 5×5 conv with
bias → a C×1×1 ``kernel_part``; box prior (w, h) of the target in exemplar-crop pixels → MLP 2→32→32→C with
BN1d+ReLU (``xorr_bbox``) → ``bbox_part``; search 3×3 conv+BN+ReLU (31→29) then ``xorr_search`` 5×5 conv without
bias → 25×25 ``search_part``. Fusion (:func:`~siamkit.ops.correlation.asymmetric_fuse`) = search_part +
kernel_part + bbox_part, then ``xorr_activate`` (BN, ReLU, 3×3 conv, BN, ReLU) and ``head`` (3×3 conv+BN+ReLU,
3×3 conv to 2 or 4). The template half is computed once by ``template(zf, wh)``.

``fuse_size`` (published: 5) is the side of ``xorr_kernel``/``xorr_search``; it must turn the template map left by
``conv_kernel`` into 1×1 (a 6×6 template → 4×4 → ``fuse_size`` 4 on the Lite0 trunk).
"""

from __future__ import annotations

import torch
from torch import nn

from siamkit.errors import ConfigError
from siamkit.nn.heads.ban import MultiBAN
from siamkit.nn.heads.rpn import conv_bn_relu

__all__ = ["ACMXCorr", "ACMBAN", "MultiACMBAN", "box_wh"]


def box_wh(box: torch.Tensor) -> torch.Tensor:
    """(w, h) of B×2 (w, h) or B×4 boxes whose last two columns are w, h (xywh or cxcywh) → B×2."""
    box = torch.as_tensor(box)
    if box.dim() == 1:
        box = box.unsqueeze(0)
    if box.dim() != 2 or box.shape[1] not in (2, 4):
        raise ConfigError(
            f"The ACM box prior must be B×2 (w, h) or B×4 (…, w, h) in exemplar-crop pixels, got {tuple(box.shape)}."
        )
    return box[:, -2:]


class ACMXCorr(nn.Module):
    """One ACM branch (cls or loc) of one level."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int, kernel_size: int = 3, fuse_size: int = 5):
        super().__init__()
        self.conv_kernel = conv_bn_relu(in_channels, hidden, kernel_size)
        self.conv_search = conv_bn_relu(in_channels, hidden, kernel_size)
        self.head = nn.Sequential(
            nn.Conv2d(hidden, hidden, kernel_size=3, padding=1),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, kernel_size=3, padding=1),
        )
        self.xorr_bbox = nn.Sequential(
            nn.Linear(2, 32),
            nn.BatchNorm1d(32),
            nn.ReLU(inplace=True),
            nn.Linear(32, 32),
            nn.BatchNorm1d(32),
            nn.ReLU(inplace=True),
            nn.Linear(32, hidden, bias=False),
        )
        self.fuse_size = int(fuse_size)
        self.xorr_search = nn.Conv2d(hidden, hidden, kernel_size=fuse_size, bias=False)
        self.xorr_kernel = nn.Conv2d(hidden, hidden, kernel_size=fuse_size)
        self.xorr_activate = nn.Sequential(
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, kernel_size=3, padding=1),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
        )

    def template(self, zf: torch.Tensor, wh: torch.Tensor) -> torch.Tensor:
        """Template half of the fusion: ``kernel_part + bbox_part`` (B×C×1×1)."""
        kernel_part = self.xorr_kernel(self.conv_kernel(zf))
        if kernel_part.shape[-2:] != (1, 1):
            side = self.fuse_size + self.conv_kernel[0].kernel_size[0] - 1
            raise ConfigError(
                f"ACM (fuse size {self.fuse_size}) expects {side}×{side} template features "
                f"({self.fuse_size}×{self.fuse_size} after conv_kernel); got {tuple(zf.shape[-2:])}."
            )
        bbox_part = self.xorr_bbox(wh.to(kernel_part.dtype))
        return kernel_part + bbox_part.reshape(kernel_part.shape)

    def search(self, xf: torch.Tensor, part: torch.Tensor) -> torch.Tensor:
        search_part = self.xorr_search(self.conv_search(xf))
        return self.head(self.xorr_activate(search_part + part))

    def forward(self, zf: torch.Tensor, xf: torch.Tensor, wh: torch.Tensor) -> torch.Tensor:
        return self.search(xf, self.template(zf, wh))


class ACMBAN(nn.Module):
    """One ACM level: ``cls`` and ``loc`` branches."""

    def __init__(self, in_channels: int = 256, out_channels: int = 256, cls_out_channels: int = 2, fuse_size: int = 5):
        super().__init__()
        self.cls = ACMXCorr(in_channels, out_channels, cls_out_channels, fuse_size=fuse_size)
        self.loc = ACMXCorr(in_channels, out_channels, 4, fuse_size=fuse_size)

    def template(self, zf: torch.Tensor, wh: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cls.template(zf, wh), self.loc.template(zf, wh)

    def search(self, xf: torch.Tensor, parts) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cls.search(xf, parts[0]), self.loc.search(xf, parts[1])


class MultiACMBAN(MultiBAN):
    """:class:`~siamkit.nn.heads.ban.MultiBAN` with ACM levels; ``template(zfs, wh)`` takes the box prior."""

    def __init__(self, in_channels=(256, 256, 256), cls_out_channels: int = 2, weighted=False, fuse_size: int = 5):
        self._fuse_size = int(fuse_size)  # read by _level while MultiBAN builds the levels
        super().__init__(in_channels, cls_out_channels, weighted)

    def _level(self, channels: int, cls_out_channels: int) -> nn.Module:  # type: ignore[override]
        return ACMBAN(channels, channels, cls_out_channels, self._fuse_size)

    def template(self, zfs, wh: torch.Tensor | None = None) -> tuple:  # type: ignore[override]
        if wh is None:
            raise ConfigError(
                "SiamBAN-ACM needs the target's box prior.", hint="Pass box=(w, h) in exemplar-crop pixels."
            )
        wh = box_wh(wh).to(zfs[0].device)
        return tuple(box.template(zf, wh) for box, zf in zip(self.levels(), zfs, strict=True))

    def forward(self, zfs, xfs, wh: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        return self.search(xfs, self.template(zfs, wh))
