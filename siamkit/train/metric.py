"""Metric-learning experiments (``task: metric``): train an embedding net on identities, validate, ship.

One YAML describes everything (see ``configs/faces.yaml``): the dataset and its split, the input
preprocessing and augmentation, the model (a ``MODELS`` builder + kwargs), the loss (a ``LOSSES``
builder + kwargs), the P×K sampler, the optimisation (:class:`TrainConfig`), and optionally a zoo
name to ship the trained model under.

A training run never looks at a test split: it reports numbers on a **validation** split carved
from the training side (identity-, writer- or alphabet-disjoint), which is what recipes are picked
on, and the shipped model's distance threshold is calibrated there. Test splits are scored once per
shipped model by ``siamkit eval`` / ``benchmarks/similarity.py`` (:mod:`siamkit.eval.metric.models`).

Training side and validation per ``data.kind``
- ``orl_faces`` / ``image_folder``: the last ``test_identities`` subjects are the test side and
  never read; of the rest, the last ``val_identities`` are validation (verification over all pairs).
- ``omniglot``: the background set; its last ``val_alphabets`` alphabets are validation (random
  20-way within-alphabet one-shot trials, support and query by different drawers, like Lake's).
- ``signatures``: ``train_writers`` only; ``val_writers`` among them are validation (genuine–genuine
  vs genuine–skilled-forgery pairs of each writer).
- ``market1501``: ``bounding_box_train``; its last ``val_identities`` pids are validation (query =
  first image per pid and camera, gallery = the rest; CMC/mAP with same-pid same-camera removal).

``cache_views > 0`` trains on cached features: each training image is augmented ``cache_views``
times (view 0 plain), passed once through the model's frozen part (``LiteBackbone.frozen_part``),
and the steps then run only the trainable tail — the cheap way to fine-tune an ImageNet trunk on CPU.
"""

from __future__ import annotations

import logging
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from siamkit.config import LOSSES, MODELS, from_dict, to_dict
from siamkit.data import identities as ids
from siamkit.data.preprocess import Augment, normalise, prepare
from siamkit.errors import ConfigError
from siamkit.eval.metric.protocols import (
    eer_threshold,
    oneshot_trials,
    plain,
    reid_metrics,
    verification_metrics,
    verification_pairs,
)
from siamkit.train.loader import StepLoader
from siamkit.train.tasks import TASKS
from siamkit.train.trainer import Task, TrainConfig, Trainer
from siamkit.utils.device import resolve_device
from siamkit.utils.io import write_json
from siamkit.utils.progress import progress

log = logging.getLogger("siamkit.train")

KINDS = ("orl_faces", "omniglot", "signatures", "market1501", "image_folder")


@dataclass(frozen=True)
class DataConfig:
    kind: str
    root: str
    input_size: tuple[int, int]
    channels: int = 1
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)
    invert: bool = False
    test_identities: int = 0
    val_identities: int = 0
    train_writers: tuple[str, ...] = ()
    val_writers: tuple[str, ...] = ()
    val_alphabets: int = 0
    val_trials: int = 1000
    val_ways: int = 20
    rotation: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    shift: float = 0.0
    hflip: bool = False
    random_erasing: float = 0.0
    calibration_images: int = 2000


@dataclass(frozen=True)
class ShipConfig:
    name: str
    dir: str = "siamkit/zoo_weights"
    half: bool = True
    task: str = "verification"


@dataclass(frozen=True)
class MetricExperiment:
    name: str
    data: DataConfig
    architecture: str
    loss: dict[str, Any]
    train: TrainConfig
    task: str = "metric"
    model: dict[str, Any] = field(default_factory=dict)
    feature: str = "embedding"
    p: int = 8
    k: int = 4
    eval_batch: int = 256
    cache_views: int = 0
    results: str | None = None
    ship: ShipConfig | None = None


# --------------------------------------------------------------------------- data


