"""The one progress-bar helper used everywhere in siamkit.

Bars go to stderr, are disabled automatically when stderr is not a terminal or when
``SIAMKIT_PROGRESS=0``, and can always be forced with ``enable=True``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress_enabled() -> bool:
    flag = os.environ.get("SIAMKIT_PROGRESS")
    if flag is not None:
        return flag not in ("0", "false", "no", "")
    return sys.stderr.isatty()


def progress(
    iterable: Iterable[T] | None = None,
    *,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
    enable: bool | None = None,
    leave: bool = True,
) -> tqdm:
    """Wrap ``iterable`` in a progress bar (or return a manual bar when it is ``None``)."""
    disable = not (progress_enabled() if enable is None else enable)
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        disable=disable,
        leave=leave,
        dynamic_ncols=True,
        file=sys.stderr,
    )


def iterate(iterable: Iterable[T], **kwargs) -> Iterator[T]:
    """Iterate with a progress bar; a thin alias that reads well in loops."""
    yield from progress(iterable, **kwargs)
