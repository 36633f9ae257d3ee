"""The published Siamese tracking networks, assembled and registered in :data:`siamkit.config.MODELS`.

Every model is a plain ``nn.Module`` with no cached state and one interface:

* ``template(z, box=None)`` — z: B×3×Hz×Wz float, **BGR 0–255, not normalised** (127×127 published) →
  template features, a tensor or nested tuple of tensors with batch first (treat as opaque; see
  :func:`map_template`). They already include the head's template-side convs, so per-frame work is the
  search half only. ``box`` is only used by SiamBAN-ACM: the target's (w, h) in exemplar-crop pixels
  (B×2, or B×4 whose last two columns are w, h).
* ``search(x, zf)`` — x: B×3×Hx×Wx (same convention); search crop ``i`` is paired with template ``i``
  (SiamFC also accepts a search batch that is a multiple of the template batch: crop ``i`` uses template
  ``i % Bz``). Returns a dict:

  - SiamFC (``kind == "siamfc"``): ``"cls"`` B×1×S×S response (already × out_scale + bias);
  - anchors (``"rpn"``, ``"mask"``): ``"cls"`` B×2A×S×S logits with channels [bg₀…bg_{A−1}, fg₀…fg_{A−1}]
    (``view(B, 2, A, S, S)``, softmax over dim 1, foreground = index 1), ``"loc"`` B×4A×S×S as
    ``view(B, 4, A, S, S)`` = (dx, dy, dw, dh) per anchor — pysot's layout;
  - points (``"ban"``): ``"cls"`` B×2×S×S logits (bg, fg), ``"loc"`` B×4×S×S (l, t, r, b) ≥ 0 in search-crop
    pixels (siamban's decoding: box = [p_x − l, p_y − t, p_x + r, p_y + b]);
  - SiamMask adds ``"mask"`` B×(63·63)×S×S logits (row-major 63×63 per cell), ``"mask_features"`` (stem,
    layer1, layer2 search maps) and ``"mask_corr"`` (the mask branch correlation map) for ``refine_mask``.
* ``refine_mask(out, position)`` (SiamMask) — ``out`` = the dict from ``search``; ``position`` = (row, col)
  for every sample or a B×2 integer tensor → B×127×127 refined mask logits.
* ``forward(z, x, box=None)`` = ``search(x, template(z, box))`` (training).
* attributes ``kind``, ``exemplar_size``, ``instance_size``, ``stride``, ``score_size``, ``anchor_num``
  (0 for anchor-free), ``base_size`` (8 for padded ResNet/MobileNet, 0 for AlexNet) and
  ``score_size_for(instance_size)``: S = (instance − exemplar) // stride + 1 + base_size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from siamkit.config import MODELS
from siamkit.errors import ConfigError
from siamkit.nn.backbones.alexnet import AlexNetLegacy, AlexNetV1
from siamkit.nn.backbones.mobilenet import MobileNetV2
from siamkit.nn.backbones.resnet import resnet50_atrous
from siamkit.nn.heads.acm import MultiACMBAN
from siamkit.nn.heads.ban import CorrelationBAN, MultiBAN
from siamkit.nn.heads.mask import MaskCorr, Refine
from siamkit.nn.heads.rpn import DepthwiseRPN, MultiRPN, UPChannelRPN
from siamkit.nn.heads.siamfc import SiamFCHead
from siamkit.nn.necks import AdjustAllLayer

__all__ = [
    "SiameseTrackerNet",
    "SiamFCNet",
    "SiamRPNNet",
    "SiamMaskNet",
    "SiamBANNet",
    "SiamBANACMNet",
    "map_template",
    "index_template",
    "cat_templates",
]


def map_template(fn: Callable[[torch.Tensor], torch.Tensor], zf):
    """Apply ``fn`` to every tensor of (nested tuples/lists of) template features."""
    if isinstance(zf, torch.Tensor):
        return fn(zf)
    return tuple(map_template(fn, z) for z in zf)


def index_template(zf, index):
    """Select targets from batched template features (``index``: int, slice or index tensor)."""
    if isinstance(index, int):
        index = slice(index, index + 1)
    return map_template(lambda t: t[index], zf)


def cat_templates(zfs: Sequence):
    """Concatenate the template features of several batches along the batch dimension."""
    first = zfs[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(list(zfs), dim=0)
    return tuple(cat_templates([z[i] for z in zfs]) for i in range(len(first)))


def _check_image(name: str, t: torch.Tensor) -> None:
    if not isinstance(t, torch.Tensor) or t.dim() != 4 or t.shape[1] != 3:
        shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ConfigError(f"{name} must be a B×3×H×W float tensor (BGR, 0–255), got {shape}.")
    if not t.is_floating_point():
        raise ConfigError(f"{name} must be a float tensor, got {t.dtype}.", hint="Convert with .float().")


class SiameseTrackerNet(nn.Module):
    """Common attributes and ``forward`` of the tracking networks (subclasses implement template/search)."""

    kind: str = ""
    anchor_num: int = 0

    def __init__(self, exemplar_size: int, instance_size: int, stride: int = 8, base_size: int = 0):
        super().__init__()
        self.exemplar_size = int(exemplar_size)
        self.instance_size = int(instance_size)
        self.stride = int(stride)
        self.base_size = int(base_size)

    def score_size_for(self, instance_size: int) -> int:
        """Response-map side for a search crop of ``instance_size`` pixels."""
        return (int(instance_size) - self.exemplar_size) // self.stride + 1 + self.base_size

    @property
    def score_size(self) -> int:
        return self.score_size_for(self.instance_size)

    def template(self, z: torch.Tensor, box=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def search(self, x: torch.Tensor, zf) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, z: torch.Tensor, x: torch.Tensor, box=None) -> dict[str, torch.Tensor]:
        return self.search(x, self.template(z, box))


class SiamFCNet(SiameseTrackerNet):
    """SiamFC: shared AlexNetV1, plain cross-correlation head."""

    kind = "siamfc"

    def __init__(self, backbone: nn.Module, head: SiamFCHead, exemplar_size=127, instance_size=255):
        super().__init__(exemplar_size, instance_size, stride=8, base_size=0)
        self.backbone = backbone
        self.head = head

    def template(self, z, box=None):
        _check_image("z", z)
        return self.backbone(z)

    def search(self, x, zf):
        _check_image("x", x)
        return {"cls": self.head(zf, self.backbone(x))}


class SiamRPNNet(SiameseTrackerNet):
    """Backbone → optional neck (template maps centre-cropped) → anchor RPN head (up-channel, depth-wise or
    multi-level depth-wise)."""

    kind = "rpn"

    def __init__(self, backbone, neck, rpn_head, anchor_num=5, exemplar_size=127, instance_size=255, base_size=8):
        super().__init__(exemplar_size, instance_size, stride=8, base_size=base_size)
        self.anchor_num = int(anchor_num)
        self.backbone = backbone
        if neck is not None:
            self.neck = neck
        self.rpn_head = rpn_head

    def _features(self, image: torch.Tensor, is_template: bool):
        f = self.backbone(image)
        if hasattr(self, "neck"):
            f = self.neck(f, crop=is_template)
        return f

    def template(self, z, box=None):
        _check_image("z", z)
        return self.rpn_head.template(self._features(z, True))

    def search(self, x, zf):
        _check_image("x", x)
        cls, loc = self.rpn_head.search(self._features(x, False), zf)
        return {"cls": cls, "loc": loc}


class SiamMaskNet(SiameseTrackerNet):
    """SiamMask: ResNet-50 to layer3 → neck → depth-wise RPN + mask branch (+ refine module)."""

    kind = "mask"

    def __init__(self, backbone, neck, rpn_head, mask_head, refine_head=None, anchor_num=5, exemplar_size=127,
                 instance_size=255):
        super().__init__(exemplar_size, instance_size, stride=8, base_size=8)
        self.anchor_num = int(anchor_num)
        self.backbone = backbone
        self.neck = neck
        self.rpn_head = rpn_head
        self.mask_head = mask_head
        if refine_head is not None:
            self.refine_head = refine_head

    def template(self, z, box=None):
        _check_image("z", z)
        zf = self.neck(self.backbone(z)[-1], crop=True)
        return self.rpn_head.template(zf), self.mask_head.template(zf)

    def search(self, x, zf):
        _check_image("x", x)
        feats = self.backbone(x)
        xf = self.neck(feats[-1], crop=False)
        cls, loc = self.rpn_head.search(xf, zf[0])
        mask, corr = self.mask_head.search(xf, zf[1])
        return {"cls": cls, "loc": loc, "mask": mask, "mask_features": tuple(feats[:-1]), "mask_corr": corr}

    def refine_mask(self, out: dict, position) -> torch.Tensor:
        if not hasattr(self, "refine_head"):
            raise ConfigError("This SiamMask model was built without the refine module.", hint="Use refine=True.")
        return self.refine_head(out["mask_features"], out["mask_corr"], position)


class SiamBANNet(SiameseTrackerNet):
    """SiamBAN: ResNet-50 l2/3/4 → neck → :class:`~siamkit.nn.heads.ban.MultiBAN` (anchor-free points)."""

    kind = "ban"

    def __init__(self, backbone, neck, head, exemplar_size=127, instance_size=255, base_size=8):
        super().__init__(exemplar_size, instance_size, stride=8, base_size=base_size)
        self.backbone = backbone
        self.neck = neck
        self.head = head

    def _features(self, image: torch.Tensor, crop: bool):
        """Backbone (and neck) maps as a tuple of levels; no neck means the backbone's single map."""
        feats = self.backbone(image)
        if self.neck is not None:
            feats = self.neck(feats, crop=crop)
        return (feats,) if isinstance(feats, torch.Tensor) else feats

    def template(self, z, box=None):
        _check_image("z", z)
        return self.head.template(self._features(z, crop=True))

    def search(self, x, zf):
        _check_image("x", x)
        cls, loc = self.head.search(self._features(x, crop=False), zf)
        return {"cls": cls, "loc": loc}


