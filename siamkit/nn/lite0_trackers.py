"""The classic Siamese tracker heads on the ImageNet EfficientNet-Lite0 trunk, trainable on a CPU.

The published trackers were trained on ImageNet-VID, COCO, YouTube-BB and more, from ImageNet backbones;
here each family keeps its head and its tracker, and swaps the backbone for the frozen Lite0 trunk up to
stride 16 (:class:`~siamkit.nn.backbones.efficientnet_lite.LiteTrunk`), so that only the head is learnt:

===================== ================================================ =============================
model                 head (after a 1×1 conv + BN adjust of the trunk) score map for a 255 px search
===================== ================================================ =============================
``siamfc_lite0``      SiamFC cross-correlation (one response)          11×11 (stride 16, ±80 px)
``siamrpn_lite0``     SiamRPN up-channel correlation, 5 anchors        11×11
``siamrpnpp_lite0``   SiamRPN++ depth-wise correlation, 5 anchors,     11×11
                      per trunk level, fused by learnt weights
``siamban_lite0``     SiamBAN depth-wise box-adaptive head (points)    11×11
``siamban_acm_lite0`` SiamBAN-ACM asymmetric convolution + box prior   11×11 (fuse conv 4×4)
``siammask_lite0``    SiamRPN++'s head + SiamMask's depth-wise mask    11×11; 63×63 mask a cell,
                      branch and refine (trunk maps at stride 2/4/8)   refined to 127×127
===================== ================================================ =============================

Template maps (8×8 for a 127 px exemplar) are centre-cropped to 6×6 — the target and a little context,
pysot's crop of 15×15 to 7×7 at stride 8 — and search maps (16×16) stay whole, so every head answers on
the same 11×11 grid (``base_size`` 2). SiamRPN++'s multi-layer aggregation reads the ends of the trunk's
two stride-16 stages (``levels=("s16a", "s16")``: 80 and 112 channels after blocks 7 and 10), each with its
own adjust layer and depth-wise head, and fuses their maps with learnt softmax weights (pysot's weighted
``MultiRPN``); ResNet-50's layers 2–4 share one stride there through dilation, here the two stages share it
by construction.

Every model splits at the trunk: ``template_from_trunk(f)`` / ``search_from_trunk(f, zf)`` take the trunk's
maps (:meth:`TrunkSplit.trunk_maps`: one map, or one per level), so training on cached trunk features
(:mod:`siamkit.train.heads`) runs exactly the modules that tracking runs (SiamMask's search also keeps the
trunk's stride 2/4/8 maps for its refine module: ``search_from_trunk(f, zf, taps)``). SiamBAN-ACM's template
also takes the box prior (``needs_box_prior``): ``template(z, box)`` / ``template_from_trunk(f, box)`` with
the target's (w, h) in exemplar-crop pixels (:func:`~siamkit.ops.postprocess.exemplar_box_prior`).
"""

from __future__ import annotations

import torch

from siamkit.config import MODELS
from siamkit.errors import ConfigError
from siamkit.nn.backbones.efficientnet_lite import TAPS, LiteTrunk
from siamkit.nn.heads.acm import MultiACMBAN
from siamkit.nn.heads.ban import MultiBAN
from siamkit.nn.heads.mask import MaskCorr, Refine, refine_geometry
from siamkit.nn.heads.rpn import DepthwiseRPN, MultiRPN, UPChannelRPN
from siamkit.nn.heads.siamfc import SiamFCHead
from siamkit.nn.models import SiamBANACMNet, SiamBANNet, SiamFCNet, SiamMaskNet, SiamRPNNet, _check_image
from siamkit.nn.necks import AdjustAllLayer, AdjustLayer

STRIDE = 16
TEMPLATE_CELLS = 6  # centre crop of the 8×8 template map
BASE_SIZE = 2  # 11×11 maps = (255 − 127) // 16 + 1 + 2
ACM_FUSE_SIZE = 4  # SiamBAN-ACM's fuse convolution: 6×6 template → 4×4 after its 3×3 conv → 1×1; search 14 → 11
MASK_TAPS = ("s2", "s4", "s8")  # the trunk maps SiamMask's refine module reads, finest first


def _trunk(pretrained: bool) -> LiteTrunk:
    return LiteTrunk("s16", pretrained=pretrained, frozen_bn=True)


