"""Train a Siamese tracker family's head on the frozen Lite0 trunk, from cached trunk features.

The recipe of ``configs/<family>_lite0_train.yaml`` (task ``heads``) for the models of
:mod:`siamkit.nn.lite0_trackers` (SiamFC, SiamRPN, SiamRPN++, SiamBAN, SiamBAN-ACM):

1. **Cache.** The pairs and trunk features of the distillation recipe (:func:`siamkit.train.distill.build_cache`,
   here without a teacher): real sequences of ``tracking_train`` split by video, plus paste pairs. A cache the
   distillation already built for the same pairs is reused as it is (its teacher maps are ignored). A model
   reading several trunk levels (SiamRPN++'s aggregation) caches the features entering the block after its
   earliest level; the frozen blocks from there to each level run once over the cache (:func:`add_level_maps`).
2. **Targets.** The cache stores each pair's search box as point distances; it is read back
   (:func:`boxes_from_point_targets`) and the family's own targets are drawn for it every step (SiamFC's
   logistic labels, pysot's anchor labels, SiamBAN's ellipse labels; :func:`siamkit.train.tracking.targets_for`).
   SiamBAN-ACM's template also takes the target's box prior: it is computed from the search box as the tracker
   computes it from the first frame's box (:func:`template_box_priors`).
3. **Train** the head with the family's losses (:data:`siamkit.train.tracking.TASK_FOR_KIND`), checkpointing
   every ``checkpoint_every`` steps (exact resume), and **select** the step by one-pass evaluation of the
   family's tracker on the validation videos; then a grid of tracker settings on the same videos.

The test clips are never read. Shipping into the package happens only with ``--publish``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from siamkit.config import MODELS, from_dict, to_dict
from siamkit.data.pairs import PairConfig
from siamkit.errors import ConfigError
from siamkit.losses.tracking import PointTargets, weighted_total
from siamkit.nn.backbones.efficientnet_lite import load_imagenet_weights
from siamkit.ops.postprocess import exemplar_box_prior
from siamkit.train.distill import (
    CachedPairs,
    TeacherConfig,
    build_cache,
    cache_split,
    ope_auc,
    result_record,
    run_folders,
    train_steps,
    tune_settings,
    validation_sequences,
)
from siamkit.train.tracking import TASK_FOR_KIND, SourceConfig, _collate_aug, targets_for
from siamkit.utils.io import write_json
from siamkit.utils.progress import progress

#: The box given to negative pairs' targets (they have none): the crop centre, a typical target size.
NEGATIVE_BOX_SIDE = 64.0


@dataclass(frozen=True)
class HeadsExperiment:
    """A ``task: heads`` training YAML."""

    task: str
    name: str
    model: str
    tracker: str  # the tracker that runs the model (validation, shipping)
    sources: tuple[SourceConfig, ...]
    validation: str
    validation_videos: tuple[str, ...]
    preset: str = "lite0"  # the tracker's preset whose settings are used while validating
    model_config: dict[str, Any] = field(default_factory=dict)
    targets: dict[str, Any] = field(default_factory=dict)  # options of the family's target builder
    pairs: PairConfig = field(default_factory=PairConfig)
    cache: str = ""
    cache_pairs: int = 20000
    cache_chunk: int = 500
    loss_weights: dict[str, float] = field(default_factory=dict)  # default: the family's published weights
    # Share of each batch turned into distractor pairs (DaSiamRPN): a search crop with its object, paired with
    # another pair's template, so the object is a negative (0: only the cache's negative pairs).
    distractor_pairs: float = 0.0
    batch_size: int = 64
    steps: int = 2000
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    val_every: int = 500
    checkpoint_every: int = 100
    tune: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # grid over the tracker's settings
    seed: int = 0
    ship: str | None = None
    ship_half: bool = True  # the zoo keeps float16 weights (cast back on load), as the tracker task ships them
    meta: dict[str, Any] = field(default_factory=dict)
    teacher: TeacherConfig | None = None  # the shared cache is built without one
    trainable_blocks: int = 0  # the trunk stays frozen


# =========================================================================== targets


def boxes_from_point_targets(label_loc: torch.Tensor, stride: int, search_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(B×4 x1,y1,x2,y2 search-crop boxes, B negative flags) from cached B×4×S×S point distances.

    Every point of a positive pair stores its distances (l, t, r, b) to the box, so the first point
    gives the box back; negative pairs store zeros everywhere.
    """
    size = label_loc.shape[-1]
    px, py = PointTargets(score_size=size, search_size=search_size, stride=stride).points[:, 0, 0]
    ltrb = label_loc[:, :, 0, 0].double().numpy()
    negative = ~label_loc.reshape(len(label_loc), -1).any(dim=1).numpy()
    boxes = np.stack([px - ltrb[:, 0], py - ltrb[:, 1], px + ltrb[:, 2], py + ltrb[:, 3]], axis=1)
    c, h = search_size / 2, NEGATIVE_BOX_SIDE / 2
    boxes[negative] = (c - h, c - h, c + h, c + h)
    return boxes, negative


