"""NanoTrack-Lite0: NanoTrack's pixel-wise correlation head on an ImageNet EfficientNet-Lite0 trunk.

siamkit's own tracker network, trained here on ``tracking_train`` (``configs/nanotrack_lite0_train.yaml``):

- trunk: EfficientNet-Lite0 up to its stride-16 stage (:class:`~siamkit.nn.backbones.efficientnet_lite.LiteTrunk`,
  ImageNet weights, frozen batch-norm), 127 → 8×8×112 and 255 → 16×16×112;
- head: :class:`~siamkit.nn.nanotrack.NanoTrackHead` (per branch: 1×1 projections, pixel-wise correlation,
  channel gate, depth-wise tower, prediction), so the outputs sit on NanoTrack's 16×16 grid of points
  (stride 16, −128 … +112 px from the crop centre) and the NanoTrack tracker runs it unchanged;
- outputs: ``cls`` B×2×16×16 logits (softmax channel 1 = target), ``loc`` B×4×16×16 distances (l, t, r, b).

Inputs are BGR 0–255 crops, like every Siamese tracker here; the trunk normalises them itself.
"""

from __future__ import annotations

import torch

from siamkit.config import MODELS
from siamkit.nn.backbones.efficientnet_lite import LiteTrunk
from siamkit.nn.nanotrack import NanoTrackBase, NanoTrackHead


class NanoTrackLite0(NanoTrackBase):
    """Template branch ``template(z)`` and search branch ``search(x, zf)`` of the Lite0 tracker."""

    def __init__(self, exemplar_size: int = 127, instance_size: int = 255, width: int = 96, depth: int = 6,
                 pretrained: bool = False, frozen_bn: bool = True):
        super().__init__(LiteTrunk("s16", pretrained=pretrained, frozen_bn=frozen_bn), exemplar_size, instance_size)
        self.head = NanoTrackHead(self.backbone.out_channels, self.template_cells, width, depth)

    def head_maps(self, zf: torch.Tensor, xf: torch.Tensor, start_block: int | None = None) -> dict[str, torch.Tensor]:
        """The head on trunk features; with ``start_block``, the inputs are the outputs of the trunk's block
        ``start_block − 1`` and the rest of the trunk runs first (training on cached features uses this)."""
        if start_block is not None:
            zf = self.backbone.run_blocks(zf, start_block)
            xf = self.backbone.run_blocks(xf, start_block)
        cls, loc = self.head(zf, xf)
        return {"cls": cls, "loc": loc}


@MODELS.register("nanotrack_lite0")
def build_nanotrack_lite0(exemplar_size: int = 127, instance_size: int = 255, width: int = 96, depth: int = 6,
                          pretrained: bool = False, frozen_bn: bool = True) -> NanoTrackLite0:
    """NanoTrack-Lite0; ``pretrained`` loads the ImageNet trunk (training), zoo weights replace it all."""
    return NanoTrackLite0(exemplar_size, instance_size, width, depth, pretrained, frozen_bn)
