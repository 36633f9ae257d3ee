"""Registry of training experiments, selected by the ``task:`` key of a training YAML.

``siamkit train --config configs/x.yaml`` reads the YAML, looks ``task`` up in :data:`TASKS`
and calls the runner as ``runner(config_dict, out_dir=..., resume=..., command=..., **overrides)``.
A runner module registers itself on import; the modules listed in :data:`TASK_MODULES` are
imported on first use (add a runner module there or register from your own code).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from siamkit.config import Registry, load_yaml
from siamkit.errors import ConfigError
from siamkit.utils.imports import import_available

TASKS = Registry("training task")

#: The runner modules, all under ``siamkit.train``: ``metric`` (embedding nets), ``tracking`` (the
#: published trackers end to end), ``distill`` (NanoTrack-Lite0 from a teacher), ``heads`` (the Lite0
#: families' heads on a frozen trunk).
TASK_MODULES = (
    "siamkit.train.metric",
    "siamkit.train.tracking",
    "siamkit.train.distill",
    "siamkit.train.heads",
)


def _ensure_registered() -> None:
    import_available(TASK_MODULES)


def run_experiment(config_path: str | Path, out_dir: str | Path | None = None, resume: bool = False,
                   command: str = "", **overrides: Any) -> dict[str, Any]:
    """Run the experiment a training YAML describes; returns its results dictionary."""
    data = load_yaml(config_path)
    task = data.get("task")
    if not task:
        _ensure_registered()
        raise ConfigError(f"{config_path} has no 'task' key.", hint=f"Set task: to one of {', '.join(TASKS.names())}.")
    _ensure_registered()
    runner = TASKS.get(str(task))
    return runner(data, out_dir=out_dir, resume=resume, command=command, source=str(config_path), **overrides)
