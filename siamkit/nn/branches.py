"""A tracker network as its two branches: template (once per target) and search (every frame).

The search branch takes the template features as runtime inputs (the correlation kernel is an
input, not a constant). Template features may be nested tuples/lists of tensors (multi-layer
heads); :func:`flatten_features` turns them into a flat list of tensors plus a structure, and
:func:`unflatten_features` rebuilds them. Used by :mod:`siamkit.export` (ONNX and TorchScript
graphs) and :mod:`siamkit.trackers.onnx_search` (the search branch in onnxruntime).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def flatten_features(features: Any) -> tuple[list[torch.Tensor], Any]:
    """Flatten nested tuples/lists of tensors; return the tensors and a structure to rebuild them."""
    if isinstance(features, torch.Tensor):
        return [features], None
    tensors, structure = [], []
    for item in features:
        flat, sub = flatten_features(item)
        structure.append((len(flat), sub))
        tensors += flat
    return tensors, (type(features).__name__, structure)


def unflatten_features(tensors: list[torch.Tensor], structure: Any) -> Any:
    """The nested features :func:`flatten_features` flattened into ``tensors`` with ``structure``."""
    if structure is None:
        return tensors[0]
    kind, parts = structure
    out, start = [], 0
    for count, sub in parts:
        out.append(unflatten_features(tensors[start : start + count], sub))
        start += count
    return tuple(out) if kind == "tuple" else out


def output_keys(out: Any) -> list[str]:
    """Names of a search branch's tensor outputs, in order (``["cls"]`` for a bare tensor); a tuple of tensors
    (SiamMask's ``mask_features``) gives one name per tensor, ``name.0``, ``name.1``, …"""
    if isinstance(out, torch.Tensor):
        return ["cls"]
    keys = []
    for k, v in out.items():
        if isinstance(v, torch.Tensor):
            keys.append(k)
        elif isinstance(v, (tuple, list)) and v and all(isinstance(t, torch.Tensor) for t in v):
            keys += [f"{k}.{i}" for i in range(len(v))]
    return keys


def output_value(out: dict[str, Any], key: str) -> torch.Tensor:
    """The tensor an :func:`output_keys` name stands for."""
    name, _, index = key.partition(".")
    return out[name][int(index)] if index else out[name]


def nest_outputs(flat: dict[str, Any]) -> dict[str, Any]:
    """Outputs by :func:`output_keys` name → the branch's own dict (``name.i`` entries become a tuple again)."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        name, _, index = key.partition(".")
        if index:
            out.setdefault(name, []).append(value)
        else:
            out[key] = value
    return {k: tuple(v) if isinstance(v, list) else v for k, v in out.items()}


class TemplateBranch(nn.Module):
    """z (1×3×E×E float, the network's colour order) → template features, flattened."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(flatten_features(self.model.template(z))[0])


class SearchBranch(nn.Module):
    """(x, *template features) → the head's outputs in a fixed order."""

    def __init__(self, model: nn.Module, structure: Any, keys: list[str]):
        super().__init__()
        self.model = model
        self.structure = structure
        self.keys = keys

    def forward(self, x: torch.Tensor, *features: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model.search(x, unflatten_features(list(features), self.structure))
        if isinstance(out, torch.Tensor):
            return (out,)
        return tuple(output_value(out, k) for k in self.keys)


def split_model(model: nn.Module) -> tuple[TemplateBranch, SearchBranch, dict[str, Any]]:
    """Wrap a tracker network as its two branches, with example inputs and names."""
    model = model.eval().cpu()
    e, s = int(model.exemplar_size), int(model.instance_size)
    z = torch.rand(1, 3, e, e) * 255
    x = torch.rand(1, 3, s, s) * 255
    with torch.no_grad():
        zf = model.template(z)
        flat, structure = flatten_features(zf)
        out = model.search(x, zf)
    keys = output_keys(out)
    info = {
        "exemplar_size": e,
        "instance_size": s,
        "template_inputs": ["z"],
        "template_outputs": [f"zf{i}" for i in range(len(flat))],
        "search_inputs": ["x"] + [f"zf{i}" for i in range(len(flat))],
        "search_outputs": keys,
        "example": {"z": z, "x": x, "zf": flat},
    }
    # eval() on the wrappers too: exporters restore the wrapper's mode, recursively, afterwards
    return TemplateBranch(model).eval(), SearchBranch(model, structure, keys).eval(), info


__all__ = ["SearchBranch", "TemplateBranch", "flatten_features", "nest_outputs", "output_keys", "output_value",
           "split_model", "unflatten_features"]
