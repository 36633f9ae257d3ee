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

Versions 1 and 3 (:class:`NanoTrackV1`, :class:`NanoTrackV3`) share the tracker interface:

- **v1**: same backbone; ONE pixel-wise correlation of the raw 48-channel features (no projections) and
  one channel-attention gate feed both towers; the classification tower is 3 separable blocks
  (5×5, 5×5, 3×3 depth-wise; 64→128→128→128), the regression tower 4 (3×3, 3×3, 5×5, 5×5; 64→96→…→96).
- **v3**: backbone with a ninth block (96 channels); per branch a pixel-wise path (projections,
  correlation, gate, then 2×2 depth-wise conv → BN → ReLU6 → 1×1 conv → BN, which makes the map 15×15)
  and a depth-wise path (projections, the template's central 4×4 cells correlated channel by channel
  with padding 1 → 15×15), concatenated (64 + 96) and reduced to 96 by a 1×1 conv; then six blocks of
  3×3 depth-wise → BN → ReLU6 → 1×1 → BN (no activation after it) and the 1×1 prediction. The score
  map is 15×15 (points at −112 … +112 px).
"""

from __future__ import annotations

import torch
from torch import nn

from siamkit.config import MODELS
from siamkit.nn.backbones.mobilenetv3 import mobilenetv3_small_nanotrack, mobilenetv3_small_nanotrack_v3


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
    """k×k depth-wise conv (3×3 unless told) → 1×1 conv → BN → ReLU6 (no conv biases)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3):
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, kernel, padding=(kernel - 1) // 2, groups=cin, bias=False)
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


