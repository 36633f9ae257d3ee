"""SiamMask mask branch: a depth-wise correlation head predicting a 63×63 mask per response-map cell
(``MaskCorr``), and the U-Net-like ``Refine`` that upsamples one cell's mask to 127×127 with backbone
features of the search crop (pysot ``head/mask.py``, foolwood/SiamMask ``siammask_sharp``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from siamkit.errors import ConfigError
from siamkit.nn.heads.rpn import DepthwiseXCorr

__all__ = ["MaskCorr", "Refine", "refine_positions"]


class MaskCorr(DepthwiseXCorr):
    """:class:`DepthwiseXCorr` with ``out_channels = 63·63``; ``search`` also returns the correlation map."""

    def __init__(self, in_channels: int = 256, hidden: int = 256, out_channels: int = 63 * 63):
        super().__init__(in_channels, hidden, out_channels)

    def search(self, xf: torch.Tensor, kernel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        corr = self.correlate(xf, kernel)
        return self.head(corr), corr


def _conv_pair(cin: int, mid: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, mid, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(mid, cout, 3, padding=1),
        nn.ReLU(inplace=True),
    )


def refine_positions(position, batch: int) -> torch.Tensor:
    """Normalise a refine position to a B×2 CPU long tensor of (row, col) response-map cells."""
    if isinstance(position, torch.Tensor):
        pos = position.detach().to("cpu", torch.long)
    else:
        pos = torch.as_tensor(position, dtype=torch.long, device="cpu")
    if pos.dim() == 1 and pos.numel() == 2:
        pos = pos.expand(batch, 2)
    if pos.shape != (batch, 2):
        raise ConfigError(
            f"position must be (row, col) or a B×2 tensor of cells, got shape {tuple(pos.shape)} for batch {batch}."
        )
    return pos


class Refine(nn.Module):
    """Mask refinement at one response-map cell per sample.

    Inputs (search crop 255): ``features`` = (stem 125×125, layer1 63×63, layer2 31×31) of the backbone,
    ``corr`` = the mask branch's B×C×25×25 correlation map, ``position`` = (row, col) in the 25×25 map.
    The cell's C-vector is deconvolved to 15×15, merged with the matching 15/31/61-cell windows of layer2,
    layer1 and the stem (zero padding 4/8/16), upsampled by nearest neighbour to 31, 61, 127 between stages.
    Returns B×127×127 mask logits over the cell's 127×127 window of the search crop.
    """

    def __init__(self, in_channels: Sequence[int] = (64, 256, 512), corr_channels: int = 256):
        super().__init__()
        c0, c1, c2 = in_channels
        self.v0 = _conv_pair(c0, 16, 4)
        self.v1 = _conv_pair(c1, 64, 16)
        self.v2 = _conv_pair(c2, 128, 32)
        self.h2 = _conv_pair(32, 32, 32)
        self.h1 = _conv_pair(16, 16, 16)
        self.h0 = _conv_pair(4, 4, 4)
        self.deconv = nn.ConvTranspose2d(corr_channels, 32, 15, 15)
        self.post0 = nn.Conv2d(32, 16, 3, padding=1)
        self.post1 = nn.Conv2d(16, 4, 3, padding=1)
        self.post2 = nn.Conv2d(4, 1, 3, padding=1)

    @staticmethod
    def _windows(f: torch.Tensor, pos: torch.Tensor, scale: int, pad: int, size: int) -> torch.Tensor:
        padded = F.pad(f, [pad, pad, pad, pad])
        rows = [
            padded[b, :, scale * r : scale * r + size, scale * c : scale * c + size]
            for b, (r, c) in enumerate(pos.tolist())
        ]
        return torch.stack(rows)

    def forward(self, features: Sequence[torch.Tensor], corr: torch.Tensor, position) -> torch.Tensor:
        f0, f1, f2 = features
        pos = refine_positions(position, corr.shape[0])
        limits = torch.tensor(corr.shape[2:], device="cpu")
        if bool((pos < 0).any()) or bool((pos >= limits).any()):
            raise ConfigError(f"refine position outside the {corr.shape[2]}×{corr.shape[3]} response map.")
        p0 = self._windows(f0, pos, 4, 16, 61)
        p1 = self._windows(f1, pos, 2, 8, 31)
        p2 = self._windows(f2, pos, 1, 4, 15)
        batch = torch.arange(corr.shape[0], device=corr.device)
        rows, cols = pos[:, 0].to(corr.device), pos[:, 1].to(corr.device)
        p3 = corr[batch, :, rows, cols].reshape(corr.shape[0], -1, 1, 1)
        out = self.deconv(p3)
        out = self.post0(F.interpolate(self.h2(out) + self.v2(p2), size=(31, 31), mode="nearest"))
        out = self.post1(F.interpolate(self.h1(out) + self.v1(p1), size=(61, 61), mode="nearest"))
        out = self.post2(F.interpolate(self.h0(out) + self.v0(p0), size=(127, 127), mode="nearest"))
        return out[:, 0]
