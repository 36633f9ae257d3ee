"""Starting points for tracker training: copy parameters from a file, and start BAN regression at a size.

* :func:`init_from_weights` — copies the parameters (and BatchNorm statistics) whose names start with
  the given prefixes from a siamkit zoo model or a ``.safetensors`` file: a user-supplied
  ImageNet backbone, or the backbone of a tracker trained here (the light SiamBAN starts from the
  shipped SiamFC). Every model key under a prefix must be in the file with the same shape.
* :func:`init_ban_regression` — sets the last regression conv of a BAN-kind head so that the first
  predicted (l, t, r, b) are about ``distance`` pixels instead of exp(0) = 1 px; without it the IoU
  loss starts near 1 everywhere and learns box sizes slowly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from siamkit.errors import ConfigError, WeightsError

__all__ = ["init_ban_regression", "init_from_weights", "regression_convs"]


def _read_tensors(source: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    from safetensors.torch import load_file

    from siamkit import zoo

    path = Path(str(source))
    if path.suffix.lower() != ".safetensors":
        path = Path(zoo.resolve(source).weights)
    if not path.is_file():
        raise WeightsError(f"Initial weights not found: {path}.")
    return load_file(str(path)), str(path)


def init_from_weights(model: nn.Module, source: str | Path, prefixes: Sequence[str] = ("backbone.",)) -> list[str]:
    """Copy ``model`` entries under ``prefixes`` from ``source`` (zoo name or .safetensors); returns the keys."""
    if not prefixes:
        raise ConfigError("init_prefixes is empty: nothing would be initialised.", hint='Use e.g. ["backbone."].')
    given, where = _read_tensors(source)
    state = model.state_dict()
    wanted = {k: v for k, v in state.items() if k.startswith(tuple(prefixes))}
    if not wanted:
        raise ConfigError(f"The model has no parameters under {list(prefixes)}.")
    missing = sorted(k for k in wanted if k not in given)
    mismatched = sorted(
        f"{k} (model {tuple(wanted[k].shape)}, file {tuple(given[k].shape)})"
        for k in wanted
        if k in given and tuple(given[k].shape) != tuple(wanted[k].shape)
    )
    if missing or mismatched:
        raise WeightsError(
            f"{where} cannot initialise {', '.join(prefixes)}",
            missing=missing,
            mismatched=mismatched,
            hint="Use weights of the same architecture and width (see the model's config).",
        )
    model.load_state_dict({k: given[k].to(v.dtype) for k, v in wanted.items()}, strict=False)
    return sorted(wanted)


def regression_convs(model: nn.Module) -> list[nn.Conv2d]:
    """The final regression convs of a BAN-kind head (MultiBAN levels or NanoTrack's ``reg.pred``)."""
    head = getattr(model, "head", None)
    if head is not None and hasattr(head, "levels"):
        return [level.loc.head[-1] for level in head.levels()]
    if head is not None and hasattr(getattr(head, "reg", None), "pred"):
        return [head.reg.pred]
    raise ConfigError(f"{type(model).__name__} has no box-adaptive regression head to initialise.")


def init_ban_regression(model: nn.Module, distance: float) -> None:
    """Start every regression branch at ``distance`` px on each side (bias ln d, small weights)."""
    if distance <= 0:
        raise ConfigError(f"loc_init must be a positive distance in pixels, got {distance}.")
    with torch.no_grad():
        for conv in regression_convs(model):
            nn.init.normal_(conv.weight, std=0.001)
            conv.bias.fill_(math.log(distance))