class SiamBANACMNet(SiamBANNet):
    """SiamBAN-ACM: SiamBAN with asymmetric-convolution heads; ``template`` needs ``box`` (w, h)."""

    needs_box_prior = True

    def template(self, z, box=None):
        _check_image("z", z)
        return self.head.template(self._features(z, crop=True), box)


# ----------------------------------------------------------------------------------------------- builders


def _resnet(used_layers, base_width: int, blocks):
    return resnet50_atrous(tuple(used_layers), int(base_width), tuple(blocks))


@MODELS.register("siamfc_alexnet")
def siamfc_alexnet(width_mult: float = 1.0, out_scale: float = 0.001, instance_size: int = 255) -> SiamFCNet:
    """SiamFC (siamfc-pytorch AlexNetV1): 127 → 6×6×256, 255 → 22×22 → 17×17 response."""
    return SiamFCNet(AlexNetV1(width_mult), SiamFCHead(out_scale), instance_size=instance_size)


@MODELS.register("siamrpn_alexnet")
def siamrpn_alexnet(
    width_mult: float = 1.0, hidden: int = 256, anchor_num: int = 5, instance_size: int = 271
) -> SiamRPNNet:
    """SiamRPN/DaSiamRPN (``SiamRPNvot``/``SiamRPNotb``; ``SiamRPNBIG`` = width_mult 2, hidden 512):
    AlexNet + up-channel RPN, 271 → 19×19."""
    backbone = AlexNetLegacy(width_mult)
    head = UPChannelRPN(anchor_num, backbone.out_channels, hidden)
    return SiamRPNNet(backbone, None, head, anchor_num, instance_size=instance_size, base_size=0)


