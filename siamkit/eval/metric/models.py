"""Evaluate a similarity model (a zoo entry or a baseline) on a dataset folder: ``siamkit eval --model``.

Datasets are ``KIND:PATH``:

- ``omniglot:PATH`` — Omniglot alphabets (zip or folder, ``<Alphabet>/<character>/*.png``): random
  N-way K-shot within-alphabet trials (options ``ways=20 shots=1 trials=2000 seed=0``); or Lake's
  ``all_runs`` layout: the official 400 trials (``swap=true`` adds the 400 with the drawers swapped).
- ``market:PATH`` — ``query/`` + ``bounding_box_test/`` in Market-1501 naming: CMC rank-1/5/10, mAP,
  mINP (same pid and camera removed), plain and k-reciprocal re-ranked (``rerank=false`` skips it).
- ``pairs:PATH`` — one folder per identity: all genuine pairs against impostor pairs (other
  identities, or the identity's skilled forgeries when it has any: ``<id>_forg/`` or ``*-F-*``):
  ROC AUC, EER, TAR@FAR, 10-fold accuracy, and the decisions at the model's calibrated threshold.
  ``identities=a,b,c`` restricts to some identity folders.

Models: a zoo name or ``.safetensors`` path, or a baseline: ``baseline:pixels`` (grey image at 32×32,
zero-mean, unit length) or ``baseline:histogram`` (HSV stripe histograms). :func:`evaluate` writes
``metrics.json`` and a plot (``roc.png``, ``cmc.png`` or ``trials.png``) and returns the metrics with
their one-line ``headline``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from siamkit.data import identities as ids
from siamkit.errors import ConfigError, DataError
from siamkit.eval.metric import protocols as P

KINDS = ("omniglot", "market", "pairs")
BASELINES = ("pixels", "histogram")
OPTIONS = {
    "omniglot": {"ways": 20, "shots": 1, "trials": 2000, "seed": 0, "swap": False, "plot_trials": 6},
    "market": {"rerank": True},
    "pairs": {"identities": ""},
}


@dataclass
class Embedder:
    """Images (uint8, grey H×W or BGR H×W×3) → N×D float embeddings, plus what a report needs."""

    name: str
    embed: Callable[[list[np.ndarray]], np.ndarray]
    threshold: float | None = None
    info: dict[str, Any] | None = None


def load_embedder(model: str, device: str | None = None, batch: int = 64) -> Embedder:
    """A zoo model (name or path) or ``baseline:pixels`` / ``baseline:histogram`` as an :class:`Embedder`."""
    if model.startswith("baseline:"):
        which = model.split(":", 1)[1]
        if which == "pixels":
            return Embedder(model, P.raw_pixels, info={"baseline": "grey 32x32 pixels, zero-mean, unit length"})
        if which == "histogram":
            return Embedder(model, P.hsv_stripe_histogram, info={"baseline": "HSV histograms of 6 stripes"})
        raise ConfigError(f"Unknown baseline {which!r}.", hint=f"Use one of: {', '.join(BASELINES)}.")
    import torch

    from siamkit.data.preprocess import Preprocessing
    from siamkit.zoo import load_model

    net, entry = load_model(model, device=device or "cpu")
    meta = entry.meta
    for key in ("input_size", "channels", "normalize"):
        if key not in meta:
            raise ConfigError(f"Model {entry.name!r} is not an embedding model (its sidecar has no {key!r}).",
                              hint="Pass a similarity model, e.g. faces, signatures, reid or omniglot.")
    dev = next(net.parameters()).device
    prep = Preprocessing.from_meta(meta)

    @torch.no_grad()
    def embed(images: list[np.ndarray]) -> np.ndarray:
        out = []
        for start in range(0, len(images), batch):
            out.append(net(prep(images[start:start + batch]).to(dev)).float().cpu())
        return torch.cat(out).numpy().astype(np.float64)

    threshold = meta.get("threshold")
    return Embedder(entry.name, embed, None if threshold is None else float(threshold),
                    {"task": meta.get("task"), "weights": str(entry.weights)})


def parse_dataset(spec: str) -> tuple[str, Path]:
    """``KIND:PATH`` → (kind, path), with a clear error for an unknown kind or a missing path."""
    kind, sep, path = spec.partition(":")
    if not sep or kind not in KINDS:
        raise ConfigError(f"--dataset {spec!r} is not KIND:PATH with KIND one of {', '.join(KINDS)}.",
                          hint="E.g. --dataset pairs:../shared/data/metric/orl_faces.")
    if not Path(path).exists():
        raise DataError(f"Dataset path not found: {path}.")
    return kind, Path(path)


def check_options(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """Defaults for ``kind`` updated with ``options``; unknown keys are an error naming the known ones."""
    known = OPTIONS[kind]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"Unknown option(s) for {kind}: {', '.join(unknown)}.",
                          hint=f"Known: {', '.join(f'{k}={v}' for k, v in known.items())}.")
    return {**known, **options}


def _read_all(ds: ids.IdentityDataset) -> list[np.ndarray]:
    from siamkit.utils.progress import progress

    return [ds.read(i) for i in progress(range(len(ds)), total=len(ds), desc="read", unit="img")]


# --------------------------------------------------------------------------- protocols per kind


def eval_pairs(embedder: Embedder, path: Path, identities: Sequence[str] = (), grayscale: bool = False
               ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verification over one folder per identity; returns (metrics, plot data)."""
    ds = ids.pair_folder(path, grayscale=grayscale)
    if identities:
        ds = ds.split_identities(list(identities))
    genuine = np.array([it.genuine for it in ds.items])
    emb = embedder.embed(_read_all(ds))
    d, same = P.verification_pairs(emb, ds.labels, genuine)
    metrics = P.verification_metrics(d, same, embedder.threshold, curve=True)
    metrics["impostors"] = "skilled forgeries of the same identity" if not genuine.all() else "other identities"
    metrics["identities"] = ds.identities()
    metrics["num_images"] = len(ds)
    roc = metrics.pop("roc")
    return metrics, {"roc": roc}


