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
