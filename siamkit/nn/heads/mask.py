"""SiamMask mask branch: a depth-wise correlation head predicting a 63×63 mask per response-map cell
(``MaskCorr``), and the U-Net-like ``Refine`` that upsamples one cell's mask to 127×127 with backbone
features of the search crop (pysot ``head/mask.py``, foolwood/SiamMask ``siammask_sharp``).

Where each cell's window lies in a feature map depends on the backbone's strides and the response map's
geometry; :class:`RefineGeometry` holds it (:data:`PYSOT_REFINE` for ResNet-50 at stride 8 with 25×25 maps,
:func:`refine_geometry` for any stride / ``base_size``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from siamkit.errors import ConfigError
from siamkit.nn.heads.rpn import DepthwiseXCorr

__all__ = ["PYSOT_REFINE", "MaskCorr", "Refine", "RefineGeometry", "refine_geometry", "refine_positions"]


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


@dataclass(frozen=True)
class RefineGeometry:
    """Where a response-map cell's window lies in each refine level, and the mask's side.

    ``windows`` holds, for the finest to the coarsest level, ``(scale, pad, size)``: the map is zero-padded by
    ``pad`` and cell (row, col) reads the ``size``² window at ``(scale·row, scale·col)``. The cell's correlation
    vector is deconvolved to the coarsest window's size; each stage adds a level and upsamples to the next finer
    window's size, the last to ``out_size``.
    """

    windows: tuple[tuple[int, int, int], ...]
    out_size: int = 127


#: pysot / SiamMask: ResNet-50 stem (stride 2), layer1 (4) and layer2 (8); 25×25 map at stride 8, base_size 8.
PYSOT_REFINE = RefineGeometry(((4, 16, 61), (2, 8, 31), (1, 4, 15)))


def refine_geometry(strides: Sequence[int], map_stride: int, base_size: int,
                    exemplar_size: int = 127) -> RefineGeometry:
    """The windows of levels at ``strides`` (finest first) for a response map of ``map_stride``, ``base_size``.

    Cell c's window starts at ``(c − base_size/2)·map_stride`` pixels of the search crop and spans the exemplar:
    at stride s that is cell ``c·map_stride/s`` of a map padded by ``base_size/2·map_stride/s``, and
    ``ceil(exemplar/s)`` cells wide.
    """
    windows = []
    for s in strides:
        if map_stride % s:
            raise ConfigError(f"A refine level at stride {s} does not divide the map stride {map_stride}.")
        scale = map_stride // s
        windows.append((scale, base_size * scale // 2, -(-exemplar_size // s)))
    return RefineGeometry(tuple(windows), exemplar_size)


class Refine(nn.Module):
    """Mask refinement at one response-map cell per sample.

    Inputs: ``features`` = three backbone maps of the search crop, finest first (pysot: stem 125×125, layer1
    63×63, layer2 31×31), ``corr`` = the mask branch's B×C×S×S correlation map, ``position`` = (row, col) in
    the S×S map. The cell's C-vector is deconvolved to the coarsest window, merged with the matching windows
    of the three levels (:class:`RefineGeometry`), upsampled by nearest neighbour between stages.
    Returns B×O×O mask logits (O = ``geometry.out_size``, 127) over the cell's window of the search crop.
    """

    def __init__(self, in_channels: Sequence[int] = (64, 256, 512), corr_channels: int = 256,
                 geometry: RefineGeometry = PYSOT_REFINE):
        super().__init__()
        c0, c1, c2 = in_channels
        self.geometry = geometry
        deconv = geometry.windows[-1][2]
        self.v0 = _conv_pair(c0, 16, 4)
        self.v1 = _conv_pair(c1, 64, 16)
        self.v2 = _conv_pair(c2, 128, 32)
        self.h2 = _conv_pair(32, 32, 32)
        self.h1 = _conv_pair(16, 16, 16)
        self.h0 = _conv_pair(4, 4, 4)
        self.deconv = nn.ConvTranspose2d(corr_channels, 32, deconv, deconv)
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
        w0, w1, w2 = self.geometry.windows
        p0 = self._windows(f0, pos, *w0)
        p1 = self._windows(f1, pos, *w1)
        p2 = self._windows(f2, pos, *w2)
        batch = torch.arange(corr.shape[0], device=corr.device)
        rows, cols = pos[:, 0].to(corr.device), pos[:, 1].to(corr.device)
        p3 = corr[batch, :, rows, cols].reshape(corr.shape[0], -1, 1, 1)
        out = self.deconv(p3)
        out = self.post0(F.interpolate(self.h2(out) + self.v2(p2), size=(w1[2], w1[2]), mode="nearest"))
        out = self.post1(F.interpolate(self.h1(out) + self.v1(p1), size=(w0[2], w0[2]), mode="nearest"))
        side = self.geometry.out_size
        out = self.post2(F.interpolate(self.h0(out) + self.v0(p0), size=(side, side), mode="nearest"))
        return out[:, 0]
