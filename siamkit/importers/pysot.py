"""Import pysot checkpoints (SiamRPN++, SiamMask-LD) and foolwood/SiamMask checkpoints.

siamkit's tracking networks use pysot's module names, so for pysot the table is the identity
on each top-level module; the foolwood/SiamMask ``siammask_sharp`` layout is renamed.

=============================  ==============================  ==========================
their key prefix               siamkit key prefix              source
=============================  ==============================  ==========================
``backbone.``                  ``backbone.``                   pysot (ResNet-50, AlexNet
                                                               legacy, MobileNetV2)
``neck.``                      ``neck.``                       pysot ``AdjustAllLayer``
``rpn_head.``                  ``rpn_head.``                   pysot RPN heads
``mask_head.``                 ``mask_head.``                  pysot ``MaskCorr``
``refine_head.``               ``refine_head.``                pysot ``Refine``
``features.features.``         ``backbone.``                   foolwood/SiamMask
``features.downsample.``       ``neck.downsample.``            foolwood/SiamMask
``rpn_model.``                 ``rpn_head.``                   foolwood/SiamMask
``mask_model.mask.``           ``mask_head.``                  foolwood/SiamMask
``refine_model.``              ``refine_head.``                foolwood/SiamMask
=============================  ==============================  ==========================

This module also holds the helpers the other importers share: reading a checkpoint with
``torch.load(..., weights_only=True)`` (no code from the file is ever run), unwrapping
``{"state_dict": …}`` and ``module.`` prefixes, renaming by table, and loading with a
:class:`~siamkit.errors.WeightsError` that lists missing, unexpected and mis-shaped keys.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from siamkit.errors import WeightsError
from siamkit.zoo import check_state_dict

Table = Sequence[tuple[str, str]]  # (their prefix, siamkit prefix)

PYSOT_TABLE: Table = (
    ("backbone.", "backbone."),
    ("neck.", "neck."),
    ("rpn_head.", "rpn_head."),
    ("mask_head.", "mask_head."),
    ("refine_head.", "refine_head."),
)

FOOLWOOD_SIAMMASK_TABLE: Table = (
    ("features.features.", "backbone."),
    ("features.downsample.", "neck.downsample."),
    ("rpn_model.", "rpn_head."),
    ("mask_model.mask.", "mask_head."),
    ("refine_model.", "refine_head."),
)

WRAPPER_KEYS = ("state_dict", "model", "net", "model_state_dict")


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a ``.pth`` state dict safely (``weights_only=True``), unwrapping common containers."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"Checkpoint not found: {path}.")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(
            f"{path} is not a readable PyTorch checkpoint ({first}).",
            hint="The file may be truncated or not a state dict; siamkit only loads plain tensors (weights_only).",
        ) from None
    for _ in range(2):
        if isinstance(obj, Mapping):
            inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
            if inner is not None:
                obj = inner
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(f"{path} does not hold a state dict (got {type(obj).__name__}).")
    state = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            continue  # e.g. an epoch counter stored beside the weights
        key = str(key)
        while key.startswith("module."):
            key = key[len("module.") :]
        state[key] = value
    if not state:
        raise WeightsError(f"{path} holds no tensors.")
    return state


def rename(state: Mapping[str, torch.Tensor], table: Table) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename keys by the first matching prefix; return (renamed, keys no rule matched)."""
    out, unmatched = {}, []
    for key, value in state.items():
        for theirs, ours in table:
            if key.startswith(theirs):
                out[ours + key[len(theirs) :]] = value
                break
        else:
            unmatched.append(key)
    return out, unmatched


def export_state_dict(model: torch.nn.Module, table: Table) -> dict[str, torch.Tensor]:
    """The model's state dict under the third-party names of ``table`` (the inverse renaming)."""
    out = {}
    for key, value in model.state_dict().items():
        for theirs, ours in table:
            if key.startswith(ours):
                out[theirs + key[len(ours) :]] = value.detach().clone()
                break
        else:
            raise WeightsError(f"No rule of the table exports {key!r}.")
    return out


def best_table(state: Mapping[str, torch.Tensor], model: torch.nn.Module, tables: Sequence[Table]) -> Table:
    """The table under which most checkpoint keys land on model keys."""
    expected = set(model.state_dict())
    scores = [len(set(rename(state, t)[0]) & expected) for t in tables]
    return tables[max(range(len(tables)), key=scores.__getitem__)]


def load_renamed(
    model: torch.nn.Module, state: Mapping[str, torch.Tensor], table: Table, source: str
) -> torch.nn.Module:
    """Rename ``state`` by ``table`` and load it strictly; WeightsError lists every problem."""
    renamed, unmatched = rename(state, table)
    expected = model.state_dict()
    # BatchNorm counters: absent from checkpoints written by old PyTorch; never used in eval.
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in renamed:
            renamed[key] = value
    renamed = {k: v for k, v in renamed.items() if k in expected or not k.endswith("num_batches_tracked")}
    check_state_dict(
        expected,
        renamed,
        unmatched=unmatched,
        message=f"The checkpoint {source} does not match the {type(model).__name__} model",
        hint="Check that the checkpoint and the tracker (and its preset / model_options) belong together.",
    )
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in renamed.items()}, strict=True)
    return model


def import_checkpoint(path: str | Path, model: torch.nn.Module) -> torch.nn.Module:
    """Load a pysot (or foolwood/SiamMask) checkpoint into a siamkit model."""
    state = read_checkpoint(path)
    table = best_table(state, model, (PYSOT_TABLE, FOOLWOOD_SIAMMASK_TABLE))
    return load_renamed(model, state, table, str(path))
