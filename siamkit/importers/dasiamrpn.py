"""Import foolwood/DaSiamRPN checkpoints (``SiamRPNvot.model``, ``SiamRPNotb.model``, ``SiamRPNBIG.model``).

DaSiamRPN's ``SiamRPN`` module (``code/net.py``) is an AlexNet ``featureExtract`` followed by
the up-channel RPN convs. ``SiamRPNBIG`` needs ``model_options: {width_mult: 2, hidden: 512}``
(the ``dasiamrpn`` tracker's default preset); the small models ``{width_mult: 1, hidden: 256}``.

======================  ================================  ===================================
DaSiamRPN key prefix    siamkit key prefix                what it is
======================  ================================  ===================================
``featureExtract.``     ``backbone.features.``            AlexNet (same layer indices)
``conv_cls1.``          ``rpn_head.template_cls_conv.``   template → 2A classification kernels
``conv_r1.``            ``rpn_head.template_loc_conv.``   template → 4A regression kernels
``conv_cls2.``          ``rpn_head.search_cls_conv.``     search adaptation (classification)
``conv_r2.``            ``rpn_head.search_loc_conv.``     search adaptation (regression)
``regress_adjust.``     ``rpn_head.loc_adjust.``          1×1 conv on the regression output
======================  ================================  ===================================
"""

from __future__ import annotations

from pathlib import Path

import torch

from siamkit.importers.pysot import Table, load_renamed, read_checkpoint

DASIAMRPN_TABLE: Table = (
    ("featureExtract.", "backbone.features."),
    ("conv_cls1.", "rpn_head.template_cls_conv."),
    ("conv_r1.", "rpn_head.template_loc_conv."),
    ("conv_cls2.", "rpn_head.search_cls_conv."),
    ("conv_r2.", "rpn_head.search_loc_conv."),
    ("regress_adjust.", "rpn_head.loc_adjust."),
)


def import_checkpoint(path: str | Path, model: torch.nn.Module) -> torch.nn.Module:
    """Load a DaSiamRPN ``.model``/``.pth`` file into a ``siamrpn_alexnet`` model."""
    return load_renamed(model, read_checkpoint(path), DASIAMRPN_TABLE, str(path))