@dataclass
class Prepared:
    """In-memory uint8 images at the input size, labels, and protocol-specific extras."""

    images: np.ndarray
    labels: np.ndarray
    extras: dict[str, Any]


def _load(ds: ids.IdentityDataset, cfg: DataConfig, desc: str) -> np.ndarray:
    images = [ds.read(i) for i in progress(range(len(ds)), total=len(ds), desc=f"read {desc}", unit="img")]
    return prepare(images, cfg.input_size, cfg.channels, invert=cfg.invert)


def _disjoint(ds: ids.IdentityDataset, n_held: int, what: str = "test_identities"
              ) -> tuple[ids.IdentityDataset, ids.IdentityDataset]:
    names = ds.identities()
    if not 0 < n_held < len(names):
        raise ConfigError(f"{what} must be in 1..{len(names) - 1} for {ds.name}, got {n_held}.")
    return ds.split_identities(names[:-n_held]), ds.split_identities(names[-n_held:])


def market_query_gallery_indices(pids: np.ndarray, cameras: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Market-style query/gallery of one split: the first image per (pid, camera) is a query."""
    seen: set[tuple[int, int]] = set()
    query = []
    for i, key in enumerate(zip(np.asarray(pids).tolist(), np.asarray(cameras).tolist(), strict=True)):
        if key not in seen:
            seen.add(key)
            query.append(i)
    q = np.array(query, dtype=np.int64)
    return q, np.setdiff1d(np.arange(len(pids)), q)


def _forgeries_as_classes(ds: ids.IdentityDataset) -> ids.IdentityDataset:
    """Training classes for signatures: each writer's genuine set and its forgery set are two identities."""
    return ids.IdentityDataset(
        [ids.IdentityItem(it.source, 2 * it.label + (0 if it.genuine else 1), it.identity, genuine=it.genuine)
         for it in ds.items], True, ds.name)


def load_data(cfg: DataConfig) -> tuple[Prepared, dict[str, Any]]:
    """Training images + the validation material for ``cfg.kind`` (the test side is never read)."""
    if cfg.kind not in KINDS:
        raise ConfigError(f"Unknown data.kind {cfg.kind!r}.", hint=f"Use one of {', '.join(KINDS)}.")
    root = Path(cfg.root)
    validation: dict[str, Any] = {"kind": cfg.kind}
    val = None
    if cfg.kind in ("orl_faces", "image_folder"):
        ds = ids.orl_faces(root) if cfg.kind == "orl_faces" else ids.image_folder(root, grayscale=cfg.channels == 1)
        train, _test = _disjoint(ds, cfg.test_identities)
        if cfg.val_identities:
            train, val = _disjoint(train, cfg.val_identities, "val_identities")
    elif cfg.kind == "omniglot":
        train = ids.omniglot(root, "background")
        if cfg.val_alphabets:
            alphabets = sorted({it.group for it in train.items})
            if not 0 < cfg.val_alphabets < len(alphabets):
                raise ConfigError(f"val_alphabets must be in 1..{len(alphabets) - 1}, got {cfg.val_alphabets}.")
            held = set(alphabets[-cfg.val_alphabets:])
            val = train.subset([i for i, it in enumerate(train.items) if it.group in held])
            train = train.subset([i for i, it in enumerate(train.items) if it.group not in held])
    elif cfg.kind == "signatures":
        ds = ids.signatures(root)
        writers, held = set(cfg.train_writers), set(cfg.val_writers)
        if not writers or not writers < set(ds.identities()):
            raise ConfigError(
                f"data.train_writers must be a proper subset of {ds.identities()}, got {sorted(writers)}."
            )
        if not held <= writers or held == writers:
            raise ConfigError(f"data.val_writers must be a proper subset of train_writers, got {sorted(held)}.")
        train = ds.split_identities(sorted(writers - held))
        if held:
            val = ds.split_identities(sorted(held))
        train = _forgeries_as_classes(train)
    else:  # market1501
        train = ids.market1501(root, "bounding_box_train")
        if cfg.val_identities:
            train, val = _disjoint(train, cfg.val_identities, "val_identities")
    if val is not None:
        validation.update(images=_load(val, cfg, "validation"), labels=val.labels, identities=val.identities(),
                          genuine=np.array([it.genuine for it in val.items]),
                          groups=np.array([it.group for it in val.items]),
                          drawers=val.cameras, cameras=val.cameras, pids=np.array(
                              [int(it.identity) if it.identity.isdigit() else it.label for it in val.items]))
    prepared = Prepared(_load(train, cfg, "train"), train.labels, {"identities": train.identities()})
    return prepared, validation


# --------------------------------------------------------------------------- task


class MetricTask(Task):
    """Embeds a labelled batch and applies a metric loss (the loss may own parameters, e.g. a classifier).

    ``feature``: ``embedding`` (the model's output, normalised if the model normalises) or
    ``pre`` (the un-normalised feature before any BNNeck, as in the BoT recipe).
    """

    def __init__(self, model: torch.nn.Module, loss: torch.nn.Module, feature: str = "embedding",
                 cached: bool = False):
        super().__init__()
        if feature not in ("embedding", "pre"):
            raise ConfigError(f"feature must be 'embedding' or 'pre', got {feature!r}.")
        self.model, self.loss, self.feature, self.cached = model, loss, feature, cached

    def training_step(self, batch):
        from siamkit.train.distributed import all_gather_with_grad

        x, y = batch
        if self.cached:  # x holds frozen-part features: run the trainable tail only
            pre, post = self.model.forward_features(x, cached=True)
            emb = pre if self.feature == "pre" else (
                torch.nn.functional.normalize(post, dim=1) if self.model.normalize else post)
        else:
            emb = self.model(x) if self.feature == "embedding" else self.model.forward_features(x)[0]
        # under DDP each rank holds a slice of the P×K batch: the loss sees the whole batch, and the
        # gathered rows keep their gradient (single process: no-op)
        emb, y = all_gather_with_grad(emb), all_gather_with_grad(y)
        value = self.loss(emb, y)
        stats = getattr(self.loss, "last_stats", {}) or {}
        logs = {k: v for k, v in stats.items() if isinstance(v, (int, float))}
        return value, logs


def random_erasing(image: np.ndarray, rng: np.random.Generator, p: float, area: tuple[float, float] = (0.02, 0.4),
                   ratio: tuple[float, float] = (0.3, 3.3)) -> np.ndarray:
    """Zhong et al.'s random erasing (BoT): with probability ``p`` fill a random rectangle with noise."""
    if p <= 0 or rng.random() >= p:
        return image
    h, w = image.shape[:2]
    for _ in range(10):
        target = rng.uniform(*area) * h * w
        aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1])))
        eh, ew = int(round(np.sqrt(target * aspect))), int(round(np.sqrt(target / aspect)))
        if 0 < eh < h and 0 < ew < w:
            y, x = int(rng.integers(h - eh)), int(rng.integers(w - ew))
            image = image.copy()
            image[y:y + eh, x:x + ew] = rng.integers(0, 256, image[y:y + eh, x:x + ew].shape, dtype=np.uint8)
            return image
    return image


