"""Metric-learning experiments (``task: metric``): train an embedding net on identities, evaluate, ship.

One YAML describes everything (see ``configs/orl_faces.yaml``): the dataset and its split, the
input preprocessing and augmentation, the model (a ``MODELS`` builder + kwargs), the loss (a
``LOSSES`` builder + kwargs), the P×K sampler, the optimisation (:class:`TrainConfig`), the
protocol to evaluate with, and optionally a zoo name to ship the trained model under.

Protocols (``data.kind``)
- ``orl_faces``: the last ``test_identities`` subjects are held out; verification over all
  pairs of their images (AUC, EER, TAR@FAR, k-fold accuracy, accuracy at the threshold
  calibrated on the training subjects' pairs).
- ``omniglot``: train on the background set only; Lake's 20-way within-alphabet one-shot runs.
- ``signatures``: train on some writers, test genuine–genuine vs genuine–skilled-forgery pairs
  of the other writers.
- ``market1501``: train on ``bounding_box_train``; query vs gallery CMC/mAP (same-pid
  same-camera removal), with and without k-reciprocal re-ranking, beside an HSV colour histogram.
- ``image_folder``: generic; the last ``test_identities`` folders are held out (verification).
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
from siamkit.errors import ConfigError
from siamkit.experiments.preprocess import Augment, normalise, prepare
from siamkit.train.loader import StepLoader
from siamkit.train.tasks import TASKS
from siamkit.train.trainer import Task, TrainConfig, Trainer
from siamkit.utils.io import write_json
from siamkit.utils.progress import progress

log = logging.getLogger("siamkit.experiments")

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
    rotation: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    shift: float = 0.0
    hflip: bool = False
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
    out = prepare(images, cfg.input_size, cfg.channels)
    return 255 - out if cfg.invert else out


def _disjoint(ds: ids.IdentityDataset, n_test: int) -> tuple[ids.IdentityDataset, ids.IdentityDataset]:
    names = ds.identities()
    if not 0 < n_test < len(names):
        raise ConfigError(f"test_identities must be in 1..{len(names) - 1} for {ds.name}, got {n_test}.")
    return ds.split_identities(names[:-n_test]), ds.split_identities(names[-n_test:])


def load_data(cfg: DataConfig) -> tuple[Prepared, dict[str, Any]]:
    """Training images + the evaluation material for ``cfg.kind``."""
    if cfg.kind not in KINDS:
        raise ConfigError(f"Unknown data.kind {cfg.kind!r}.", hint=f"Use one of {', '.join(KINDS)}.")
    root = Path(cfg.root)
    evaluation: dict[str, Any] = {"kind": cfg.kind}
    if cfg.kind in ("orl_faces", "image_folder"):
        ds = ids.orl_faces(root) if cfg.kind == "orl_faces" else ids.image_folder(root, grayscale=cfg.channels == 1)
        train, test = _disjoint(ds, cfg.test_identities)
        if cfg.val_identities:  # held out from the gradient, used only to calibrate the threshold
            train, val = _disjoint(train, cfg.val_identities)
            evaluation["calibration"] = (_load(val, cfg, "val"), val.labels, val.identities())
        evaluation.update(images=_load(test, cfg, "test"), labels=test.labels, identities=test.identities())
    elif cfg.kind == "omniglot":
        train = ids.omniglot(root, "background")
        runs = ids.omniglot_runs(root)
        evaluation["runs"] = [
            (run.name, _prep_raw(run.support, cfg), _prep_raw(run.queries, cfg), run.answers) for run in runs
        ]
    elif cfg.kind == "signatures":
        ds = ids.signatures(root)
        writers = set(cfg.train_writers)
        if not writers or not writers < set(ds.identities()):
            raise ConfigError(
                f"data.train_writers must be a proper subset of {ds.identities()}, got {sorted(writers)}."
            )
        train = ds.split_identities(sorted(writers))
        test = ds.split_identities([w for w in ds.identities() if w not in writers])
        # training classes: each writer's genuine set and its forgery set are different identities
        train = ids.IdentityDataset(
            [ids.IdentityItem(it.source, 2 * it.label + (0 if it.genuine else 1), it.identity, genuine=it.genuine)
             for it in train.items], True, train.name)
        evaluation.update(images=_load(test, cfg, "test"), labels=test.labels,
                          genuine=np.array([it.genuine for it in test.items]), identities=test.identities())
    else:  # market1501
        train = ids.market1501(root, "bounding_box_train")
        query, gallery = ids.market1501(root, "query"), ids.market1501(root, "bounding_box_test")
        evaluation.update(
            query=_load(query, cfg, "query"), gallery=_load(gallery, cfg, "gallery"),
            q_pids=ids.pids(query), g_pids=ids.pids(gallery), q_cams=query.cameras, g_cams=gallery.cameras,
            raw_query=[query.read(i) for i in range(len(query))],
            raw_gallery=[gallery.read(i) for i in range(len(gallery))],
        )
    prepared = Prepared(_load(train, cfg, "train"), train.labels, {"identities": train.identities()})
    return prepared, evaluation


def _prep_raw(images: np.ndarray, cfg: DataConfig) -> np.ndarray:
    out = prepare(list(images), cfg.input_size, cfg.channels)
    return 255 - out if cfg.invert else out


# --------------------------------------------------------------------------- task


class MetricTask(Task):
    """Embeds a labelled batch and applies a metric loss (the loss may own parameters, e.g. a classifier).

    ``feature``: ``embedding`` (the model's output, normalised if the model normalises) or
    ``pre`` (the un-normalised feature before any BNNeck, as in the BoT recipe).
    """

    def __init__(self, model: torch.nn.Module, loss: torch.nn.Module, feature: str = "embedding"):
        super().__init__()
        if feature not in ("embedding", "pre"):
            raise ConfigError(f"feature must be 'embedding' or 'pre', got {feature!r}.")
        self.model, self.loss, self.feature = model, loss, feature

    def training_step(self, batch):
        from siamkit.train.distributed import all_gather_with_grad

        x, y = batch
        emb = self.model(x) if self.feature == "embedding" else self.model.forward_features(x)[0]
        # under DDP each rank holds a slice of the P×K batch: the loss sees the whole batch, and the
        # gathered rows keep their gradient (single process: no-op)
        emb, y = all_gather_with_grad(emb), all_gather_with_grad(y)
        value = self.loss(emb, y)
        stats = getattr(self.loss, "last_stats", {}) or {}
        logs = {k: v for k, v in stats.items() if isinstance(v, (int, float))}
        return value, logs


def make_batcher(images: np.ndarray, labels: np.ndarray, cfg: DataConfig):
    augment = Augment(cfg.rotation, tuple(cfg.scale), cfg.shift, cfg.hflip,
                      border="constant" if cfg.invert else "replicate")

    def make_batch(indices, rng):
        idx = np.asarray(indices)
        batch = np.stack([augment(images[i], rng) for i in idx])
        return normalise(batch, cfg.mean, cfg.std), torch.from_numpy(labels[idx])

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


def pair_distances(emb: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None):
    """Euclidean distances and same-identity flags of all unordered pairs (i < j), optionally masked."""
    e = torch.from_numpy(emb).double()
    d = torch.cdist(e, e).numpy()
    i, j = np.triu_indices(len(emb), k=1)
    same = labels[i] == labels[j]
    keep = np.ones_like(same) if mask is None else mask[i, j]
    return d[i, j][keep], same[keep]


def calibrate_threshold(emb: np.ndarray, labels: np.ndarray) -> float:
    """Distance threshold at the equal-error point of the given (training-identity) pairs."""
    from siamkit.eval.metric.verification import evaluate_verification

    d, same = pair_distances(emb, labels)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return float(evaluate_verification(-d, same)["eer_threshold"] * -1.0)


def _verification_metrics(d: np.ndarray, same: np.ndarray, threshold: float) -> dict[str, Any]:
    import warnings

    from siamkit.eval.metric.verification import evaluate_verification, kfold_verification

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ver = evaluate_verification(-d, same, far_targets=(1e-3, 1e-2, 1e-1))
        kfold = kfold_verification(-d, same, folds=10)
    decided = d <= threshold
    far = float((decided & ~same).sum() / max(1, (~same).sum()))
    frr = float((~decided & same).sum() / max(1, same.sum()))
    return {
        "auc": ver["auc"], "eer": ver["eer"], "tar_at_far": {str(k): v for k, v in ver["tar_at_far"].items()},
        "oracle_best_accuracy": ver["best_accuracy"], "kfold": _plain(kfold),
        "calibrated_threshold": threshold, "accuracy_at_calibrated_threshold": float((decided == same).mean()),
        "far_at_calibrated_threshold": far, "frr_at_calibrated_threshold": frr,
        "num_genuine_pairs": int(same.sum()), "num_impostor_pairs": int((~same).sum()),
    }


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def evaluate(model: torch.nn.Module, exp: MetricExperiment, train: Prepared, evaluation: dict[str, Any],
             device: str | torch.device = "cpu") -> tuple[dict[str, Any], float]:
    """Run the protocol for ``exp.data.kind``; returns (metrics, calibrated distance threshold).

    The threshold is the EER point of pairs of validation identities when ``val_identities`` is
    set (never seen by the gradient, never test identities), else of training-identity pairs.
    """
    cfg, kind = exp.data, evaluation["kind"]
    if "calibration" in evaluation:
        cal_images, cal_labels, _ = evaluation["calibration"]
    else:
        rng = np.random.default_rng(0)
        n_cal = min(len(train.images), cfg.calibration_images)
        cal = np.sort(rng.choice(len(train.images), n_cal, replace=False))
        if kind == "omniglot":  # calibrate on whole characters so every sampled image has positives
            classes = rng.choice(train.labels.max() + 1, max(2, n_cal // 20), replace=False)
            cal = np.flatnonzero(np.isin(train.labels, classes))
        cal_images, cal_labels = train.images[cal], train.labels[cal]
    threshold = calibrate_threshold(embed(model, cal_images, cfg, exp.eval_batch, device), cal_labels)
    if kind in ("orl_faces", "image_folder"):
        emb = embed(model, evaluation["images"], cfg, exp.eval_batch, device)
        d, same = pair_distances(emb, evaluation["labels"])
        metrics = _verification_metrics(d, same, threshold)
        metrics["test_identities"] = evaluation["identities"]
        if "calibration" in evaluation:
            metrics["calibration_identities"] = evaluation["calibration"][2]
    elif kind == "signatures":
        emb = embed(model, evaluation["images"], cfg, exp.eval_batch, device)
        labels, genuine = evaluation["labels"], evaluation["genuine"]
        # pairs of the same writer only: genuine–genuine = same, genuine–forgery = different
        same_writer = labels[:, None] == labels[None, :]
        mask = same_writer & (genuine[:, None] | genuine[None, :])
        pair_labels = np.where(genuine, labels * 2, labels * 2 + 1)
        d, same = pair_distances(emb, pair_labels, mask)
        metrics = _verification_metrics(d, same, threshold)
        metrics["test_writers"] = evaluation["identities"]
    elif kind == "omniglot":
        metrics = _oneshot(model, exp, evaluation, device)
    else:
        metrics = _reid(model, exp, evaluation, device)
    return metrics, threshold


def _oneshot(model, exp, evaluation, device) -> dict[str, Any]:
    from siamkit.eval.metric.oneshot import n_way_k_shot_accuracy

    per_run, correct = {}, []
    for name, support, queries, answers in evaluation["runs"]:
        s = embed(model, support, exp.data, exp.eval_batch, device)
        q = embed(model, queries, exp.data, exp.eval_batch, device)
        result = n_way_k_shot_accuracy(s, np.arange(len(s)), q, answers, distance="euclidean")
        acc = float(result["accuracy"]) if isinstance(result, dict) else float(result)
        per_run[name] = acc
        correct.append(acc * len(answers))
    total = sum(len(r[3]) for r in evaluation["runs"])
    acc = float(sum(correct) / total)
    return {
        "protocol": "Lake/Koch 20-way within-alphabet one-shot, official all_runs (400 trials)",
        "accuracy": acc, "error": 1.0 - acc,
        "ci95": float(1.96 * np.sqrt(acc * (1 - acc) / total)), "trials": total, "per_run": per_run,
    }


def hsv_stripe_histogram(images: list[np.ndarray], stripes: int = 6, bins: tuple[int, int, int] = (8, 4, 4)):
    """Baseline re-ID descriptor: L1-normalised HSV histograms of horizontal stripes, square-rooted."""
    import cv2

    feats = []
    for image in images:
        hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
        edges = np.linspace(0, hsv.shape[0], stripes + 1).astype(int)
        parts = []
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            h = cv2.calcHist([hsv[a:b]], [0, 1, 2], None, list(bins), [0, 180, 0, 256, 0, 256]).ravel()
            parts.append(h / max(h.sum(), 1.0))
        feats.append(np.sqrt(np.concatenate(parts)))
    return np.asarray(feats, dtype=np.float32)


def _reid(model, exp, evaluation, device) -> dict[str, Any]:
    from siamkit.eval.metric.retrieval import evaluate_reid, re_ranking

    def run(q: np.ndarray, g: np.ndarray) -> dict[str, Any]:
        qt, gt = torch.from_numpy(q).double(), torch.from_numpy(g).double()
        q_g, q_q, g_g = (torch.cdist(a, b).numpy() for a, b in ((qt, gt), (qt, qt), (gt, gt)))
        args = (evaluation["q_pids"], evaluation["g_pids"], evaluation["q_cams"], evaluation["g_cams"])
        plain = evaluate_reid(q_g, *args)
        rr = evaluate_reid(re_ranking(q_g, q_q, g_g), *args)
        keep = ("rank1", "rank5", "rank10", "mAP", "mINP", "num_valid_queries")
        return {"plain": {k: _plain(plain[k]) for k in keep if k in plain},
                "re_ranked": {k: _plain(rr[k]) for k in keep if k in rr}}

    q = embed(model, evaluation["query"], exp.data, exp.eval_batch, device)
    g = embed(model, evaluation["gallery"], exp.data, exp.eval_batch, device)
    return {
        "protocol": "Market-1501 subset re-split of official train ids; same-pid same-camera removal; "
                    "non-interpolated AP; not comparable to official Market-1501",
        "model": run(q, g),
        "hsv_histogram_baseline": run(hsv_stripe_histogram(evaluation["raw_query"]),
                                      hsv_stripe_histogram(evaluation["raw_gallery"])),
    }


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
    """Train, evaluate, write the results JSON and (optionally) ship the model to the zoo.

    Only ``publish=True`` (``siamkit train --publish``) writes the ``results:`` file and the zoo entry;
    by default everything stays in the run folder.
    """
    import siamkit.nn  # noqa: F401  (registers the model builders)
    from siamkit.train import distributed

    exp = from_dict(MetricExperiment, config, where=source or "experiment")
    if steps is not None:
        exp = MetricExperiment(**{**exp.__dict__, "train": TrainConfig(**{**asdict(exp.train), "steps": steps})})
    distributed.init_from_env(device)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    out = Path(out_dir or Path("runs") / exp.name)
    started = time.time()
    train, evaluation = load_data(exp.data)
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
    task = MetricTask(model, loss, exp.feature)
    loader = StepLoader(build_sampler(exp, train.labels), make_batcher(train.images, train.labels, exp.data),
                        seed=exp.train.seed)
    trainer = Trainer(task, loader, exp.train, out_dir=out, device=dev)
    trainer.run(resume=resume)
    if not distributed.is_main():
        return {}
    eval_started = time.time()
    metrics, threshold = evaluate(model, exp, train, evaluation, dev)
    results = {
        "experiment": exp.name,
        "metrics": metrics,
        "train_wall_time_s": round(trainer.wall_time, 1),
        "eval_wall_time_s": round(time.time() - eval_started, 1),
        "total_wall_time_s": round(time.time() - started, 1),
        "final_train_loss": trainer.mean_loss(50),
        "steps": trainer.step,
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
        + ("held-out validation identities" if exp.data.val_identities else "training identities") + ")",
        "metrics": _plain(results["metrics"]),
        "recipe": {
            "config": to_dict(exp), "command": results["command"], "train_wall_time_s": results["train_wall_time_s"],
            "device": results["device"], "steps": results["steps"],
        },
    }
    meta["metrics"].pop("per_run", None)
    return save_model(model.cpu(), Path(exp.ship.dir) / exp.ship.name, exp.architecture, model_cfg, meta,
                      half=exp.ship.half)


TASKS.register("metric")(run_metric)