class TrunkSplit:
    """``template``/``search`` written as the trunk followed by ``*_from_trunk`` (the trainable rest).

    ``levels`` names the trunk taps the rest reads (:data:`~siamkit.nn.backbones.efficientnet_lite.TAPS`);
    features cached before block :attr:`cache_block` are enough to train it.
    """

    backbone: torch.nn.Module
    levels: tuple[str, ...] = ("s16",)

    @property
    def cache_block(self) -> int:
        """The first block after the earliest level: a cache of the blocks before it feeds :meth:`trunk_maps`."""
        return TAPS[self.levels[0]][0] + 1

    def trunk_maps(self, x: torch.Tensor, start: int = 0):
        """The maps ``*_from_trunk`` take: one tensor, or a tuple of one per level; ``x`` is a crop (``start``
        0) or the features entering block ``start`` (the training cache)."""
        maps = self.backbone.level_maps(x, self.levels, start)
        return maps[0] if len(maps) == 1 else tuple(maps)

    def template(self, z, box=None):
        _check_image("z", z)
        return self.template_from_trunk(self.trunk_maps(z))

    def search(self, x, zf):
        _check_image("x", x)
        return self.search_from_trunk(self.trunk_maps(x), zf)

    def template_from_trunk(self, f: torch.Tensor):  # pragma: no cover - abstract
        raise NotImplementedError

    def search_from_trunk(self, f: torch.Tensor, zf) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError


class SiamFCLite0(TrunkSplit, SiamFCNet):
    """SiamFC: adjusted trunk maps, ``out_scale · (z ⋆ x) + bias``; 3 search scales batch as in SiamFC."""

    def __init__(self, width: int = 128, out_scale: float = 0.001, pretrained: bool = False):
        super().__init__(_trunk(pretrained), SiamFCHead(out_scale))
        self.neck = AdjustLayer(self.backbone.out_channels, width, TEMPLATE_CELLS)
        self.stride, self.base_size = STRIDE, BASE_SIZE

    def template_from_trunk(self, f):
        return self.neck(f, crop=True)

    def search_from_trunk(self, f, zf):
        return {"cls": self.head(zf, self.neck(f, crop=False))}


class SiamRPNLite0(TrunkSplit, SiamRPNNet):
    """SiamRPN / SiamRPN++ on the trunk: adjust → up-channel or depth-wise anchor head; with several
    ``levels`` (depth-wise only) one adjust layer and head per level, fused by learnt softmax weights."""

    def __init__(self, head: str = "depthwise", width: int = 128, anchor_num: int = 5, pretrained: bool = False,
                 levels: tuple[str, ...] = ("s16",)):
        self.levels = _stride16_levels(levels)
        trunk = LiteTrunk(self.levels[-1], pretrained=pretrained, frozen_bn=True)
        channels = [TAPS[t][2] for t in self.levels]
        if len(self.levels) == 1:
            neck = AdjustLayer(channels[0], width, TEMPLATE_CELLS)
            rpn = DepthwiseRPN(anchor_num, width, width) if head == "depthwise" else UPChannelRPN(anchor_num, width)
        elif head == "depthwise":
            neck = AdjustAllLayer(channels, [width] * len(channels), TEMPLATE_CELLS)
            rpn = MultiRPN(anchor_num, [width] * len(channels), weighted=True)
        else:
            raise ConfigError("Several trunk levels need the depth-wise head (SiamRPN++).")
        super().__init__(trunk, neck, rpn, anchor_num=anchor_num, base_size=BASE_SIZE)
        self.stride = STRIDE

    def template_from_trunk(self, f):
        return self.rpn_head.template(self.neck(f, crop=True))

    def search_from_trunk(self, f, zf):
        cls, loc = self.rpn_head.search(self.neck(f, crop=False), zf)
        return {"cls": cls, "loc": loc}


def _stride16_levels(levels) -> tuple[str, ...]:
    """Trunk taps in block order; each must be at stride 16 so that every level answers on the same grid."""
    levels = tuple(sorted(dict.fromkeys(levels), key=lambda t: TAPS[t][0] if t in TAPS else -1))
    wrong = [t for t in levels if t not in TAPS or TAPS[t][1] != STRIDE]
    if not levels or wrong:
        stride16 = [t for t, (_, stride, _) in TAPS.items() if stride == STRIDE]
        raise ConfigError(f"Unusable trunk levels {list(wrong or levels)}.", hint=f"Choose among {stride16}.")
    return levels


class SiamBANLite0(TrunkSplit, SiamBANNet):
    """SiamBAN on the trunk: adjust → one depth-wise box-adaptive level (cls 2, loc = exp(raw) l,t,r,b)."""

    def __init__(self, width: int = 128, pretrained: bool = False):
        trunk = _trunk(pretrained)
        super().__init__(trunk, AdjustLayer(trunk.out_channels, width, TEMPLATE_CELLS), MultiBAN((width,)),
                         base_size=BASE_SIZE)
        self.stride = STRIDE

    def template_from_trunk(self, f):
        return self.head.template((self.neck(f, crop=True),))

    def search_from_trunk(self, f, zf):
        cls, loc = self.head.search((self.neck(f, crop=False),), zf)
        return {"cls": cls, "loc": loc}


