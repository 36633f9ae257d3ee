"""Exceptions raised for bad input, with messages a user can act on.

Every error says what was wrong and how to fix it. The CLI prints ``str(error)`` on one line
and exits with status 2; library users catch :class:`SiamkitError` (or a subclass).
"""

from __future__ import annotations


class SiamkitError(Exception):
    """Base class of every error siamkit raises on purpose.

    ``hint`` is an optional sentence telling the user how to fix the problem; it is appended
    to the message so that ``str(error)`` is self-contained.
    """

    def __init__(self, message: str, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(f"{message} {hint}" if hint else message)


class ConfigError(SiamkitError, ValueError):
    """A configuration file or value is invalid (unknown key, wrong type, bad value)."""


class RegistryError(SiamkitError, KeyError):
    """A name was looked up in a registry that does not contain it."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0] if self.args else ""


class DataError(SiamkitError, ValueError):
    """A dataset, sequence or file on disk is missing or malformed."""


class VideoError(DataError):
    """A video source cannot be opened, read or written."""


class BoxError(SiamkitError, ValueError):
    """A bounding box is invalid: NaN, negative or zero size, or outside the image."""


class FrameError(SiamkitError, ValueError):
    """A frame has the wrong shape, dtype or colour layout."""


class TrackerStateError(SiamkitError, RuntimeError):
    """A tracker was used in the wrong order (e.g. ``track`` before ``init``)."""


class WeightsError(SiamkitError, ValueError):
    """A weights file does not match the model (missing, unexpected or mis-shaped keys)."""

    def __init__(
        self,
        message: str,
        missing: list[str] | tuple[str, ...] = (),
        unexpected: list[str] | tuple[str, ...] = (),
        mismatched: list[str] | tuple[str, ...] = (),
        hint: str | None = None,
    ):
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.mismatched = list(mismatched)
        parts = [message]
        for label, keys in (
            ("missing keys", self.missing),
            ("unexpected keys", self.unexpected),
            ("mismatched shapes", self.mismatched),
        ):
            if keys:
                shown = ", ".join(keys[:12]) + (f", … ({len(keys) - 12} more)" if len(keys) > 12 else "")
                parts.append(f"{label} ({len(keys)}): {shown}")
        super().__init__("; ".join(parts), hint)


class NotAvailableError(SiamkitError, RuntimeError):
    """A feature is not available in this build or environment (missing optional package)."""