def eval_market(embedder: Embedder, path: Path, rerank: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """Market-1501 query vs gallery; returns (metrics, plot data)."""
    missing = [s for s in ("query", "bounding_box_test") if not (path / s).is_dir()]
    if missing:
        raise DataError(f"{path} lacks {' and '.join(s + '/' for s in missing)}; found {ids._listing(path)}.",
                        hint="Expected PATH/query/ and PATH/bounding_box_test/ with Market-1501 names "
                             "(PPPP_cCsS_FFFFFF_BB.jpg).")
    query, gallery = ids.market1501(path, "query"), ids.market1501(path, "bounding_box_test")
    q, g = embedder.embed(_read_all(query)), embedder.embed(_read_all(gallery))
    metrics = P.reid_metrics(q, g, ids.pids(query), ids.pids(gallery), query.cameras, gallery.cameras,
                             rerank=rerank, curve=True)
    curves = {"plain": metrics["plain"].pop("cmc")}
    if rerank:
        curves["re-ranked"] = metrics["re_ranked"].pop("cmc")
    metrics.update(num_query=len(query), num_gallery=len(gallery))
    return metrics, {"cmc": curves}


def eval_omniglot(embedder: Embedder, path: Path, ways: int = 20, shots: int = 1, trials: int = 2000,
                  seed: int = 0, swap: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """One-shot trials (random within-alphabet, or Lake's runs); returns (metrics, plot data)."""
    if ids.omniglot_layout(path) == "runs":
        runs = ids.omniglot_runs(path)
        embedded = [(embedder.embed(list(r.support)), embedder.embed(list(r.queries)), r.answers) for r in runs]
        metrics = P.lake_runs(embedded)
        if swap:
            swapped = P.lake_runs(embedded, swap=True)
            metrics["swapped"] = {k: swapped[k] for k in ("protocol", "accuracy", "ci95", "trials")}
        shown = [(list(r.support), r.queries[i], int(r.answers[i]), int(metrics["chosen"][k][i]))
                 for k, r in enumerate(runs) for i in range(len(r.answers))]
        metrics.pop("chosen")
        return metrics, {"trials": shown}
    ds = ids.omniglot_images(path)
    images = _read_all(ds)
    emb = embedder.embed(images)
    metrics = P.oneshot_trials(emb, ds.labels, [it.group for it in ds.items], ds.cameras, ways, shots, trials, seed)
    shown = [([images[i] for i in s], images[q], a, c)
             for (s, q, a), c in zip(metrics.pop("trial_indices"), metrics.pop("chosen"), strict=True)]
    metrics["alphabets"] = sorted({it.group for it in ds.items})
    return metrics, {"trials": shown, "shots": shots}


def headline(kind: str, metrics: dict[str, Any]) -> str:
    """The one line ``siamkit eval`` prints last."""
    if kind == "pairs":
        return f"EER {metrics['eer']:.3f}  AUC {metrics['auc']:.3f}"
    if kind == "market":
        m = metrics["plain"]
        line = f"rank-1 {m['rank1']:.3f}  mAP {m['mAP']:.3f}"
        if "re_ranked" in metrics:
            line += f"  (re-ranked: rank-1 {metrics['re_ranked']['rank1']:.3f}  mAP {metrics['re_ranked']['mAP']:.3f})"
        return line
    return f"accuracy {metrics['accuracy']:.3f} ± {metrics['ci95']:.3f} ({metrics['trials']} trials)"


def evaluate(model: str | Embedder, dataset: str, out: str | Path | None = None,
             options: dict[str, Any] | None = None, device: str | None = None) -> dict[str, Any]:
    """Score ``model`` on ``dataset`` (``KIND:PATH``); with ``out``, write metrics.json and the plot there."""
    kind, path = parse_dataset(dataset)
    opts = check_options(kind, dict(options or {}))
    embedder = model if isinstance(model, Embedder) else load_embedder(model, device)
    if kind == "pairs":
        names = [n for n in str(opts["identities"]).split(",") if n]
        metrics, plot = eval_pairs(embedder, path, names)
    elif kind == "market":
        metrics, plot = eval_market(embedder, path, bool(opts["rerank"]))
    else:
        show = int(opts.pop("plot_trials"))
        metrics, plot = eval_omniglot(embedder, path, **{k: opts[k] for k in ("ways", "shots", "trials", "seed",
                                                                            "swap")})
        opts["plot_trials"] = show
    metrics = {"model": embedder.name, "dataset": f"{kind}:{path}", "options": opts, **(embedder.info and
               {"model_info": embedder.info} or {}), **metrics}
    metrics["headline"] = headline(kind, metrics)
    if out is not None:
        metrics["plot"] = str(_write(Path(out), kind, metrics, plot, embedder.name, opts))
    return metrics


def _write(out: Path, kind: str, metrics: dict[str, Any], plot: dict[str, Any], name: str,
           opts: dict[str, Any]) -> Path:
    from siamkit.eval.metric.plots import plot_cmc, plot_oneshot_trials, plot_roc
    from siamkit.utils.io import write_json

    out.mkdir(parents=True, exist_ok=True)
    if kind == "pairs":
        figure = plot_roc({name: plot["roc"]}, out / "roc.png", title=f"ROC: {name} on {Path(metrics['dataset']).name}")
    elif kind == "market":
        figure = plot_cmc({f"{name} {k}": v for k, v in plot["cmc"].items()}, out / "cmc.png",
                          title=f"CMC: {name}")
    else:
        figure = plot_oneshot_trials(plot["trials"][: int(opts["plot_trials"])], out / "trials.png",
                                     shots=int(plot.get("shots", 1)), title=f"one-shot trials: {name}")
    write_json(out / "metrics.json", {**metrics, "plot": str(figure)})
    return figure