class SiamBANACMLite0(TrunkSplit, SiamBANACMNet):
    """SiamBAN-ACM on the trunk: adjust → one ACM level (fuse size 4), whose template half sees the box prior."""

    def __init__(self, width: int = 128, pretrained: bool = False):
        trunk = _trunk(pretrained)
        super().__init__(trunk, AdjustLayer(trunk.out_channels, width, TEMPLATE_CELLS),
                         MultiACMBAN((width,), fuse_size=ACM_FUSE_SIZE), base_size=BASE_SIZE)
        self.stride = STRIDE

    def template(self, z, box=None):
        _check_image("z", z)
        return self.template_from_trunk(self.trunk_maps(z), box)

    def template_from_trunk(self, f, box=None):
        return self.head.template((self.neck(f, crop=True),), box)

    def search_from_trunk(self, f, zf):
        cls, loc = self.head.search((self.neck(f, crop=False),), zf)
        return {"cls": cls, "loc": loc}


class SiamMaskLite0(TrunkSplit, SiamMaskNet):
    """SiamMask on the trunk: SiamRPN++-Lite0's box branch (same parameter names, so its trained weights load),
    a depth-wise mask branch giving 63×63 logits a cell, and the refine module over the trunk's stride 2/4/8
    maps (windows from :func:`~siamkit.nn.heads.mask.refine_geometry`)."""

    def __init__(self, width: int = 128, anchor_num: int = 5, mask_size: int = 63, pretrained: bool = False):
        trunk = _trunk(pretrained)
        geometry = refine_geometry([TAPS[t][1] for t in MASK_TAPS], STRIDE, BASE_SIZE)
        super().__init__(trunk, AdjustLayer(trunk.out_channels, width, TEMPLATE_CELLS),
                         DepthwiseRPN(anchor_num, width, width), MaskCorr(width, width, mask_size * mask_size),
                         Refine([TAPS[t][2] for t in MASK_TAPS], width, geometry), anchor_num)
        self.stride, self.base_size = STRIDE, BASE_SIZE

    def template_from_trunk(self, f):
        zf = self.neck(f, crop=True)
        return self.rpn_head.template(zf), self.mask_head.template(zf)

    def search(self, x, zf):
        _check_image("x", x)
        taps, f = self.backbone.with_taps(x, MASK_TAPS)
        return self.search_from_trunk(f, zf, taps)

    def search_from_trunk(self, f, zf, taps=None):
        """Box maps and the mask branch's maps; ``taps`` (the trunk's stride 2/4/8 maps) feed the refine module."""
        xf = self.neck(f, crop=False)
        cls, loc = self.rpn_head.search(xf, zf[0])
        mask, corr = self.mask_head.search(xf, zf[1])
        out = {"cls": cls, "loc": loc, "mask": mask, "mask_corr": corr}
        if taps is not None:
            out["mask_features"] = tuple(taps)
        return out


@MODELS.register("siamfc_lite0")
def siamfc_lite0(width: int = 128, out_scale: float = 0.001, pretrained: bool = False) -> SiamFCLite0:
    """SiamFC on the Lite0 trunk; ``pretrained`` loads the ImageNet trunk (training), zoo weights replace all."""
    return SiamFCLite0(width, out_scale, pretrained)


@MODELS.register("siamrpn_lite0")
def siamrpn_lite0(width: int = 64, anchor_num: int = 5, pretrained: bool = False) -> SiamRPNLite0:
    """SiamRPN (up-channel correlation) on the Lite0 trunk."""
    return SiamRPNLite0("upchannel", width, anchor_num, pretrained)


@MODELS.register("siamrpnpp_lite0")
def siamrpnpp_lite0(width: int = 128, anchor_num: int = 5, pretrained: bool = False,
                    levels: tuple[str, ...] = ("s16",)) -> SiamRPNLite0:
    """SiamRPN++ (depth-wise correlation) on the Lite0 trunk; ``levels=("s16a", "s16")`` aggregates two."""
    return SiamRPNLite0("depthwise", width, anchor_num, pretrained, tuple(levels))


@MODELS.register("siamban_lite0")
def siamban_lite0(width: int = 128, pretrained: bool = False) -> SiamBANLite0:
    """SiamBAN on the Lite0 trunk."""
    return SiamBANLite0(width, pretrained)


@MODELS.register("siamban_acm_lite0")
def siamban_acm_lite0(width: int = 128, pretrained: bool = False) -> SiamBANACMLite0:
    """SiamBAN-ACM on the Lite0 trunk (``template`` takes the box prior)."""
    return SiamBANACMLite0(width, pretrained)


@MODELS.register("siammask_lite0")
def siammask_lite0(width: int = 128, anchor_num: int = 5, mask_size: int = 63,
                   pretrained: bool = False) -> SiamMaskLite0:
    """SiamMask on the Lite0 trunk (box branch as ``siamrpnpp_lite0``, mask branch and refine)."""
    return SiamMaskLite0(width, anchor_num, mask_size, pretrained)
