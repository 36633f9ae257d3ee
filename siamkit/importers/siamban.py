"""Import hqucv/siamban and wencheng256/SiamBAN-ACM checkpoints.

siamban is a pysot fork and siamkit's SiamBAN networks use its module names, so the table is
the identity on each top-level module:

==================  ==================  =================================================
their key prefix    siamkit prefix      what it is
==================  ==================  =================================================
``backbone.``       ``backbone.``       atrous ResNet-50 (layers 2–4 used)
``neck.``           ``neck.``           ``AdjustAllLayer`` (``downsample2/3/4``)
``head.``           ``head.``           ``MultiBAN``: ``box2/3/4.{cls,loc}``, ``cls_weight``,
                                        ``loc_weight``, ``loc_scale`` (ACM adds ``xorr_*``)
==================  ==================  =================================================
"""

from __future__ import annotations

from pathlib import Path

import torch

from siamkit.importers.pysot import Table, load_renamed, read_checkpoint

SIAMBAN_TABLE: Table = (("backbone.", "backbone."), ("neck.", "neck."), ("head.", "head."))


def import_checkpoint(path: str | Path, model: torch.nn.Module) -> torch.nn.Module:
    """Load a siamban / SiamBAN-ACM ``.pth`` file into a ``siamban_r50`` / ``siamban_acm_r50`` model."""
    return load_renamed(model, read_checkpoint(path), SIAMBAN_TABLE, str(path))
