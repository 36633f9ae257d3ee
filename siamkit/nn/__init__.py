"""Pure ``nn.Module`` building blocks and the published networks (no I/O, no global state).

Importing this package registers every model builder in :data:`siamkit.config.MODELS`.
"""

from __future__ import annotations

from siamkit.utils.imports import import_available

# Modules that register model builders when imported (a module missing from a build is skipped).
_MODEL_MODULES = (
    "siamkit.nn.models",
    "siamkit.nn.nanotrack",
    "siamkit.nn.nanotrack_lite0",
    "siamkit.nn.lite0_trackers",
    "siamkit.nn.embedding",
)

import_available(_MODEL_MODULES)
