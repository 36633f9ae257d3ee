"""Import the modules of a plug-in list, skipping those that are not part of this build."""

from __future__ import annotations

import importlib
from collections.abc import Iterable


def import_available(modules: Iterable[str]) -> None:
    """Import each module; one that does not exist is skipped, any other import error is raised."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
