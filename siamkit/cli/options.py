"""Parsing of option values shared by several commands."""

from __future__ import annotations

from siamkit.errors import BoxError


def parse_box(text: str) -> list[float]:
    """``"x,y,w,h"`` → four floats, with a clear error otherwise."""
    parts = [p for p in text.replace(" ", ",").split(",") if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise BoxError(f"Cannot read the box {text!r}.", hint="Write it as x,y,w,h, e.g. --box 120,80,60,90.") from None
    if len(values) != 4:
        raise BoxError(f"The box {text!r} has {len(values)} values.", hint="Write it as x,y,w,h.")
    return values


def parse_boxes(texts: list[str]) -> list[list[float]]:
    return [parse_box(t) for t in texts]


def check_device(device: str | None) -> str | None:
    """``--device``: a device PyTorch knows and this machine has, checked before any work (ConfigError)."""
    if device is None:
        return None
    import torch

    from siamkit.errors import ConfigError

    hint = "Use --device cpu, or leave it out (CUDA is used when available)."
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(f"Unknown device {device!r}.", hint="Write cpu, cuda or cuda:N.") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: PyTorch sees no CUDA GPU on this machine.", hint=hint)
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA GPU(s).",
                              hint="Number them from cuda:0.")
    elif parsed.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"--device {device}: PyTorch sees no MPS device on this machine.", hint=hint)
    elif parsed.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"--device {device}: siamkit runs on cpu, cuda or mps.", hint=hint)
    return device