class NanoTrackBase(nn.Module):
    """Shared tracker interface: ``template(z)`` → features, ``search(x, zf)`` → ``cls``/``loc``.

    Subclasses give the backbone (with ``stride`` and ``out_channels``) and build ``self.head``;
    ``template_cells`` (template feature positions) and ``score_size`` (output side) follow from the
    crop sizes. Inputs are float BGR crops in 0–255: 127 px template, 255 px search region.
    """

    kind = "ban"
    anchor_num = 0
    version = 0

    def __init__(self, backbone: nn.Module, exemplar_size: int = 127, instance_size: int = 255):
        super().__init__()
        self.backbone = backbone
        self.stride = backbone.stride
        self.exemplar_size = exemplar_size
        self.instance_size = instance_size
        self.template_cells = (-(-exemplar_size // self.stride)) ** 2
        self.score_size = self.score_size_for(instance_size)

    def score_size_for(self, search_size: int) -> int:
        """Side of the output maps for a ``search_size`` crop."""
        return -(-search_size // self.stride)

    def template(self, z: torch.Tensor) -> torch.Tensor:
        """B×3×127×127 template crops → B×C×8×8 features."""
        return self.backbone(z)

    def search(self, x: torch.Tensor, zf: torch.Tensor) -> dict[str, torch.Tensor]:
        """B×3×255×255 search crops and template features → ``cls`` B×2×S×S, ``loc`` B×4×S×S."""
        cls, loc = self.head(zf, self.backbone(x))
        return {"cls": cls, "loc": loc}

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.search(x, self.template(z))


class NanoTrackV2(NanoTrackBase):
    """NanoTrack v2 network with the siamkit tracker interface.

    ``template(z)`` caches nothing: it returns the template features that ``search(x, zf)`` takes.
    Inputs are float BGR crops in 0–255 (no normalisation), 127 px (template) and 255 px (search).
    """

    version = 2

    def __init__(self, exemplar_size: int = 127, instance_size: int = 255, width: int = 96, depth: int = 6):
        super().__init__(mobilenetv3_small_nanotrack(), exemplar_size, instance_size)
        self.head = NanoTrackHead(self.backbone.out_channels, self.template_cells, width, depth)


@MODELS.register("nanotrack_v2")
def build_nanotrack_v2(exemplar_size: int = 127, instance_size: int = 255, width: int = 96, depth: int = 6):
    """NanoTrack v2 (HonglinChu/SiamTrackers) — 334,078 parameters without the unused adjust layer."""
    return NanoTrackV2(exemplar_size=exemplar_size, instance_size=instance_size, width=width, depth=depth)


class NanoTrackV1Head(nn.Module):
    """v1 head: one shared pixel-wise correlation + gate, then separate cls (2) and reg (4, exp-ed) towers."""

    CLS_TOWER = ((5, 128), (5, 128), (3, 128))
    REG_TOWER = ((3, 96), (3, 96), (5, 96), (5, 96))

    def __init__(self, template_cells: int = 64):
        super().__init__()
        self.attention = ChannelAttention(template_cells)
        self.cls_tower = self._tower(template_cells, self.CLS_TOWER)
        self.reg_tower = self._tower(template_cells, self.REG_TOWER)
        self.cls_pred = nn.Conv2d(self.CLS_TOWER[-1][1], 2, 1)
        self.reg_pred = nn.Conv2d(self.REG_TOWER[-1][1], 4, 1)

    @staticmethod
    def _tower(cin: int, layers: tuple[tuple[int, int], ...]) -> nn.Sequential:
        blocks = []
        for kernel, cout in layers:
            blocks.append(SeparableBlock(cin, cout, kernel))
            cin = cout
        return nn.Sequential(*blocks)

    def forward(self, zf: torch.Tensor, xf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        corr = self.attention(pixelwise_xcorr(zf, xf))
        return self.cls_pred(self.cls_tower(corr)), torch.exp(self.reg_pred(self.reg_tower(corr)))


class NanoTrackV1(NanoTrackBase):
    """NanoTrack v1 network (HonglinChu/SiamTrackers ``configv1.yaml``): 16×16 score map."""

    version = 1

    def __init__(self, exemplar_size: int = 127, instance_size: int = 255):
        super().__init__(mobilenetv3_small_nanotrack(), exemplar_size, instance_size)
        self.head = NanoTrackV1Head(self.template_cells)


def depthwise_xcorr(z: torch.Tensor, x: torch.Tensor, padding: int = 0) -> torch.Tensor:
    """Channel-by-channel correlation: B×C×k×k template over B×C×H×W search (zero ``padding``)."""
    b, c, h, w = x.shape
    out = nn.functional.conv2d(
        x.reshape(1, b * c, h, w), z.reshape(b * c, 1, z.shape[2], z.shape[3]), padding=padding, groups=b * c
    )
    return out.reshape(b, c, out.shape[2], out.shape[3])


class PixelwiseBranchV3(nn.Module):
    """One v3 branch: pixel-wise and depth-wise correlations fused, six-block tower, ``out`` maps."""

    def __init__(self, feat: int = 96, template_cells: int = 64, depth: int = 6, out: int = 2, core: int = 4):
        super().__init__()
        self.core = core
        self.z_proj = ConvBNBias(feat)
        self.x_proj = ConvBNBias(feat)
        self.attention = ChannelAttention(template_cells)
        self.pw_post = nn.Sequential(
            nn.Conv2d(template_cells, template_cells, 2, groups=template_cells, bias=False),
            nn.BatchNorm2d(template_cells),
            nn.ReLU6(),
            nn.Conv2d(template_cells, template_cells, 1),
            nn.BatchNorm2d(template_cells),
        )
        self.dw_z_proj = ConvBNBias(feat)
        self.dw_x_proj = ConvBNBias(feat)
        self.down = nn.Conv2d(template_cells + feat, feat, 1)
        self.tower = nn.Sequential(
            *[
                nn.Sequential(
                    nn.Conv2d(feat, feat, 3, padding=1, groups=feat, bias=False),
                    nn.BatchNorm2d(feat),
                    nn.ReLU6(),
                    nn.Conv2d(feat, feat, 1, bias=False),
                    nn.BatchNorm2d(feat),
                )
                for _ in range(depth)
            ]
        )
        self.pred = nn.Conv2d(feat, out, 1)

    def forward(self, zf: torch.Tensor, xf: torch.Tensor) -> torch.Tensor:
        pw = self.pw_post(self.attention(pixelwise_xcorr(self.z_proj(zf), self.x_proj(xf))))
        side = zf.shape[3]
        if side > self.core:  # the template's central core×core cells (2:6 of 8)
            lo = (side - self.core) // 2
            zf = zf[:, :, lo : lo + self.core, lo : lo + self.core]
        dw = depthwise_xcorr(self.dw_z_proj(zf), self.dw_x_proj(xf), padding=1)
        return self.pred(self.tower(self.down(torch.cat([pw, dw], dim=1))))


class NanoTrackV3Head(nn.Module):
    """v3 head: classification (2 logits) and regression (exp → l, t, r, b) :class:`PixelwiseBranchV3`."""

    def __init__(self, feat: int = 96, template_cells: int = 64, depth: int = 6):
        super().__init__()
        self.cls = PixelwiseBranchV3(feat, template_cells, depth, 2)
        self.reg = PixelwiseBranchV3(feat, template_cells, depth, 4)

    def forward(self, zf: torch.Tensor, xf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cls(zf, xf), torch.exp(self.reg(zf, xf))


class NanoTrackV3(NanoTrackBase):
    """NanoTrack v3 network (``configv3.yaml``): 96-channel features, fused correlations, 15×15 score map."""

    version = 3

    def __init__(self, exemplar_size: int = 127, instance_size: int = 255, depth: int = 6):
        super().__init__(mobilenetv3_small_nanotrack_v3(), exemplar_size, instance_size)
        self.head = NanoTrackV3Head(self.backbone.out_channels, self.template_cells, depth)

    def score_size_for(self, search_size: int) -> int:
        # the 2×2 depth-wise conv (pixel-wise path) and the 4×4 core with padding 1 drop one cell
        return -(-search_size // self.stride) - 1


@MODELS.register("nanotrack_v1")
def build_nanotrack_v1(exemplar_size: int = 127, instance_size: int = 255):
    """NanoTrack v1 (HonglinChu/SiamTrackers) without the unused adjust layer."""
    return NanoTrackV1(exemplar_size=exemplar_size, instance_size=instance_size)


@MODELS.register("nanotrack_v3")
def build_nanotrack_v3(exemplar_size: int = 127, instance_size: int = 255, depth: int = 6):
    """NanoTrack v3 (HonglinChu/SiamTrackers) without the unused adjust layer."""
    return NanoTrackV3(exemplar_size=exemplar_size, instance_size=instance_size, depth=depth)
