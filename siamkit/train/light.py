"""Training the light NanoTrack-v2 network (random init) with the BAN loss on CPU.

:class:`~siamkit.nn.nanotrack.NanoTrackV2` is a BAN-kind model (``cls`` B×2×16×16 logits, ``loc``
B×4×16×16 = exp(raw) (l, t, r, b) distances in search-crop pixels from the grid points at
``(i − 8)·16`` px around the crop centre) — the layout :class:`~siamkit.train.tracking.BANTask`'s
losses and :class:`~siamkit.losses.tracking.PointTargets` expect. Two things do not fit the generic
runner: its ``forward`` takes no template box (BANTask passes one) and it has no ``score_size_for``
(``targets_for`` asks for it). This module supplies :class:`NanoTrackTask`, :func:`nanotrack_targets`
and the runner registered as the ``nanotrack_light`` training task.

Before the first step the regression prediction bias is set to ln(``loc_init``) so that the
initial boxes are about target-sized rather than 1 px (exp(0)); without it the IoU loss starts
near 1 everywhere and learns scale slowly.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from siamkit.config import MODELS, from_dict
from siamkit.data.pairs import PairDataset
from siamkit.errors import ConfigError, DataError
from siamkit.losses.tracking import PointTargets, weighted_total
from siamkit.train.init import init_ban_regression
from siamkit.train.tracking import BANTask, TrackerExperiment, _collate_aug, build_source, run_summary, training_recipe
from siamkit.train.trainer import read_checkpoint

ARCHITECTURE = "nanotrack_v2"
DEFAULT_LOC_INIT = 32.0  # px: half a typical 64-px target in the 255-px search crop


class NanoTrackTask(BANTask):
    """BANTask for NanoTrack v2: the network is called as ``model(template, search)``."""

    def training_step(self, batch):
        self.apply_freezing()
        out = self.model(batch["template"], batch["search"])
        terms = self.losses(out, batch)
        if self.training:
            self.step += 1
        return weighted_total(terms, self.weights), {k: float(v.detach()) for k, v in terms.items()}


def nanotrack_targets(model: nn.Module, search_size: int, **options: Any) -> PointTargets:
    """BAN ellipse targets on NanoTrack's score grid (16×16, stride 16 for a 255-px search crop)."""
    if search_size != getattr(model, "instance_size", search_size):
        raise ConfigError(
            f"NanoTrack was built for {model.instance_size}-px search crops, pairs ask for {search_size}.",
            hint="Set pairs.search_size to the model's instance_size (255).",
        )
    return PointTargets(score_size=int(model.score_size), search_size=search_size, stride=int(model.stride), **options)


def init_loc_bias(model: nn.Module, distance: float = DEFAULT_LOC_INIT) -> None:
    """Start the regression branch at ``distance`` px on every side (bias ln d, small weights)."""
    init_ban_regression(model, distance)


def build_light(config: Mapping[str, Any], source: str = ""):
    """Experiment, model, dataset and task of a ``nanotrack_light`` YAML (no training yet)."""
    from siamkit import zoo

    data = dict(_collate_aug(config))
    loc_init = float(data.pop("loc_init", DEFAULT_LOC_INIT))
    data["task"] = "tracker"
    exp = from_dict(TrackerExperiment, data, where=source or "nanotrack_light experiment")
    if exp.model != ARCHITECTURE:
        raise ConfigError(f"nanotrack_light trains {ARCHITECTURE!r}, the config asks for {exp.model!r}.")
    base = Path.cwd()  # relative data and ship paths are taken from where the command runs
    zoo._ensure_registered()
    model = MODELS.build(exp.model, **exp.model_config)
    init_loc_bias(model, loc_init)
    sources = [build_source(s, base) for s in exp.sources]
    dataset = PairDataset(sources, exp.pairs, nanotrack_targets(model, exp.pairs.search_size, **exp.targets))
    steps_per_epoch = max(1, len(dataset) // exp.batch_size)
    task = NanoTrackTask(model, exp.loss_weights or None, exp.backbone, steps_per_epoch)
    return exp, model, dataset, task, base


def ship_light(exp: TrackerExperiment, model: nn.Module, base: Path, recipe: Mapping[str, Any],
               metrics: Mapping[str, Any] | None = None, path: str | Path | None = None) -> Path:
    """Save the trained network to the zoo (fp16) with the recipe and held-out metrics in ``meta``."""
    from siamkit import zoo

    target = Path(path or exp.ship or "")
    if not str(target):
        raise ConfigError("Nowhere to ship the model.", hint="Set ship: in the config or pass path=.")
    target = target if target.is_absolute() else base / target
    meta = {**exp.meta, "tracker": "nanotrack", "task": "tracking", "recipe": dict(recipe)}
    if metrics:
        meta["metrics"] = dict(metrics)
    model.eval()
    return zoo.save_model(model, target, exp.model, exp.model_config, meta, half=exp.ship_half)


def model_from_checkpoint(config: Mapping[str, Any], checkpoint: str | Path, source: str = ""):
    """The experiment, model and trainer state (step, wall time, history) of a saved checkpoint."""
    exp, model, _, task, base = build_light(config, source)
    path = Path(checkpoint)
    if not path.is_file():
        raise DataError(f"No checkpoint at {path}.", hint="Train first (siamkit.train.light.run_light_training).")
    state = read_checkpoint(path)  # weights_only=True: a crafted checkpoint cannot run code
    task.load_state_dict(state["task"])
    return exp, model, base, state


def run_light_training(
    config: Mapping[str, Any],
    out_dir: str | Path | None = None,
    resume: bool = False,
    command: str = "",
    source: str = "",
    steps: int | None = None,
    device: str | None = None,
    stop_at: int | None = None,
    ship: bool = True,
    publish: bool = False,
    **_: Any,
) -> dict[str, Any]:
    """Train NanoTrack v2 from a YAML mapping with the shared Trainer; ship it only when ``ship`` and
    ``publish`` (an explicit request: a run never writes into the package or a zoo unasked)."""
    from siamkit.train.loader import RandomBatches, StepLoader
    from siamkit.train.trainer import TrainConfig, Trainer
    from siamkit.utils.io import write_json

    exp, model, dataset, task, base = build_light(config, source)
    train_data = dict(exp.train)
    train_data.setdefault("steps", task.steps_per_epoch * exp.epochs)
    if steps is not None:
        train_data["steps"] = int(steps)
    cfg = from_dict(TrainConfig, train_data, where="train")
    loader = StepLoader(RandomBatches(len(dataset), exp.batch_size, cfg.seed), dataset.make_batch, cfg.seed)
    out = Path(out_dir) if out_dir is not None else base / "runs" / exp.name
    trainer = Trainer(task, loader, cfg, out, device=device)
    started = time.perf_counter()
    history = trainer.run(resume=resume, stop_at=stop_at)
    results = run_summary(exp, trainer, history, started, len(dataset)) | {"planned_steps": cfg.steps}
    if ship and publish and exp.ship:
        recipe = training_recipe(exp, trainer, source, command)
        results["shipped"] = str(ship_light(exp, model, base, recipe))
    write_json(out / "results.json", results)
    return results


def _register() -> None:
    from siamkit.train.tasks import TASKS

    if "nanotrack_light" not in TASKS:
        TASKS.register("nanotrack_light")(run_light_training)


_register()

__all__ = ["NanoTrackTask", "build_light", "init_loc_bias", "model_from_checkpoint", "nanotrack_targets",
           "run_light_training", "ship_light"]