@MODELS.register("siamrpnpp_alexnet")
def siamrpnpp_alexnet(
    width_mult: float = 1.0, hidden: int = 256, anchor_num: int = 5, instance_size: int = 287
) -> SiamRPNNet:
    """pysot ``siamrpn_alex_dwxcorr``: AlexNet legacy + one depth-wise RPN, no neck; 287 → 21×21."""
    backbone = AlexNetLegacy(width_mult)
    head = DepthwiseRPN(anchor_num, backbone.out_channels, hidden)
    return SiamRPNNet(backbone, None, head, anchor_num, instance_size=instance_size, base_size=0)


@MODELS.register("siamrpnpp_r50")
def siamrpnpp_r50(
    neck_channels: Sequence[int] = (256, 256, 256),
    weighted: bool = True,
    anchor_num: int = 5,
    base_width: int = 64,
    blocks: Sequence[int] = (3, 4, 6, 3),
    instance_size: int = 255,
) -> SiamRPNNet:
    """pysot ``siamrpn_r50_l234_dwxcorr`` (weighted fusion); the long-term model uses neck_channels
    (128, 256, 512); the ``_otb`` config uses ``weighted=False``. 255 → 25×25."""
    backbone = _resnet((2, 3, 4), base_width, blocks)
    neck = AdjustAllLayer(backbone.out_channels, tuple(neck_channels))
    head = MultiRPN(anchor_num, tuple(neck_channels), weighted)
    return SiamRPNNet(backbone, neck, head, anchor_num, instance_size=instance_size, base_size=8)


