"""Train a point-based Siamese tracker head on a frozen pretrained trunk, distilled from a NanoTrack teacher.

The recipe of ``configs/nanotrack_lite0_train.yaml`` (task ``distill``), in three resumable stages:

1. **Cache.** Training pairs are cut from real sequences (:class:`~siamkit.data.pairs.PairDataset`:
   template and search frames up to ``frame_range`` apart, shift/scale/blur/colour/flip augmentation,
   negative pairs, synthetic paste pairs). For each pair the frozen trunk's features, the ground-truth
   point targets (SiamBAN ellipse labels) and the teacher's maps on the same crops are stored in chunk
   files. The cached part of the trunk is frozen, so its features are exact and every later epoch costs
   only the head (and the last ``trainable_blocks`` of the trunk, when the recipe trains them).
2. **Train.** The head learns from the ground truth (balanced cross-entropy, IoU loss on positive
   points) plus the teacher's soft targets (cross-entropy to its target probability on every point it
   covers; IoU loss to its boxes where it is confident), weighted by ``loss_weights``.
3. **Select.** Every ``val_every`` steps the whole tracker runs one-pass evaluation on the validation
   videos (split by video from the training side); the best step is kept, and the tracker's window,
   penalty and learning rate are then picked by a grid on the same videos. The test clips are never used.

The teacher is NanoTrack (v2 or v3) run from its ONNX graphs in onnxruntime. Its grid of points is
centred like the student's; a smaller teacher grid (v3: 15×15) covers the student's (16×16) except the
first row and column, which the teacher terms then leave out.
"""

from __future__ import annotations

import itertools
import json
import math
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from siamkit.config import MODELS, from_dict, to_dict
from siamkit.data.pairs import PairConfig, PairDataset
from siamkit.errors import ConfigError, DataError
from siamkit.losses.tracking import POSITIVE, PointTargets, ban_loc_loss, linear_iou_losses, select_cross_entropy
from siamkit.train.tracking import SourceConfig, _collate_aug, build_source
from siamkit.utils.io import atomic_write, write_json
from siamkit.utils.onnx import dynamic_spatial_dims
from siamkit.utils.progress import progress


@dataclass(frozen=True)
class TeacherConfig:
    """A NanoTrack teacher as two ONNX graphs (backbone, head); ``threads`` for onnxruntime."""

    backbone: str
    head: str
    threads: int = 1


@dataclass(frozen=True)
class DistillExperiment:
    """A ``task: distill`` training YAML."""

    task: str
    name: str
    model: str
    teacher: TeacherConfig
    sources: tuple[SourceConfig, ...]
    validation: str  # dataset spec of the validation videos, e.g. "otb:../shared/data/tracking_train"
    validation_videos: tuple[str, ...]
    model_config: dict[str, Any] = field(default_factory=dict)
    pairs: PairConfig = field(default_factory=PairConfig)
    cache: str = ""  # folder of the feature cache (shared by runs with the same data); default OUT/cache
    cache_pairs: int = 20000
    cache_chunk: int = 500
    trainable_blocks: int = 0  # last trunk blocks trained too (their inputs are cached); 0: head only
    trunk_lr_mult: float = 0.1
    loss_weights: dict[str, float] = field(default_factory=lambda: {"cls": 1.0, "loc": 1.0, "kd_cls": 1.0,
                                                                    "kd_loc": 1.0})
    kd_confidence: float = 0.5  # teacher boxes are targets where its target probability exceeds this
    batch_size: int = 64
    steps: int = 3000
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    val_every: int = 500
    checkpoint_every: int = 100
    tracker: dict[str, float] = field(default_factory=dict)  # NanoTrackConfig fields used while validating
    tune: dict[str, tuple[float, ...]] = field(default_factory=dict)  # grid over NanoTrackConfig fields
    seed: int = 0
    ship: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


# =========================================================================== teacher


