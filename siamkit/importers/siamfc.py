"""Import huanglianghua/siamfc-pytorch checkpoints (e.g. ``siamfc_alexnet_e50.pth``).

siamfc-pytorch saves ``Net(backbone=AlexNetV1(), head=SiamFC(out_scale))``; its head has no
parameters (``out_scale`` is a constant), so only the backbone is stored and the names are the
same as siamkit's ``siamfc_alexnet``:

=====================  =====================  ========================================
siamfc-pytorch prefix  siamkit prefix         what it is
=====================  =====================  ========================================
``backbone.conv1.``    ``backbone.conv1.``    11×11/2 conv (``.0``) + BN (``.1``), pool
``backbone.conv2.``    ``backbone.conv2.``    grouped 5×5 conv + BN, pool
``backbone.conv3.``    ``backbone.conv3.``    3×3 conv + BN
``backbone.conv4.``    ``backbone.conv4.``    grouped 3×3 conv + BN
``backbone.conv5.``    ``backbone.conv5.``    grouped 3×3 conv (no BN)
=====================  =====================  ========================================

These weights were trained on **RGB** crops: the ``siamfc`` tracker's default config feeds RGB
(``rgb: true``). The original MATLAB ``.mat`` networks are not supported.
"""

from __future__ import annotations

from pathlib import Path

import torch

from siamkit.importers.pysot import Table, load_renamed, read_checkpoint

SIAMFC_TABLE: Table = (("backbone.", "backbone."), ("head.", "head."))


def import_checkpoint(path: str | Path, model: torch.nn.Module) -> torch.nn.Module:
    """Load a siamfc-pytorch state dict into a ``siamfc_alexnet`` model.

    siamfc-pytorch's head has no parameters: a checkpoint without ``head.bias`` gets siamkit's bias = 0
    (its ``SiamFC`` head adds nothing), which a strict load would otherwise report as missing.
    """
    state = dict(read_checkpoint(path))
    bias = model.state_dict().get("head.bias")
    if bias is not None and not any(k.endswith("head.bias") for k in state):
        state["head.bias"] = torch.zeros_like(bias)
    return load_renamed(model, state, SIAMFC_TABLE, str(path))