#: The batch entries that belong to the template (they move together when templates are swapped).
TEMPLATE_KEYS = ("zf", "z_box")


def template_box_priors(boxes: np.ndarray, negative: np.ndarray, pairs: PairConfig,
                        generator: torch.Generator) -> torch.Tensor:
    """SiamBAN-ACM's box prior of each pair's template: B×4 (cx, cy, w, h) in exemplar-crop pixels.

    The cache holds the search box only. Template and search show the same object at the same scale (up to the
    augmentation), and the target's size in the exemplar crop, ``exemplar · (w, h) / s_z`` with
    ``s_z = √((w + p)(h + p))``, ``p = context · (w + h)``, depends on the box's aspect ratio only — so it is
    computed from the search box (w, h) by the tracker's own function
    (:func:`~siamkit.ops.postprocess.exemplar_box_prior`). Negative pairs have no box: each takes the prior
    of a random positive pair of the batch (a real target's shape, not a constant that would give them away).
    """
    size = torch.from_numpy(np.asarray(boxes, np.float64)[:, 2:] - np.asarray(boxes, np.float64)[:, :2])
    positive = np.flatnonzero(~negative)
    if len(positive) and negative.any():
        donors = positive[torch.randint(len(positive), (int(negative.sum()),), generator=generator).numpy()]
        size[torch.from_numpy(np.flatnonzero(negative))] = size[torch.from_numpy(donors)]
    return exemplar_box_prior(size, pairs.exemplar_size, context_amount=pairs.context).to(torch.float32)


def make_distractor_pairs(batch: dict[str, torch.Tensor], negative: np.ndarray, share: float,
                          generator: torch.Generator) -> np.ndarray:
    """Give ``share`` of the batch's positive pairs another pair's template (in place); → the new negative flags.

    The search crop keeps its object and box, so that object's cells become negatives of the template it is
    not: the distractor-aware training of DaSiamRPN, with distractors drawn from other videos and classes.
    Every template entry of the batch (:data:`TEMPLATE_KEYS`: the features and SiamBAN-ACM's box prior) moves
    with the template.
    """
    positive = np.flatnonzero(~negative)
    count = min(len(positive), int(round(share * len(negative))))
    if count < 2:
        return negative
    chosen = positive[torch.randperm(len(positive), generator=generator)[:count].numpy()]
    for key in batch:
        if key.partition("@")[0] in TEMPLATE_KEYS:  # the template's maps at every level too
            batch[key][chosen] = batch[key][np.roll(chosen, 1)]
    negative = negative.copy()
    negative[chosen] = True
    return negative