@MODELS.register("siamrpnpp_mobilev2")
def siamrpnpp_mobilev2(
    width_mult: float = 1.4,
    neck_channels: Sequence[int] = (256, 256, 256),
    weighted: bool = False,
    anchor_num: int = 5,
    instance_size: int = 255,
) -> SiamRPNNet:
    """pysot ``siamrpn_mobilev2_l234_dwxcorr``: MobileNetV2 ×1.4 layers 3/5/7, unweighted mean; 255 → 25×25."""
    backbone = MobileNetV2(width_mult, (3, 5, 7))
    neck = AdjustAllLayer(backbone.out_channels, tuple(neck_channels))
    head = MultiRPN(anchor_num, tuple(neck_channels), weighted)
    return SiamRPNNet(backbone, neck, head, anchor_num, instance_size=instance_size, base_size=8)


@MODELS.register("siammask_r50")
def siammask_r50(
    hidden: int = 256,
    anchor_num: int = 5,
    mask_size: int = 63,
    refine: bool = True,
    base_width: int = 64,
    blocks: Sequence[int] = (3, 4, 6, 3),
    instance_size: int = 255,
) -> SiamMaskNet:
    """SiamMask (pysot ``siammask_r50_l3`` = SiamMask-LD; foolwood ``siammask_sharp`` has the same layers):
    ResNet-50 to layer3, neck 1024 → 256, depth-wise RPN, 63×63 mask branch, refine → 127×127."""
    backbone = _resnet((0, 1, 2, 3), base_width, blocks)
    neck = AdjustAllLayer(backbone.out_channels[-1:], (hidden,))
    rpn = DepthwiseRPN(anchor_num, hidden, hidden)
    mask = MaskCorr(hidden, hidden, mask_size * mask_size)
    refine_head = Refine(backbone.out_channels[:3], hidden) if refine else None
    return SiamMaskNet(backbone, neck, rpn, mask, refine_head, anchor_num, instance_size=instance_size)


@MODELS.register("siamban_r50")
def siamban_r50(
    neck_channels: Sequence[int] = (256, 256, 256),
    weighted: bool = True,
    cls_out_channels: int = 2,
    base_width: int = 64,
    blocks: Sequence[int] = (3, 4, 6, 3),
    instance_size: int = 255,
) -> SiamBANNet:
    """hqucv/siamban ``siamban_r50_l234``: ResNet-50 l2/3/4 → neck 256 → weighted MultiBAN; 255 → 25×25."""
    backbone = _resnet((2, 3, 4), base_width, blocks)
    neck = AdjustAllLayer(backbone.out_channels, tuple(neck_channels))
    head = MultiBAN(tuple(neck_channels), cls_out_channels, weighted)
    return SiamBANNet(backbone, neck, head, instance_size=instance_size)


@MODELS.register("siamban_alexnet")
def siamban_alexnet(
    width_mult: float = 1.0, score: str = "correlation", out_scale: float = 0.001, instance_size: int = 255
) -> SiamBANNet:
    """A light SiamBAN: SiamFC's AlexNetV1 (no neck) and one box-adaptive head at the backbone's width;
    127 → 6×6, 255 → 22×22 → 17×17 points at stride 8. ``score="correlation"`` scores by SiamFC's plain
    correlation (:class:`~siamkit.nn.heads.ban.CorrelationBAN`), ``"depthwise"`` by a learned branch
    (:class:`~siamkit.nn.heads.ban.MultiBAN`, as SiamBAN); a trained SiamFC can initialise backbone and score."""
    backbone = AlexNetV1(width_mult)
    if score == "correlation":
        head = CorrelationBAN(backbone.out_channels, out_scale=out_scale)
    elif score == "depthwise":
        head = MultiBAN((backbone.out_channels,), 2, weighted=False)
    else:
        raise ConfigError(f"Unknown score branch {score!r}.", hint="Use correlation or depthwise.")
    return SiamBANNet(backbone, None, head, instance_size=instance_size, base_size=0)


@MODELS.register("siamban_acm_r50")
def siamban_acm_r50(
    neck_channels: Sequence[int] = (256, 256, 256),
    weighted: bool = True,
    cls_out_channels: int = 2,
    base_width: int = 64,
    blocks: Sequence[int] = (3, 4, 6, 3),
    instance_size: int = 255,
) -> SiamBANACMNet:
    """SiamBAN-ACM: SiamBAN with ACM heads (its config is not public; siamban's ``weighted: true`` assumed).
    255 → 25×25; the fast-motion search 510 → 56×56 (pass a larger crop to ``search``)."""
    backbone = _resnet((2, 3, 4), base_width, blocks)
    neck = AdjustAllLayer(backbone.out_channels, tuple(neck_channels))
    head = MultiACMBAN(tuple(neck_channels), cls_out_channels, weighted)
    return SiamBANACMNet(backbone, neck, head, instance_size=instance_size)
