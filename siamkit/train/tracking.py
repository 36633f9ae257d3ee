"""Tracker training: task adapters for the shared Trainer, published schedules, and the runner.

* :class:`SiamFCTask` — balanced logistic loss on the response map.
* :class:`RPNTask` — SiamRPN / SiamRPN++ (and SiamMask with a ``mask`` output): 1.0·cls + 1.2·loc
  (+ 36·mask), pysot's anchor targets.
* :class:`BANTask` — SiamBAN / ACM: 1.0·cls + 1.0·IoU loss.

Published schedules are per epoch: pysot's ``step`` warm-up (geometric, 5 epochs) then ``log``
decay (:func:`pysot_lr`), siamfc-pytorch's exponential decay (:func:`exponential_lr`). The
backbone stays frozen (BatchNorm in eval mode) until ``train_epoch``, then the listed layers
train at ``lr_mult`` × the base rate (:class:`BackboneUnfreeze`; the rate factor is applied to
the gradient with the weight-decay term corrected, which for SGD equals a per-group rate).

``siamkit train --config configs/siamfc_train.yaml`` runs :func:`run_tracker_training`
(registered as the ``tracker`` task).
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from siamkit.config import MODELS, from_dict, to_dict
from siamkit.data.pairs import (
    AugmentConfig,
    PairConfig,
    PairDataset,
    PasteSource,
    PhotoSource,
    TrackSource,
    image_paths,
    tracks_from_coco,
    tracks_from_dataset,
    tracks_from_vid,
)
from siamkit.errors import ConfigError
from siamkit.losses.tracking import (
    BAN_WEIGHTS,
    MASK_WEIGHTS,
    RPN_WEIGHTS,
    AnchorTargets,
    PointTargets,
    SiamFCTargets,
    balanced_logistic_loss,
    ban_loc_loss,
    mask_loss,
    refine_mask_loss,
    select_cross_entropy,
    weighted_l1_loss,
    weighted_total,
)
from siamkit.train.init import init_ban_regression, init_from_weights
from siamkit.train.trainer import Task

# =========================================================================== schedules


def pysot_lr(
    epoch: int,
    epochs: int = 20,
    warmup_epochs: int = 5,
    warmup_start: float = 0.001,
    warmup_end: float = 0.005,
    start: float = 0.005,
    end: float = 0.0005,
) -> float:
    """pysot's per-epoch rate: ``step`` warm-up ``warmup_start·m^e`` with m = (end/start)^(1/warm-up
    epochs), then ``log``: ``logspace(start, end, epochs − warmup_epochs)``."""
    if not 0 <= epoch < epochs:
        raise ConfigError(f"epoch {epoch} is outside 0…{epochs - 1}.")
    if epoch < warmup_epochs:
        mult = (warmup_end / warmup_start) ** (1.0 / warmup_epochs)
        return warmup_start * mult**epoch
    n = epochs - warmup_epochs
    t = (epoch - warmup_epochs) / (n - 1) if n > 1 else 0.0
    return 10 ** (math.log10(start) + t * (math.log10(end) - math.log10(start)))


def exponential_lr(epoch: int, initial: float = 1e-2, ultimate: float = 1e-5, epochs: int = 50) -> float:
    """siamfc-pytorch: ``initial · γ^epoch`` with γ = (ultimate/initial)^(1/epochs)."""
    return initial * (ultimate / initial) ** (epoch / epochs)


@dataclass(frozen=True)
class BackboneUnfreeze:
    """Backbone frozen until ``train_epoch``, then ``layers`` (attribute names) train at ``lr_mult``."""

    train_epoch: int = 10
    layers: tuple[str, ...] = ()
    lr_mult: float = 0.1
    weight_decay: float = 1e-4  # must equal the optimizer's, for the exact rate correction


# =========================================================================== tasks


class TrackingTask(Task):
    """Common part of the tracker tasks: the model, loss weights, step counter and backbone freezing."""

    kinds: tuple[str, ...] = ()

    def __init__(
        self,
        model: nn.Module,
        weights: Mapping[str, float] | None = None,
        backbone: BackboneUnfreeze | None = None,
        steps_per_epoch: int = 1,
    ):
        super().__init__()
        if self.kinds and getattr(model, "kind", None) not in self.kinds:
            raise ConfigError(
                f"{type(self).__name__} trains models of kind {self.kinds}, got {getattr(model, 'kind', None)!r}."
            )
        self.model = model
        self.weights = dict(weights or {})
        self.backbone_cfg = backbone
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self._hooks: list[Any] = []
        self.changes_trainable = backbone is not None  # DDP: frozen backbone parameters have no gradients
        if backbone is not None:
            self._install_lr_mult(backbone)

    @property
    def epoch(self) -> int:
        return int(self.step) // self.steps_per_epoch

    def freeze(self, prefixes: Sequence[str]) -> list[str]:
        """Keep the model's parameters under ``prefixes`` fixed (no gradient, batch-norm in eval mode) for the
        whole run — e.g. a shipped tracker's box branch while a mask branch learns on top of it. Call before
        the optimizer is built; returns the frozen parameter names."""
        prefixes = tuple(prefixes)
        names = [n for n, p in self.model.named_parameters() if n.startswith(prefixes)]
        if prefixes and not names:
            raise ConfigError(f"No model parameter starts with {list(prefixes)}.")
        for n, p in self.model.named_parameters():
            if n.startswith(prefixes):
                p.requires_grad_(False)
        self.frozen = prefixes
        self.train(self.training)
        return names

    def train(self, mode: bool = True):
        super().train(mode)
        for name, module in self.model.named_modules():
            if name and (name + ".").startswith(getattr(self, "frozen", ())):
                module.eval()
        return self

    def _layer_params(self, names: Sequence[str]) -> list[nn.Parameter]:
        params = []
        for name in names:
            params += list(self._layer(name).parameters())
        return params

    def _layer(self, name: str) -> nn.Module:
        """A backbone sub-module by (dotted) name, e.g. ``layer2`` or ``features.11``."""
        try:
            return self.model.backbone.get_submodule(name)
        except AttributeError:
            raise ConfigError(f"Backbone has no layer {name!r} to unfreeze.") from None

    def _install_lr_mult(self, cfg: BackboneUnfreeze) -> None:
        if cfg.lr_mult == 1.0:
            return
        for p in self._layer_params(cfg.layers):
            def hook(grad, p=p, m=cfg.lr_mult, wd=cfg.weight_decay):
                # optimizer adds wd·p: (m·g + (m−1)·wd·p) + wd·p = m·(g + wd·p)
                return grad * m + (m - 1) * wd * p.detach()

            self._hooks.append(p.register_hook(hook))

    def apply_freezing(self) -> None:
        """Freeze/unfreeze backbone parameters and BatchNorm modes for the current epoch (pysot)."""
        cfg = self.backbone_cfg
        if cfg is None:
            return
        bb = self.model.backbone
        unfrozen = self.epoch >= cfg.train_epoch
        train_params = {id(p) for p in self._layer_params(cfg.layers)} if unfrozen else set()
        for p in bb.parameters():
            p.requires_grad_(id(p) in train_params)
        for m in bb.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
        if unfrozen:
            for name in cfg.layers:
                for m in self._layer(name).modules():
                    if isinstance(m, nn.modules.batchnorm._BatchNorm):
                        m.train(self.training)

    def training_step(self, batch: Mapping[str, torch.Tensor]):
        self.apply_freezing()
        out = self.model(batch["template"], batch["search"])
        terms = self.losses(out, batch)
        if self.training:
            self.step += 1
        total = weighted_total(terms, self.weights)
        return total, {k: float(v.detach()) for k, v in terms.items()}

    def losses(self, out: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError


class SiamFCTask(TrackingTask):
    """SiamFC: balanced logistic loss (weights 0.5/#pos, 0.5/#neg per map)."""

    kinds = ("siamfc",)

    def __init__(self, model, weights=None, backbone=None, steps_per_epoch=1):
        super().__init__(model, weights or {"cls": 1.0}, backbone, steps_per_epoch)

    def losses(self, out, batch):
        return {"cls": balanced_logistic_loss(out["cls"], batch["label"], batch["label_weight"])}


class RPNTask(TrackingTask):
    """SiamRPN/SiamRPN++ (1.0·cls + 1.2·loc) and SiamMask (+ 36·mask when the model outputs a mask)."""

    kinds = ("rpn", "mask")

    def __init__(self, model, weights=None, backbone=None, steps_per_epoch=1):
        default = MASK_WEIGHTS if getattr(model, "kind", "") == "mask" else RPN_WEIGHTS
        super().__init__(model, weights or default, backbone, steps_per_epoch)

    def losses(self, out, batch):
        terms = {
            "cls": select_cross_entropy(out["cls"], batch["label_cls"]),
            "loc": weighted_l1_loss(out["loc"], batch["label_loc"], batch["label_loc_weight"]),
        }
        if "mask" in out and "label_mask" in batch:
            # each cell sees the exemplar-sized window starting base_size/2 cells before it
            stride = self.model.stride
            padding = self.model.base_size * stride // 2
            weight = batch["label_mask_weight"]
            side = int(round(out["mask"].shape[1] ** 0.5))
            terms["mask"] = mask_loss(out["mask"], batch["label_mask"], weight, side, self.model.exemplar_size,
                                      stride, padding)
            if self.weights.get("refine") and "mask_features" in out:
                terms["refine"] = self.refine_term(out, batch["label_mask"], weight, stride, padding)
        return terms

    def refine_term(self, out, label_mask, weight, stride, padding):
        """The refined mask's loss at one positive cell, drawn at random, of every pair that has one."""
        flat = weight.reshape(len(weight), -1)
        has = flat.sum(1) > 0
        if not bool(has.any()):
            return out["mask"].sum() * 0
        picked = torch.multinomial(flat[has].float(), 1)[:, 0]
        side = weight.shape[-1]
        cells = torch.stack([picked // side, picked % side], dim=1).cpu()
        keep = torch.nonzero(has)[:, 0]
        sub = {"mask_features": tuple(f[keep] for f in out["mask_features"]), "mask_corr": out["mask_corr"][keep]}
        logits = self.model.refine_mask(sub, cells)
        return refine_mask_loss(logits, label_mask[keep], cells, stride, padding)


class BANTask(TrackingTask):
    """SiamBAN / SiamBAN-ACM: 1.0·cls (balanced NLL) + 1.0·linear IoU loss on positive points."""

    kinds = ("ban",)

    def __init__(self, model, weights=None, backbone=None, steps_per_epoch=1):
        super().__init__(model, weights or BAN_WEIGHTS, backbone, steps_per_epoch)

    def training_step(self, batch):
        self.apply_freezing()
        # SiamBAN-ACM's template branch also takes the target size in the exemplar crop
        box = batch.get("template_wh") if type(self.model).__name__ == "SiamBANACMNet" else None
        out = self.model(batch["template"], batch["search"], box)
        terms = self.losses(out, batch)
        if self.training:
            self.step += 1
        return weighted_total(terms, self.weights), {k: float(v.detach()) for k, v in terms.items()}

    def losses(self, out, batch):
        return {
            "cls": select_cross_entropy(out["cls"], batch["label_cls"]),
            "loc": ban_loc_loss(out["loc"], batch["label_loc"], batch["label_cls"]),
        }


TASK_FOR_KIND = {"siamfc": SiamFCTask, "rpn": RPNTask, "mask": RPNTask, "ban": BANTask}


def targets_for(model: nn.Module, search_size: int, **options: Any):
    """The target builder matching a model's kind and geometry at training search size."""
    kind = getattr(model, "kind", None)
    size = model.score_size_for(search_size)
    if kind == "siamfc":
        return SiamFCTargets(score_size=size, stride=model.stride, search_size=search_size, **options)
    if kind in ("rpn", "mask"):
        opts = {"fill_negatives": True, "neg_window": "centre", "with_mask": True} if kind == "mask" else {}
        opts.update(options)
        return AnchorTargets(score_size=size, search_size=search_size, stride=model.stride, **opts)
    if kind == "ban":
        return PointTargets(score_size=size, search_size=search_size, stride=model.stride, **options)
    raise ConfigError(f"No training targets for model kind {kind!r}.")


# =========================================================================== experiment runner


@dataclass(frozen=True)
class SourceConfig:
    """One data source of a training YAML.

    ``kind``: ``dataset`` (``spec`` for :func:`~siamkit.data.benchmarks.open_dataset`, optional
    ``names``/``exclude``), ``vid`` (``root``), ``coco`` (``annotations`` + ``images``), or
    ``photos`` (``folders``, image files for self-supervised pairs; ``packages`` names installed
    Python packages whose data folders to use: ``matplotlib``, ``sklearn``).
    """

    kind: str
    spec: str = ""
    names: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    root: str = ""
    annotations: str = ""
    images: str = ""
    folders: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    objects: tuple[str, ...] = ()  # paste: folders of object images (default: patches of the photos)
    frame_range: int = 100
    num_use: int = -1
    filter_noisy: bool = False


@dataclass(frozen=True)
class TrackerExperiment:
    """A tracker-training YAML (``task: tracker``)."""

    task: str
    name: str
    model: str
    model_config: dict[str, Any] = field(default_factory=dict)
    sources: tuple[SourceConfig, ...] = ()
    pairs: PairConfig = field(default_factory=PairConfig)
    targets: dict[str, Any] = field(default_factory=dict)
    loss_weights: dict[str, float] = field(default_factory=dict)
    backbone: BackboneUnfreeze | None = None
    init_from: str | None = None  # zoo name or .safetensors: parameters under init_prefixes start from it
    init_prefixes: tuple[str, ...] = ("backbone.",)
    freeze: tuple[str, ...] = ()  # parameter-name prefixes that stay fixed for the whole run (see TrackingTask.freeze)
    loc_init: float | None = None  # BAN models: first predicted distances in px (see init_ban_regression)
    batch_size: int = 8
    epochs: int = 1
    train: dict[str, Any] = field(default_factory=dict)
    ship: str | None = None
    ship_half: bool = True
    meta: dict[str, Any] = field(default_factory=dict)


def package_photo_folders(packages: Sequence[str]) -> list[Path]:
    """Folders of sample photographs shipped by installed packages (matplotlib, scikit-learn)."""
    folders = []
    for pkg in packages:
        if pkg == "matplotlib":
            import matplotlib

            folders.append(Path(matplotlib.get_data_path()) / "sample_data")
        elif pkg == "sklearn":
            import sklearn

            folders.append(Path(sklearn.__file__).parent / "datasets" / "images")
        else:
            raise ConfigError(f"No photo folder known for package {pkg!r}.", hint="Use matplotlib or sklearn.")
    return folders


def build_source(cfg: SourceConfig, base: Path):
    """Instantiate one :class:`SourceConfig` (relative paths are taken from ``base``)."""

    def rel(p: str) -> Path:
        path = Path(p)
        return path if path.is_absolute() else base / path

    if cfg.kind == "dataset":
        kind, _, path = cfg.spec.partition(":")
        spec = f"{kind}:{rel(path)}" if path and not Path(path).is_absolute() else cfg.spec
        tracks = tracks_from_dataset(spec, cfg.names, cfg.exclude)
        return TrackSource(cfg.spec, tracks, cfg.frame_range, cfg.num_use, cfg.filter_noisy)
    if cfg.kind == "vid":
        return TrackSource("vid", tracks_from_vid(rel(cfg.root)), cfg.frame_range, cfg.num_use, cfg.filter_noisy)
    if cfg.kind == "coco":
        return TrackSource("coco", tracks_from_coco(rel(cfg.annotations), rel(cfg.images)), 1, cfg.num_use)
    if cfg.kind in ("photos", "paste"):
        folders = [rel(f) for f in cfg.folders] + package_photo_folders(cfg.packages)
        if cfg.kind == "photos":
            return PhotoSource("photos", image_paths(folders), cfg.num_use)
        objects = image_paths([rel(f) for f in cfg.objects]) if cfg.objects else []
        return PasteSource("paste", image_paths(folders), cfg.num_use, objects=objects)
    raise ConfigError(f"Unknown data source kind {cfg.kind!r}.", hint="Use dataset, vid, coco, photos or paste.")


def initialise(model: nn.Module, exp: TrackerExperiment, base: Path) -> dict[str, Any]:
    """Apply the experiment's ``init_from`` and ``loc_init`` to a fresh model; says what was done."""
    done: dict[str, Any] = {}
    if exp.init_from:
        src = exp.init_from
        if src.endswith(".safetensors") and not Path(src).is_absolute():
            src = str(base / src)
        keys = init_from_weights(model, src, exp.init_prefixes)
        done = {"weights": exp.init_from, "prefixes": list(exp.init_prefixes), "tensors": len(keys)}
    if exp.loc_init is not None:
        init_ban_regression(model, exp.loc_init)
        done["loc_init_px"] = exp.loc_init
    return done


def _collate_aug(data: Mapping[str, Any]) -> dict[str, Any]:
    pairs = dict(data.get("pairs", {}))
    for branch in ("template", "search"):
        if branch in pairs and isinstance(pairs[branch], Mapping):
            pairs[branch] = from_dict(AugmentConfig, pairs[branch], where=f"pairs.{branch}")
    return {**data, "pairs": pairs}


def training_recipe(exp: TrackerExperiment, trainer: Any, source: str, command: str) -> dict[str, Any]:
    """What a shipped tracker's sidecar records so anyone can retrain it: config, command, data, steps, time."""
    return {
        "config": source,
        "command": command,
        "data": [to_dict(s) for s in exp.sources],
        "steps": trainer.step,
        "batch_size": exp.batch_size,
        "wall_time_s": round(trainer.wall_time, 1),
        "device": f"{trainer.device} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "final_loss_mean50": trainer.mean_loss(50),
    }


def run_summary(exp: TrackerExperiment, trainer: Any, history: list, started: float, pairs: int) -> dict[str, Any]:
    """The results.json of a tracker-training run: steps, losses, wall times and device."""
    return {
        "experiment": exp.name,
        "steps": trainer.step,
        "pairs_per_epoch": pairs,
        "first_loss": history[0]["loss"] if history else None,
        "final_loss_mean50": trainer.mean_loss(50),
        "total_wall_time_s": round(trainer.wall_time, 1),
        "this_run_wall_time_s": round(time.perf_counter() - started, 1),
        "device": str(trainer.device),
    }


def run_tracker_training(
    config: Mapping[str, Any],
    out_dir: str | Path | None = None,
    resume: bool = False,
    command: str = "",
    source: str = "",
    steps: int | None = None,
    device: str | None = None,
    publish: bool = False,
    **_: Any,
) -> dict[str, Any]:
    """Train a tracker from a YAML mapping; ship the result to the model zoo only when the config says
    ``ship:`` and ``publish`` is asked for (``siamkit train --publish``); otherwise the run folder only."""
    from siamkit import zoo
    from siamkit.train.loader import RandomBatches, StepLoader
    from siamkit.train.trainer import TrainConfig, Trainer

    exp = from_dict(TrackerExperiment, _collate_aug(config), where=source or "tracker experiment")
    base = Path.cwd()  # relative data and ship paths are taken from where the command runs
    zoo._ensure_registered()
    model = MODELS.build(exp.model, **exp.model_config)
    initialised = initialise(model, exp, base)
    sources = [build_source(s, base) for s in exp.sources]
    targets = targets_for(model, exp.pairs.search_size, **exp.targets)
    dataset = PairDataset(sources, exp.pairs, targets)
    steps_per_epoch = max(1, len(dataset) // exp.batch_size)
    train_data = dict(exp.train)
    train_data.setdefault("steps", steps_per_epoch * exp.epochs)
    train_data.setdefault("epoch_steps", steps_per_epoch)
    if steps is not None:
        train_data["steps"] = int(steps)
    train_cfg = from_dict(TrainConfig, train_data, where="train")
    task_cls = TASK_FOR_KIND[model.kind]
    task = task_cls(model, exp.loss_weights or None, exp.backbone, steps_per_epoch)
    if exp.freeze:
        task.freeze(exp.freeze)
    loader = StepLoader(RandomBatches(len(dataset), exp.batch_size, train_cfg.seed), dataset.make_batch, train_cfg.seed)
    out = Path(out_dir) if out_dir is not None else base / "runs" / exp.name
    trainer = Trainer(task, loader, train_cfg, out, device=device)
    started = time.perf_counter()
    history = trainer.run(resume=resume)
    results = run_summary(exp, trainer, history, started, len(dataset))
    results.update(steps_per_epoch=steps_per_epoch, initialised_from=initialised)
    meta = {**exp.meta, "task": "tracking", "recipe": training_recipe(exp, trainer, source, command)}
    model.eval()
    # the run folder always gets the trained model; the package only when publishing is asked for
    results["weights"] = str(zoo.save_model(model, out / f"{exp.name}.safetensors", exp.model, exp.model_config,
                                            meta, half=exp.ship_half))
    if exp.ship and publish:
        path = Path(exp.ship)
        path = path if path.is_absolute() else base / path
        results["shipped"] = str(zoo.save_model(model, path, exp.model, exp.model_config, meta, half=exp.ship_half))
    from siamkit.utils.io import write_json

    write_json(out / "results.json", results)
    return results


def _register() -> None:
    from siamkit.train.tasks import TASKS

    if "tracker" not in TASKS:
        TASKS.register("tracker")(run_tracker_training)


_register()

__all__ = [
    "BANTask",
    "BackboneUnfreeze",
    "RPNTask",
    "SiamFCTask",
    "TrackingTask",
    "exponential_lr",
    "pysot_lr",
    "run_tracker_training",
    "targets_for",
]
