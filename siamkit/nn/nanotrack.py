"""NanoTrack v2: MobileNetV3-Small features, pixel-wise correlation, a light anchor-free (BAN) head.

Network of HonglinChu's NanoTrack v2 (SiamTrackers, ``NanoTrack/``), rewritten for siamkit:

- backbone: truncated MobileNetV3-Small (:mod:`siamkit.nn.backbones.mobilenetv3`), 127 → 8×8×48,
  255 → 16×16×48 (stride 16);
- per branch (classification and box regression): 1×1 conv + BN on the template and on the search
  features, **pixel-wise correlation** (output channel k = dot product of template position k with every
  search position, so 8·8 = 64 channels), a channel-attention gate, a tower of six depth-wise-separable
  blocks (3×3 depth-wise → 1×1 → BN → ReLU6; 64→96, then 96→96) and a 1×1 prediction;
- outputs on a 16×16 grid: ``cls`` 2 logits (softmax channel 1 = target), ``loc`` = exp(raw) =
  distances (left, top, right, bottom) in search-crop pixels from each grid point.

The original checkpoint also stores an adjust layer (``neck.downsample``) that its forward pass never
calls; it is not part of this module (the importer drops those keys).
"""

from __future__ import annotations

import torch
from torch import nn

from siamkit.config import MODELS
from siamkit.nn.backbones.mobilenetv3 import mobilenetv3_small_nanotrack


def pixelwise_xcorr(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Pixel-wise correlation: B×C×Hz×Wz template, B×C×H×W search → B×(Hz·Wz)×H×W.

    Output channel ``k`` (template position k, row-major) at search position p is ⟨z[:, :, k], x[:, :, p]⟩.
    """
    b, c, h, w = x.shape
    kernel = z.reshape(b, c, -1).transpose(1, 2)  # B × Hz·Wz × C
    return torch.bmm(kernel, x.reshape(b, c, h * w)).reshape(b, -1, h, w)


class ConvBNBias(nn.Sequential):
    """1×1 convolution with bias followed by batch-norm, no activation (template/search projection)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)
        self.bn = nn.BatchNorm2d(channels)


class ChannelAttention(nn.Module):
    """Global average → 1×1 conv → ReLU → 1×1 conv → sigmoid, multiplied onto the input."""

    def __init__(self, channels: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels, 1)
        self.fc2 = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True)))))
        return x * gate


class SeparableBlock(nn.Module):
    """3×3 depth-wise conv → 1×1 conv → BN → ReLU6 (no conv biases)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pw = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.relu6(self.bn(self.pw(self.dw(x))))


class PixelwiseBranch(nn.Module):
    """One output branch: project z and x, correlate pixel-wise, gate, tower, predict ``out`` maps."""

    def __init__(self, feat: int, corr: int, width: int, depth: int, out: int):
        super().__init__()
        self.z_proj = ConvBNBias(feat)
        self.x_proj = ConvBNBias(feat)
        self.attention = ChannelAttention(corr)
        self.tower = nn.Sequential(*[SeparableBlock(corr if i == 0 else width, width) for i in range(depth)])
        self.pred = nn.Conv2d(width, out, 1)

    def forward(self, zf: torch.Tensor, xf: torch.Tensor) -> torch.Tensor:
        corr = self.attention(pixelwise_xcorr(self.z_proj(zf), self.x_proj(xf)))
        return self.pred(self.tower(corr))


class NanoTrackHead(nn.Module):
    """Classification (2 logits) and regression (exp → l, t, r, b) branches."""

    def __init__(self, feat: int = 48, template_cells: int = 64, width: int = 96, depth: int = 6):
        super().__init__()
        self.cls = PixelwiseBranch(feat, template_cells, width, depth, 2)
        self.reg = PixelwiseBranch(feat, template_cells, width, depth, 4)

    def forward(self, zf: torch.Tensor, xf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cls(zf, xf), torch.exp(self.reg(zf, xf))


class NanoTrackV2(nn.Module):
    """NanoTrack v2 network with the siamkit tracker interface.

    ``template(z)`` caches nothing: it returns the template features that ``search(x, zf)`` takes.
    Inputs are float BGR crops in 0–255 (no normalisation), 127 px (template) and 255 px (search).
    """

    kind = "ban"
    anchor_num = 0

    def __init__(self, exemplar_size: int = 127, instance_size: int = 255, width: int = 96, depth: int = 6):
        super().__init__()
        self.backbone = mobilenetv3_small_nanotrack()
        self.stride = self.backbone.stride
        self.exemplar_size = exemplar_size
        self.instance_size = instance_size
        z_side = -(-exemplar_size // self.stride)
        self.score_size = -(-instance_size // self.stride)
        self.head = NanoTrackHead(self.backbone.out_channels, z_side * z_side, width, depth)

    def template(self, z: torch.Tensor) -> torch.Tensor:
        """B×3×127×127 template crops → B×48×8×8 features."""
        return self.backbone(z)

    def search(self, x: torch.Tensor, zf: torch.Tensor) -> dict[str, torch.Tensor]:
        """B×3×255×255 search crops and template features → ``cls`` B×2×16×16, ``loc`` B×4×16×16."""
        cls, loc = self.head(zf, self.backbone(x))
        return {"cls": cls, "loc": loc}

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.search(x, self.template(z))


@MODELS.register("nanotrack_v2")
def build_nanotrack_v2(exemplar_size: int = 127, instance_size: int = 255, width: int = 96, depth: int = 6):
    """NanoTrack v2 (HonglinChu/SiamTrackers) — 334,078 parameters without the unused adjust layer."""
    return NanoTrackV2(exemplar_size=exemplar_size, instance_size=instance_size, width=width, depth=depth)