def _augmenter(cfg: DataConfig):
    augment = Augment(cfg.rotation, tuple(cfg.scale), cfg.shift, cfg.hflip,
                      border="constant" if cfg.invert else "replicate")
    return lambda image, rng: random_erasing(augment(image, rng), rng, cfg.random_erasing)


def make_batcher(images: np.ndarray, labels: np.ndarray, cfg: DataConfig):
    augment = _augmenter(cfg)

    def make_batch(indices, rng):
        idx = np.asarray(indices)
        batch = np.stack([augment(images[i], rng) for i in idx])
        return normalise(batch, cfg.mean, cfg.std), torch.from_numpy(labels[idx])

    return make_batch


@torch.no_grad()
def cache_features(model: torch.nn.Module, images: np.ndarray, cfg: DataConfig, views: int, seed: int,
                   batch: int = 64, path: Path | None = None, model_config: Any = None
                   ) -> tuple[torch.Tensor, float]:
    """``views`` augmented copies of every image (view 0 plain) through the model's frozen part: N×V×C×h×w fp16,
    and the seconds computing them took (also when read back from ``path``).

    Saved to ``path`` and reused when it exists for the same images, views, seed, data and model settings
    (a resumed run skips the work).
    """
    key = {"n": len(images), "views": views, "seed": seed, "data": repr(cfg), "model": repr(model_config)}
    if path is not None and path.is_file():
        saved = torch.load(path, weights_only=True)
        if saved.get("key") == repr(key):
            return saved["features"], float(saved.get("seconds", 0.0))
    backbone = model.backbone
    if not hasattr(backbone, "frozen_part"):
        raise ConfigError("cache_views needs a model with a frozen part (architecture embed_lite0).")
    started = time.time()
    backbone.eval()
    augment = _augmenter(cfg)
    rng = np.random.default_rng(seed)
    out = None
    bar = progress(range(views * len(images)), total=views * len(images), desc="cache features", unit="img")
    it = iter(bar)
    for v in range(views):
        for start in range(0, len(images), batch):
            chunk = images[start:start + batch]
            if v:
                chunk = np.stack([augment(im, rng) for im in chunk])
            f = backbone.frozen_part(normalise(chunk, cfg.mean, cfg.std)).half()
            if out is None:
                out = torch.empty((len(images), views, *f.shape[1:]), dtype=torch.float16)
            out[start:start + len(chunk), v] = f
            for _ in range(len(chunk)):
                next(it, None)
    seconds = time.time() - started
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"key": repr(key), "features": out, "seconds": seconds}, path)
    return out, seconds