class OnnxTeacher:
    """NanoTrack's maps on given crops, placed on a student grid of ``student_size``² points."""

    def __init__(self, cfg: TeacherConfig, student_size: int):
        import onnx
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = cfg.threads
        providers = ["CPUExecutionProvider"]
        for path in (cfg.backbone, cfg.head):
            if not Path(path).is_file():
                raise DataError(f"Teacher graph {path} not found.", hint="Point teacher.backbone/head at ONNX files.")
        self.backbone = ort.InferenceSession(dynamic_spatial_dims(onnx.load(cfg.backbone)), options,
                                             providers=providers)
        self.head = ort.InferenceSession(cfg.head, options, providers=providers)
        self.student_size = student_size
        self.teacher_size = int(self.head.get_outputs()[0].shape[-1])
        self.offset = student_size // 2 - self.teacher_size // 2
        if self.offset < 0 or self.offset + self.teacher_size > student_size:
            raise ConfigError(f"A {self.teacher_size}² teacher grid does not fit a {student_size}² student grid.")
        self.mask = np.zeros((student_size, student_size), np.float32)
        self.mask[self._window()] = 1

    def _window(self) -> tuple[slice, slice]:
        span = slice(self.offset, self.offset + self.teacher_size)
        return span, span

    def maps(self, z: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """B×3×127×127 and B×3×255×255 BGR 0–255 crops → target probability B×S×S, (l,t,r,b) B×4×S×S."""
        n, s = len(z), self.student_size
        prob = np.zeros((n, s, s), np.float32)
        loc = np.zeros((n, 4, s, s), np.float32)
        rows, cols = self._window()
        for i in range(n):
            (zf,) = self.backbone.run(None, {"input": z[i : i + 1].astype(np.float32)})
            (xf,) = self.backbone.run(None, {"input": x[i : i + 1].astype(np.float32)})
            cls, box = self.head.run(None, {"input1": zf, "input2": xf})
            prob[i, rows, cols] = torch.softmax(torch.from_numpy(cls[0]), dim=0)[1].numpy()
            loc[i, :, rows, cols] = box[0]
        return prob, loc


# =========================================================================== cache


GROUND_TRUTH_KEYS = ("zf", "xf", "label_cls", "label_loc")
CACHE_KEYS = GROUND_TRUTH_KEYS + ("teacher_prob", "teacher_loc")  # a cache built with a teacher


def _chunk_path(folder: Path, index: int) -> Path:
    return folder / f"chunk_{index:04d}.pt"


@torch.no_grad()
def build_cache(exp: DistillExperiment, model: nn.Module, folder: Path, base: Path) -> list[Path]:
    """Write the missing chunk files of the feature cache (an interrupted build resumes at its chunk)."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = [build_source(s, base) for s in exp.sources]
    size = model.score_size_for(exp.pairs.search_size)
    targets = PointTargets(score_size=size, search_size=exp.pairs.search_size, stride=model.stride)
    dataset = PairDataset(sources, exp.pairs, targets)
    teacher = OnnxTeacher(exp.teacher, size) if exp.teacher is not None else None
    if teacher is not None:
        np.save(folder / "teacher_mask.npy", teacher.mask)
    split = cache_split(model, exp)
    # What a chunk's content depends on (its index seeds its pairs; cache_pairs only says how many chunks).
    info = {"split_block": split, "cache_chunk": exp.cache_chunk, "seed": exp.seed}
    info_path = folder / "cache_info.json"
    if info_path.exists() and json.loads(info_path.read_text()) != info:
        raise ConfigError(f"The feature cache {folder} was built with other settings: {info_path.read_text()}.",
                          hint="Point 'cache:' at a new folder (or delete this one).")
    write_json(info_path, info)
    chunks = math.ceil(exp.cache_pairs / exp.cache_chunk)
    paths = [_chunk_path(folder, c) for c in range(chunks)]
    todo = [c for c, p in enumerate(paths) if not p.exists()]
    trunk = model.backbone.eval()
    bar = progress(total=len(todo) * exp.cache_chunk, desc="feature cache", unit="pair")
    for c in todo:
        rng = np.random.default_rng([exp.seed, c])
        start = c * exp.cache_chunk
        stop = min(start + exp.cache_chunk, exp.cache_pairs)
        dataset.set_epoch(start // len(dataset))
        parts: dict[str, list] = {k: [] for k in (CACHE_KEYS if teacher is not None else GROUND_TRUTH_KEYS)}
        for lo in range(start, stop, 16):
            idx = [i % len(dataset) for i in range(lo, min(lo + 16, stop))]
            batch = dataset.make_batch(idx, rng)
            parts["zf"].append(trunk.run_blocks(batch["template"], 0, split).half())
            parts["xf"].append(trunk.run_blocks(batch["search"], 0, split).half())
            parts["label_cls"].append(batch["label_cls"].to(torch.int8))
            parts["label_loc"].append(batch["label_loc"].half())
            if teacher is not None:
                prob, loc = teacher.maps(batch["template"].numpy(), batch["search"].numpy())
                parts["teacher_prob"].append(torch.from_numpy(prob).half())
                parts["teacher_loc"].append(torch.from_numpy(loc).half())
            bar.update(len(idx))
        chunk = {k: torch.cat(v) for k, v in parts.items()}
        atomic_write(paths[c], lambda tmp, chunk=chunk: torch.save(chunk, tmp))
    bar.close()
    return paths


def cache_split(model: nn.Module, exp: DistillExperiment) -> int:
    """Index of the first trunk block the cache does not run (it holds the features entering it): the first
    that trains, or for a model reading several trunk levels, the first after its earliest level."""
    blocks = len(model.backbone.body._blocks)
    if not 0 <= exp.trainable_blocks < blocks:
        raise ConfigError(f"trainable_blocks must be in 0…{blocks - 1}, not {exp.trainable_blocks}.")
    return min(blocks - exp.trainable_blocks, getattr(model, "cache_block", blocks))


def trainable_prefixes(model: nn.Module, split: int) -> tuple[str, ...]:
    """State-dict prefixes of what training changes: the head and the trunk blocks from ``split`` on."""
    blocks = len(model.backbone.body._blocks)
    return ("head.",) + tuple(f"backbone.body._blocks.{i}." for i in range(split, blocks))


def trainable_state(model: nn.Module, split: int) -> dict[str, torch.Tensor]:
    prefixes = trainable_prefixes(model, split)
    return {k: v for k, v in model.state_dict().items() if k.startswith(prefixes)}


def load_trainable_state(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Load what :func:`trainable_state` saved; any key the model lacks is an error."""
    unexpected = model.load_state_dict(dict(state), strict=False).unexpected_keys
    if unexpected:
        raise ConfigError(f"Checkpoint keys not in the model: {', '.join(unexpected[:5])}.")


class CachedPairs:
    """The whole cache in memory (float16), served as random float32 batches.

    ``has_teacher`` says whether the cache holds the teacher's maps (and ``mask``, the points it covers).
    """

    def __init__(self, paths: Sequence[Path]):
        chunks = [torch.load(p, weights_only=True) for p in paths]
        sizes = sorted({tuple(c["label_cls"].shape[1:]) for c in chunks})
        if len(sizes) > 1:  # chunks written by recipes with other score maps (a reused folder)
            raise ConfigError(f"The feature cache {Path(paths[0]).parent} mixes chunks of score-map sizes {sizes}.",
                              hint="Delete the chunks of one size, or point 'cache:' at a new folder.")
        self.has_teacher = all("teacher_prob" in c for c in chunks)
        keys = CACHE_KEYS if self.has_teacher else GROUND_TRUTH_KEYS
        self.data = {k: torch.cat([c[k] for c in chunks]) for k in keys}
        self.size = len(self.data["zf"])
        mask = Path(paths[0]).parent / "teacher_mask.npy"
        self.mask = torch.from_numpy(np.load(mask)) if self.has_teacher else None

    def batch(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {k: v[index] for k, v in self.data.items()}
        for k, v in out.items():
            out[k] = v.long() if k == "label_cls" else v.float()
        return out


# =========================================================================== losses


def distill_losses(out: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor], mask: torch.Tensor,
                   confidence: float = 0.5) -> dict[str, torch.Tensor]:
    """Ground-truth terms (``cls``, ``loc``) and teacher terms (``kd_cls``, ``kd_loc``).

    ``kd_cls`` is the cross-entropy from the teacher's target probability to the student's on every
    point the teacher covers (``mask``); ``kd_loc`` the IoU loss to the teacher's (l, t, r, b) on the
    points where the teacher's probability exceeds ``confidence``, weighted by that probability.
    """
    cls, loc = out["cls"], out["loc"]
    terms = {
        "cls": select_cross_entropy(cls, batch["label_cls"]),
        "loc": ban_loc_loss(loc, batch["label_loc"], batch["label_cls"]),
    }
    logp = F.log_softmax(cls, dim=1)  # B×2×S×S
    target = batch["teacher_prob"]
    cover = mask.to(cls.dtype).expand_as(target)
    ce = -(target * logp[:, 1] + (1 - target) * logp[:, 0])
    terms["kd_cls"] = (ce * cover).sum() / cover.sum().clamp(min=1)
    sure = (target > confidence) & (cover > 0)
    if sure.any():
        pred = loc.permute(0, 2, 3, 1)[sure]
        goal = batch["teacher_loc"].permute(0, 2, 3, 1)[sure]
        weight = target[sure]
        terms["kd_loc"] = (linear_iou_losses(pred, goal) * weight).sum() / weight.sum()
    else:
        terms["kd_loc"] = loc.sum() * 0
    return terms


def positive_fraction(batch: Mapping[str, torch.Tensor]) -> float:
    return float((batch["label_cls"] == POSITIVE).float().mean())


# =========================================================================== validation


def validation_sequences(exp: DistillExperiment, base: Path) -> list[Any]:
    """The validation videos (a by-video split of the training side), opened once."""
    from siamkit.data.sequences import open_dataset

    kind, _, path = exp.validation.partition(":")
    spec = f"{kind}:{base / path}" if path and not Path(path).is_absolute() else exp.validation
    dataset = open_dataset(spec)
    known = set(dataset.names) if hasattr(dataset, "names") else {s.name for s in dataset}
    missing = sorted(set(exp.validation_videos) - known)
    if missing:
        raise DataError(f"Validation videos not in {exp.validation}: {', '.join(missing)}.")
    return [dataset[name] for name in exp.validation_videos]


def ope_auc(tracker: Any, sequences: Sequence[Any]) -> float:
    """Mean success AUC of ``tracker`` on ``sequences`` (one-pass evaluation)."""
    from siamkit.eval.tracking.ope import aggregate, score_dataset_sequence
    from siamkit.eval.tracking.runner import run_ope

    scores = [score_dataset_sequence(run_ope(tracker, seq)["boxes"], seq) for seq in sequences]
    return float(aggregate(scores)["success_auc"])


def tracking_auc(model: nn.Module, sequences: Sequence[Any], options: Mapping[str, float]) -> float:
    """Mean success AUC of the NanoTrack tracker over ``model`` on ``sequences``."""
    from siamkit.trackers.nanotrack import NanoTrackConfig, NanoTrackTracker

    return ope_auc(NanoTrackTracker(model.eval(), NanoTrackConfig(**options), device="cpu"), sequences)


def tune_settings(score: Callable[[dict[str, Any]], float], base: Mapping[str, Any],
                  grid: Mapping[str, Sequence[Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Grid search of tracker settings, each scored by ``score(settings)`` on the validation videos
    → (best settings, every trial)."""
    names = sorted(grid)
    trials = []
    for values in progress(list(itertools.product(*(grid[n] for n in names))), desc="tune", unit="setting"):
        options = {**base, **dict(zip(names, values, strict=True))}
        trials.append({"options": options, "auc": score(options)})
    best = max(trials, key=lambda t: t["auc"])
    return dict(best["options"]), trials


# =========================================================================== training


def _lr_at(step: int, exp: DistillExperiment) -> float:
    """Linear warm-up then cosine decay to 2 % of ``lr``."""
    if step < exp.warmup_steps:
        return exp.lr * (0.1 + 0.9 * step / max(1, exp.warmup_steps))
    t = (step - exp.warmup_steps) / max(1, exp.steps - exp.warmup_steps)
    return exp.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    # Plain tensors and numbers only, so that resuming can load it with weights_only=True.
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def train_steps(model: nn.Module, optimizer: torch.optim.Optimizer, exp: Any, out: Path,
                step_loss: Callable[[int, torch.Generator], tuple[torch.Tensor, Mapping[str, torch.Tensor]]],
                validate: Callable[[], float], trained: Callable[[], dict[str, torch.Tensor]],
                load_trained: Callable[[Mapping[str, torch.Tensor]], None], resume: bool = False,
                steps: int | None = None) -> dict[str, Any]:
    """The resumable loop of the cached recipes (distillation and the tracker heads).

    Each step sets the warm-up/cosine learning rate (times a group's ``lr_mult``), seeds a generator from the
    step number alone (so a resumed run draws the same batches), takes ``step_loss(step, generator)`` → (loss,
    terms) and a clipped AdamW step. Every ``val_every`` steps ``validate()`` scores the model and the best step's
    ``trained()`` state goes to ``out/best.pt``; every ``checkpoint_every`` steps ``out/checkpoint.pt`` holds
    everything a resume needs, as plain tensors. The best step's weights end up in ``model``.
    """
    steps = exp.steps if steps is None else int(steps)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    ckpt_path, best_path = out / "checkpoint.pt", out / "best.pt"
    state = {"step": 0, "history": [], "validation": [], "best_auc": -1.0, "best_step": -1}
    if resume and ckpt_path.exists():
        saved = torch.load(ckpt_path, weights_only=True)
        load_trained(saved["trained"])
        optimizer.load_state_dict(saved["optimizer"])
        state = saved["state"]
    generator = torch.Generator()
    bar = progress(total=steps, desc=f"train {exp.name}", unit="step")
    bar.update(state["step"])
    started = time.perf_counter()
    while state["step"] < steps:
        step = state["step"]
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, exp) * group.get("lr_mult", 1.0)
        model.train()
        generator.manual_seed(exp.seed * 1_000_003 + step)  # batches depend on the step only: exact resume
        loss, terms = step_loss(step, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 10.0)
        optimizer.step()
        state["step"] = step + 1
        state["history"].append({"step": step + 1, "loss": float(loss.detach()),
                                 **{k: float(v.detach()) for k, v in terms.items()}})
        bar.update(1)
        bar.set_postfix(loss=f"{state['history'][-1]['loss']:.3f}")
        done = state["step"] == steps
        if state["step"] % exp.val_every == 0 or done:
            auc = validate()
            state["validation"].append({"step": state["step"], "auc": auc})
            if auc > state["best_auc"]:
                state["best_auc"], state["best_step"] = auc, state["step"]
                _save_checkpoint(best_path, {"trained": trained(), "step": state["step"]})
        if state["step"] % exp.checkpoint_every == 0 or done:
            _save_checkpoint(ckpt_path, {"trained": trained(), "optimizer": optimizer.state_dict(), "state": state})
    bar.close()
    load_trained(torch.load(best_path, weights_only=True)["trained"])
    state["this_run_wall_time_s"] = round(time.perf_counter() - started, 1)
    return state


def train_on_cache(model: nn.Module, cache: CachedPairs, exp: DistillExperiment, out: Path,
                   sequences: Sequence[Any], resume: bool = False, steps: int | None = None) -> dict[str, Any]:
    """Train the head (and the last ``trainable_blocks`` of the trunk) on the cache, validating on
    ``sequences``; the best step's weights end up in ``model`` and in ``out/best.pt``."""
    split = cache_split(model, exp)
    start = split if exp.trainable_blocks else None
    trunk_params = [p for b in model.backbone.body._blocks[split:] for p in b.parameters() if p.requires_grad]
    groups = [{"params": list(model.head.parameters()), "lr_mult": 1.0}]
    if trunk_params:
        groups.append({"params": trunk_params, "lr_mult": exp.trunk_lr_mult})
    optimizer = torch.optim.AdamW(groups, lr=exp.lr, weight_decay=exp.weight_decay)
    weights = {k: float(v) for k, v in exp.loss_weights.items()}

    def step_loss(step: int, generator: torch.Generator):
        batch = cache.batch(torch.randint(cache.size, (exp.batch_size,), generator=generator))
        terms = distill_losses(model.head_maps(batch["zf"], batch["xf"], start), batch, cache.mask,
                               exp.kd_confidence)
        return sum(weights.get(k, 0.0) * v for k, v in terms.items()), terms

    return train_steps(model, optimizer, exp, out, step_loss, lambda: tracking_auc(model, sequences, exp.tracker),
                       lambda: trainable_state(model, split), lambda state: load_trainable_state(model, state),
                       resume, steps)


def run_folders(exp: Any, out_dir: str | Path | None) -> tuple[Path, Path, Path]:
    """(base, run folder, cache folder) of a cached recipe: paths in the YAML are relative to the working
    directory; the run folder (default ``runs/<name>``) is created; the cache defaults to ``<run>/cache``."""
    base = Path.cwd()
    out = Path(out_dir) if out_dir is not None else base / "runs" / exp.name
    out.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(exp.cache) if exp.cache else out / "cache"
    return base, out, cache_dir if cache_dir.is_absolute() else base / cache_dir


def result_record(exp: Any, state: Mapping[str, Any], trials: Sequence[Mapping[str, Any]], cache_time: float,
                  started: float, **fields: Any) -> dict[str, Any]:
    """The results summary both cached recipes write (``results.json``); ``fields`` add recipe-specific keys."""
    return {
        "experiment": exp.name,
        **fields,
        "steps": state["step"],
        "best_step": state["best_step"],
        "validation_auc_at_best_step": state["best_auc"],
        "validation": state["validation"],
        "validation_videos": list(exp.validation_videos),
        "tuning": list(trials),
        "validation_auc_tuned": max((t["auc"] for t in trials), default=state["best_auc"]),
        "cache_pairs": exp.cache_pairs,
        "cache_build_s": round(cache_time, 1),
        "total_wall_time_s": round(time.perf_counter() - started, 1),
        "machine": f"{platform.machine()} {platform.processor()}, {torch.get_num_threads()} torch threads",
        "final_losses": state["history"][-1] if state["history"] else None,
    }


def run_distill(config: Mapping[str, Any], out_dir: str | Path | None = None, resume: bool = False,
                command: str = "", source: str = "", steps: int | None = None, device: str | None = None,
                publish: bool = False, **_: Any) -> dict[str, Any]:
    """Cache → train → select → tune, as the module docstring says; ships only when ``publish`` is asked."""
    from siamkit import zoo

    zoo._ensure_registered()
    exp = from_dict(DistillExperiment, _collate_aug(config), where=source or "distill experiment")
    if device not in (None, "cpu"):
        raise ConfigError("The distillation recipe runs on the CPU (its teacher runs in onnxruntime).")
    base, out, cache_dir = run_folders(exp, out_dir)
    torch.manual_seed(exp.seed)
    model = MODELS.build(exp.model, **{**exp.model_config, "pretrained": True})
    started = time.perf_counter()
    paths = build_cache(exp, model, cache_dir, base)
    cache_time = time.perf_counter() - started
    sequences = validation_sequences(exp, base)
    cache = CachedPairs(paths)
    if not cache.has_teacher:
        raise ConfigError(f"The feature cache {cache_dir} holds no teacher maps.",
                          hint="Point 'cache:' at a folder of its own (the distillation builds it with the teacher).")
    state = train_on_cache(model, cache, exp, out, sequences, resume=resume, steps=steps)
    if exp.tune:
        tuned, trials = tune_settings(lambda o: tracking_auc(model, sequences, o), exp.tracker, exp.tune)
    else:
        tuned, trials = dict(exp.tracker), []
    results = result_record(exp, state, trials, cache_time, started, config=source, command=command, tracker=tuned,
                            loss_weights=dict(exp.loss_weights))
    write_json(out / "results.json", results)
    weights_path = out / f"{exp.name}.safetensors"
    meta = {**exp.meta, "task": "tracking", "tracker_settings": tuned,
            "recipe": {k: results[k] for k in ("config", "command", "steps", "best_step", "validation_videos",
                                               "validation_auc_tuned", "total_wall_time_s", "machine")}
            | {"data": [to_dict(s) for s in exp.sources], "seed": exp.seed, "teacher": to_dict(exp.teacher)}}
    model_config = {**exp.model_config, "pretrained": False}
    zoo.save_model(model.eval(), weights_path, exp.model, model_config, meta, half=False)
    results["weights"] = str(weights_path)
    if exp.ship and publish:
        ship = Path(exp.ship) if Path(exp.ship).is_absolute() else base / exp.ship
        results["shipped"] = str(zoo.save_model(model, ship, exp.model, model_config, meta, half=False))
    write_json(out / "results.json", results)
    return results


def _register() -> None:
    from siamkit.train.tasks import TASKS

    if "distill" not in TASKS:
        TASKS.register("distill")(run_distill)


_register()
