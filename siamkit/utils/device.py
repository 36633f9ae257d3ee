"""The one device resolver: ``None`` → CUDA when available, else the CPU; a named device is checked."""

from __future__ import annotations

import torch

from siamkit.errors import ConfigError, NotAvailableError


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` → CUDA when available else CPU; otherwise the named device (checked)."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"Unknown device {device!r} ({exc}).", hint="Use cpu, cuda or cuda:N.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise NotAvailableError(f"Device {device!r} was requested but CUDA is not available.", hint="Use cpu.")
    return dev


__all__ = ["resolve_device"]