def make_cached_batcher(features: torch.Tensor, labels: np.ndarray):
    """Batches of cached frozen-part features: a random view of each sampled image."""

    def make_batch(indices, rng):
        idx = np.asarray(indices)
        views = rng.integers(features.shape[1], size=idx.size)
        return features[torch.from_numpy(idx), torch.from_numpy(views)].float(), torch.from_numpy(labels[idx])

    return make_batch


@torch.no_grad()
def embed(model: torch.nn.Module, images: np.ndarray, cfg: DataConfig, batch: int = 256,
          device: str | torch.device = "cpu") -> np.ndarray:
    """Embeddings (float32 numpy) of uint8 images already at the input size."""
    model.eval()
    out = []
    for start in range(0, len(images), batch):
        x = normalise(images[start:start + batch], cfg.mean, cfg.std).to(device)
        out.append(model(x).float().cpu().numpy())
    return np.concatenate(out)


def calibrate_threshold(emb: np.ndarray, labels: np.ndarray, genuine: np.ndarray | None = None) -> float:
    """Distance threshold at the equal-error point of the protocol's pairs of these (non-test) images."""
    return eer_threshold(*verification_pairs(emb, labels, genuine))


def validate(model: torch.nn.Module, exp: MetricExperiment, train: Prepared, validation: dict[str, Any],
             device: str | torch.device = "cpu") -> tuple[dict[str, Any], float]:
    """Validation metrics for ``exp.data.kind`` and the calibrated distance threshold.

    The threshold is the EER point of validation pairs when there is a validation split, else of
    training pairs (``calibration_images`` of them, whole classes for Omniglot).
    """
    cfg, kind = exp.data, validation["kind"]
    if "images" in validation:
        v_emb = embed(model, validation["images"], cfg, exp.eval_batch, device)
        genuine = validation["genuine"] if kind == "signatures" else None
        threshold = calibrate_threshold(v_emb, validation["labels"], genuine)
    else:
        rng = np.random.default_rng(0)
        counts = np.bincount(train.labels)
        order = rng.permutation(counts.size)
        take = order[: max(2, int(np.searchsorted(np.cumsum(counts[order]), cfg.calibration_images)) + 1)]
        if kind == "signatures":  # classes are writer × {genuine, forged}: keep both halves of each writer
            take = np.arange(counts.size)[np.isin(np.arange(counts.size) // 2, take // 2)]
        cal = np.flatnonzero(np.isin(train.labels, take))  # whole classes: every image has positives
        labels, genuine = train.labels[cal], None
        if kind == "signatures":
            labels, genuine = labels // 2, labels % 2 == 0
        threshold = calibrate_threshold(embed(model, train.images[cal], cfg, exp.eval_batch, device), labels, genuine)
        return {"split": "none (threshold calibrated on training identities)"}, threshold
    if kind in ("orl_faces", "image_folder", "signatures"):
        metrics = verification_metrics(*verification_pairs(v_emb, validation["labels"], genuine), threshold)
        metrics["identities"] = validation["identities"]
    elif kind == "omniglot":
        metrics = oneshot_trials(v_emb, validation["labels"], validation["groups"], validation["drawers"],
                                 cfg.val_ways, 1, cfg.val_trials, seed=exp.train.seed)
        metrics.pop("chosen"), metrics.pop("trial_indices")
        metrics["alphabets"] = sorted(set(validation["groups"].tolist()))
    else:  # market1501
        q, g = market_query_gallery_indices(validation["pids"], validation["cameras"])
        metrics = reid_metrics(v_emb[q], v_emb[g], validation["pids"][q], validation["pids"][g],
                               validation["cameras"][q], validation["cameras"][g], rerank=True)
        metrics["identities"] = validation["identities"]
    metrics["split"] = "validation (disjoint from training and test)"
    return metrics, threshold


# --------------------------------------------------------------------------- runner


def build_sampler(exp: MetricExperiment, labels: np.ndarray):
    from siamkit.data.samplers import PKSampler

    # global batches: the StepLoader shards each batch across DDP ranks itself
    return PKSampler(labels, exp.p, exp.k, seed=exp.train.seed, rank=0, world_size=1)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def run_metric(config: dict[str, Any], out_dir: str | Path | None = None, resume: bool = False, command: str = "",
               source: str = "", steps: int | None = None, device: str | None = None,
               publish: bool = False) -> dict[str, Any]:
    """Train, validate, write the results JSON and (optionally) ship the model to the zoo.

    Only ``publish=True`` (``siamkit train --publish``) writes the ``results:`` file and the zoo entry;
    by default everything stays in the run folder. No test split is read here: shipped models are
    scored on their test split by ``benchmarks/similarity.py`` (``siamkit eval --model``).
    """
    import siamkit.nn  # noqa: F401  (registers the model builders)
    from siamkit.train import distributed

    exp = from_dict(MetricExperiment, config, where=source or "experiment")
    if steps is not None:
        exp = MetricExperiment(**{**exp.__dict__, "train": TrainConfig(**{**asdict(exp.train), "steps": steps})})
    distributed.init_from_env(device)
    dev = resolve_device(device)
    out = Path(out_dir or Path("runs") / exp.name)
    started = time.time()
    train, validation = load_data(exp.data)
    torch.manual_seed(exp.train.seed)
    model_cfg = {"in_channels": exp.data.channels, "input_size": list(exp.data.input_size), **exp.model}
    model = MODELS.build(exp.architecture, **model_cfg)
    loss_cfg = dict(exp.loss)
    name = loss_cfg.pop("name", None)
    if name is None:
        raise ConfigError("loss: needs a 'name' (a registered loss).", hint=f"Available: {', '.join(LOSSES.names())}.")
    _fill_classifier(loss_cfg, name, int(train.labels.max()) + 1, model, exp.feature)
    import siamkit.losses.metric  # noqa: F401  (registers the losses)

    loss = LOSSES.build(name, **loss_cfg)
    cache_time = 0.0
    if exp.cache_views:
        features, cache_time = cache_features(model, train.images, exp.data, exp.cache_views, exp.train.seed,
                                  path=out / "feature_cache.pt", model_config=(exp.architecture, model_cfg))
        batcher = make_cached_batcher(features, train.labels)
    else:
        batcher = make_batcher(train.images, train.labels, exp.data)
    task = MetricTask(model, loss, exp.feature, cached=exp.cache_views > 0)
    loader = StepLoader(build_sampler(exp, train.labels), batcher, seed=exp.train.seed)
    trainer = Trainer(task, loader, exp.train, out_dir=out, device=dev)
    trainer.run(resume=resume)
    if not distributed.is_main():
        return {}
    eval_started = time.time()
    metrics, threshold = validate(model, exp, train, validation, dev)
    results = {
        "experiment": exp.name,
        "validation": metrics,
        "threshold": threshold,
        "train_wall_time_s": round(trainer.wall_time + cache_time, 1),
        "feature_cache_wall_time_s": round(cache_time, 1),
        "validation_wall_time_s": round(time.time() - eval_started, 1),
        "total_wall_time_s": round(time.time() - started, 1),
        "final_train_loss": trainer.mean_loss(50),
        "steps": trainer.step,
        "training_images": len(train.images),
        "training_identities": len(train.extras["identities"]),
        "device": _device_name(dev),
        "command": command,
        "config": to_dict(exp),
        "torch": torch.__version__,
    }
    write_json(out / "results.json", results)
    if exp.results and publish:
        write_json(exp.results, results)
    if exp.ship is not None and publish:
        results["shipped"] = str(ship(model, exp, model_cfg, threshold, results))
    return results


def _fill_classifier(loss_cfg: dict[str, Any], name: str, num_classes: int, model, feature: str) -> None:
    """ID-style losses need the class count and feature width: fill them in from the data and model."""
    width = model.project.out_features if isinstance(model.project, torch.nn.Linear) else model.dim
    if name == "id":
        loss_cfg.setdefault("num_classes", num_classes)
        loss_cfg.setdefault("embedding_dim", width)
    if name == "combined":
        for term in loss_cfg.get("terms", []):
            if term.get("name") == "id":
                term.setdefault("num_classes", num_classes)
                term.setdefault("embedding_dim", width)


def ship(model: torch.nn.Module, exp: MetricExperiment, model_cfg: dict[str, Any], threshold: float,
         results: dict[str, Any]) -> Path:
    """Save the embedding net to the zoo with the sidecar meta ``siamkit verify`` needs."""
    from siamkit.zoo import save_model

    assert exp.ship is not None
    meta = {
        "task": exp.ship.task,
        "input_size": list(exp.data.input_size),
        "channels": exp.data.channels,
        "invert": exp.data.invert,
        "normalize": {"mean": list(exp.data.mean), "std": list(exp.data.std)},
        "distance": "euclidean",
        "threshold": float(threshold),
        "threshold_rule": "same identity when distance <= threshold (EER point on pairs of "
        + ("validation identities" if "identities" in results["validation"] else "training identities") + ")",
        "validation": plain(results["validation"]),
        "recipe": {
            "config": to_dict(exp), "command": results["command"], "train_wall_time_s": results["train_wall_time_s"],
            "device": results["device"], "steps": results["steps"], "seed": exp.train.seed,
            "data": exp.data.root, "training_images": results["training_images"],
            "training_identities": results["training_identities"],
        },
    }
    # ship the full weights: the sidecar builds the net without fetching the ImageNet package again
    model_cfg = {**model_cfg, "pretrained": False} if "pretrained" in _builder_params(exp.architecture) else model_cfg
    return save_model(model.cpu(), Path(exp.ship.dir) / exp.ship.name, exp.architecture, model_cfg, meta,
                      half=exp.ship.half)


def _builder_params(architecture: str) -> set[str]:
    import inspect

    return set(inspect.signature(MODELS.get(architecture)).parameters)


TASKS.register("metric")(run_metric)