def family_targets(builder: Any, boxes: np.ndarray, negative: np.ndarray,
                   rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """The family's targets for a batch of boxes, stacked into tensors."""
    rows = [builder(box, bool(neg), rng) for box, neg in zip(boxes, negative, strict=True)]
    return {k: torch.from_numpy(np.stack([r[k] for r in rows])) for k in rows[0]}


# =========================================================================== model parts


def head_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """What training changes: every tensor outside the (frozen) trunk."""
    return {k: v for k, v in model.state_dict().items() if not k.startswith("backbone.")}


def load_head_state(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    unexpected = model.load_state_dict(dict(state), strict=False).unexpected_keys
    if unexpected:
        raise ConfigError(f"Checkpoint keys not in the model: {', '.join(unexpected[:5])}.")


def head_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for n, p in model.named_parameters() if not n.startswith("backbone.")]


def add_level_maps(cache: CachedPairs, model: nn.Module, split: int, chunk: int = 256) -> None:
    """Turn the cached trunk features (those entering block ``split``) into the model's level maps, in place.

    The trunk blocks between the cache and the model's levels are frozen, so they run once per pair here
    rather than at every step. Entries ``zf@<level>`` / ``xf@<level>`` (float16, as the cache) replace ``zf``
    / ``xf``; a one-level model whose level ends at the cache keeps its maps as they are. A cache already
    turned is left alone.
    """
    for key in ("zf", "xf"):
        if all(f"{key}@{level}" in cache.data for level in model.levels):
            continue
        cached = cache.data.pop(key)
        if len(model.levels) == 1 and model.cache_block == split:  # the cache holds the level's maps
            cache.data[f"{key}@{model.levels[0]}"] = cached
            continue
        parts = []
        with torch.no_grad():
            for part in progress(cached.split(chunk), desc=f"trunk levels ({key})", unit="chunk"):
                parts.append([m.half() for m in model.backbone.level_maps(part.float(), model.levels, split)])
        for i, level in enumerate(model.levels):
            cache.data[f"{key}@{level}"] = torch.cat([maps[i] for maps in parts])


def level_batch(batch: Mapping[str, torch.Tensor], key: str, levels: Sequence[str]):
    """A batch's trunk maps as the model takes them: one tensor, or a tuple of one per level."""
    maps = tuple(batch[f"{key}@{level}"] for level in levels)
    return maps[0] if len(maps) == 1 else maps


# =========================================================================== validation


class Validator:
    """One-pass AUC of the family's tracker, running ``model`` as it is now, on the validation videos."""

    def __init__(self, exp: HeadsExperiment, sequences: Sequence[Any], folder: Path):
        self.exp, self.sequences, self.folder = exp, sequences, folder

    def __call__(self, model: nn.Module, settings: Mapping[str, Any] | None = None) -> float:
        from siamkit import zoo
        from siamkit.trackers import create_tracker

        path = zoo.save_model(model.eval(), self.folder / "validating.safetensors", self.exp.model,
                              {**self.exp.model_config, "pretrained": False}, {"tracker": self.exp.tracker})
        tracker = create_tracker(self.exp.tracker, weights=str(path), device="cpu", preset=self.exp.preset,
                                 **dict(settings or {}))
        return ope_auc(tracker, self.sequences)


# =========================================================================== training


def train_heads(model: nn.Module, cache: CachedPairs, exp: HeadsExperiment, out: Path, validate: Validator,
                resume: bool = False, steps: int | None = None) -> dict[str, Any]:
    """Train the head on the cache, validating every ``val_every`` steps; the best step ends up in ``model``."""
    task = TASK_FOR_KIND[model.kind](model, exp.loss_weights or None)
    builder = targets_for(model, exp.pairs.search_size, **exp.targets)
    needs_box = bool(getattr(model, "needs_box_prior", False))  # SiamBAN-ACM: the template takes the box prior
    add_level_maps(cache, model, cache_split(model, exp))
    optimizer = torch.optim.AdamW(head_parameters(model), lr=exp.lr, weight_decay=exp.weight_decay)

    def step_loss(step: int, generator: torch.Generator):
        # batches, distractor swaps and targets depend on the step only (exact resume)
        batch = cache.batch(torch.randint(cache.size, (exp.batch_size,), generator=generator))
        boxes, negative = boxes_from_point_targets(batch["label_loc"], model.stride, exp.pairs.search_size)
        if needs_box:
            batch["z_box"] = template_box_priors(boxes, negative, exp.pairs, generator)
        if exp.distractor_pairs:
            negative = make_distractor_pairs(batch, negative, exp.distractor_pairs, generator)
        targets = family_targets(builder, boxes, negative, np.random.default_rng([exp.seed, step]))
        prior = (batch["z_box"],) if needs_box else ()
        zf, xf = level_batch(batch, "zf", model.levels), level_batch(batch, "xf", model.levels)
        out_maps = model.search_from_trunk(xf, model.template_from_trunk(zf, *prior))
        terms = task.losses(out_maps, targets)
        return weighted_total(terms, task.weights), terms

    return train_steps(model, optimizer, exp, out, step_loss, lambda: validate(model), lambda: head_state(model),
                       lambda state: load_head_state(model, state), resume, steps)


def run_heads(config: Mapping[str, Any], out_dir: str | Path | None = None, resume: bool = False,
              command: str = "", source: str = "", steps: int | None = None, device: str | None = None,
              publish: bool = False, **_: Any) -> dict[str, Any]:
    """Cache → train → select → tune, as the module docstring says; ships only when ``publish`` is asked."""
    from siamkit import zoo

    zoo._ensure_registered()
    exp = from_dict(HeadsExperiment, _collate_aug(config), where=source or "heads experiment")
    if device not in (None, "cpu"):
        raise ConfigError("The heads recipe trains on cached CPU features; run it without --device.")
    base, out, cache_dir = run_folders(exp, out_dir)
    torch.manual_seed(exp.seed)
    model = MODELS.build(exp.model, **exp.model_config)
    if not hasattr(model, "search_from_trunk"):
        raise ConfigError(f"Model {exp.model!r} does not split at the trunk.", hint="Use a *_lite0 tracker model.")
    load_imagenet_weights(model.backbone.body)
    started = time.perf_counter()
    paths = build_cache(exp, model, cache_dir, base)
    cache_time = time.perf_counter() - started
    sequences = validation_sequences(exp, base)
    with tempfile.TemporaryDirectory(prefix="siamkit-validate-") as tmp:
        validate = Validator(exp, sequences, Path(tmp))
        state = train_heads(model, CachedPairs(paths), exp, out, validate, resume=resume, steps=steps)
        if exp.tune:
            tuned, trials = tune_settings(lambda settings: validate(model, settings), {}, exp.tune)
        else:
            tuned, trials = {}, []
    results = result_record(exp, state, trials, cache_time, started, config=source, command=command,
                            tracker=exp.tracker, preset=exp.preset, tracker_settings=tuned)
    write_json(out / "results.json", results)
    meta = {**exp.meta, "task": "tracking", "tracker": exp.tracker, "tracker_settings": tuned,
            "recipe": {k: results[k] for k in ("config", "command", "steps", "best_step", "validation_videos",
                                               "validation_auc_tuned", "total_wall_time_s", "machine")}
            | {"data": [to_dict(s) for s in exp.sources], "seed": exp.seed}}
    model_config = {**exp.model_config, "pretrained": False}
    results["weights"] = str(zoo.save_model(model.eval(), out / f"{exp.name}.safetensors", exp.model, model_config,
                                            meta))
    if exp.ship and publish:
        ship = Path(exp.ship) if Path(exp.ship).is_absolute() else base / exp.ship
        results["shipped"] = str(zoo.save_model(model, ship, exp.model, model_config, meta, half=exp.ship_half))
    write_json(out / "results.json", results)
    return results


def _register() -> None:
    from siamkit.train.tasks import TASKS

    if "heads" not in TASKS:
        TASKS.register("heads")(run_heads)


_register()
