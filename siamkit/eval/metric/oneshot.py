"""N-way K-shot classification: episodes, accuracy, and Lake's 20-way Omniglot runs.

Two Omniglot protocols exist and give incompatible numbers; always name the one used:

- **Lake / Koch** (within-alphabet 20-way, 105×105): each of Lake's 20 runs holds 20 support
  images (one per character, one alphabet) and 20 test images; a trial predicts the support image
  most similar to one test image. Accuracy over 400 trials (Koch et al. 2015 report 92.0 %).
  Score them with :func:`score_lake_runs`.
- **Vinyals** (between-alphabet episodes, 28×28, rotated classes): random N-way K-shot episodes
  drawn from a test split; use :func:`random_episodes` + :func:`evaluate_episodes`.

Random trials drawn like Lake's (one alphabet per trial, support and query by different drawers)
from any Omniglot-layout set come from :func:`within_group_trials` and are scored by
:func:`score_trials`; use them to validate on held-out alphabets.

Episodes draw N *distinct* classes and keep each query image out of the support set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from siamkit.errors import DataError
from siamkit.eval.metric.retrieval import pairwise_distance

Z95 = 1.959963984540054


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its normal-approximation 95 % confidence interval."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise DataError("No values to average.")
    half = Z95 * v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else float("nan")
    return float(v.mean()), float(half)


def n_way_k_shot_accuracy(
    support_emb,
    support_labels,
    query_emb,
    query_labels,
    distance: str = "euclidean",
    method: str = "prototype",
) -> float:
    """Fraction of queries assigned their true class by the support set.

    ``method="prototype"`` compares each query with the mean support embedding of each class
    (Prototypical Networks); ``"nearest"`` with every support embedding (1-NN, Koch's rule). For
    K = 1 both are the same. ``distance``: ``euclidean``, ``sqeuclidean`` or ``cosine``.
    """
    s = np.asarray(support_emb, dtype=np.float64)
    q = np.asarray(query_emb, dtype=np.float64)
    sl, ql = np.asarray(support_labels).reshape(-1), np.asarray(query_labels).reshape(-1)
    if s.ndim != 2 or q.ndim != 2 or s.shape[1] != q.shape[1]:
        raise DataError(f"Support and query embeddings must be N×D with the same D; got {s.shape} and {q.shape}.")
    if s.shape[0] != sl.size or q.shape[0] != ql.size:
        raise DataError("Embeddings and labels differ in length.")
    if q.shape[0] == 0 or s.shape[0] == 0:
        raise DataError("Empty support or query set.")
    if not np.isin(ql, sl).all():
        raise DataError("Some query labels have no support example.", hint="Every query class needs a support shot.")
    if method == "prototype":
        classes = np.unique(sl)
        protos = np.stack([s[sl == c].mean(axis=0) for c in classes])
        pred = classes[np.argmin(pairwise_distance(q, protos, distance), axis=1)]
    elif method == "nearest":
        pred = sl[np.argmin(pairwise_distance(q, s, distance), axis=1)]
    else:
        raise DataError(f"Unknown method {method!r}.", hint="Use 'prototype' or 'nearest'.")
    return float(np.mean(pred == ql))


def random_episodes(
    labels,
    n_way: int,
    k_shot: int,
    n_query: int,
    episodes: int,
    seed: int = 0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Index sets ``(support, query)`` for ``episodes`` random N-way K-shot tasks.

    Each episode draws ``n_way`` distinct classes among those with at least ``k_shot + n_query``
    examples, then ``k_shot`` support and ``n_query`` query indices per class without overlap.
    Indices are ordered class by class (support: K per class; query: n_query per class).
    """
    labels = np.asarray(labels).reshape(-1)
    if min(n_way, k_shot, n_query, episodes) < 1:
        raise DataError(
            f"n_way, k_shot, n_query and episodes must be >= 1; got {n_way}, {k_shot}, {n_query}, {episodes}."
        )
    classes, counts = np.unique(labels, return_counts=True)
    eligible = classes[counts >= k_shot + n_query]
    if eligible.size < n_way:
        raise DataError(
            f"Only {eligible.size} classes have {k_shot + n_query} examples; {n_way}-way episodes need {n_way}.",
            hint="Lower n_way, k_shot or n_query.",
        )
    members = {c: np.flatnonzero(labels == c) for c in eligible.tolist()}
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(episodes):
        support, query = [], []
        for c in rng.choice(eligible, size=n_way, replace=False).tolist():
            pick = rng.choice(members[c], size=k_shot + n_query, replace=False)
            support.append(pick[:k_shot])
            query.append(pick[k_shot:])
        out.append((np.concatenate(support), np.concatenate(query)))
    return out


def evaluate_episodes(
    embeddings,
    labels,
    episodes: Sequence[tuple[np.ndarray, np.ndarray]],
    distance: str = "euclidean",
    method: str = "prototype",
) -> dict:
    """Mean accuracy ± 95 % CI over episodes from :func:`random_episodes`."""
    emb = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1)
    accs = [
        n_way_k_shot_accuracy(emb[s], labels[s], emb[q], labels[q], distance=distance, method=method)
        for s, q in episodes
    ]
    mean, ci = mean_ci95(accs)
    return {"accuracy": mean, "ci95": ci, "episodes": len(accs), "per_episode": accs}


def lake_run_correct(
    queries: Any,
    support: Any,
    answers,
    distance: str | Callable[[Any, Any], float] = "euclidean",
) -> np.ndarray:
    """Per test item, whether the most similar support item is the right one (one of Lake's runs).

    ``queries``/``support`` are embeddings (N×D arrays, with ``distance`` a name) or raw items of
    any kind (e.g. images) with ``distance(query_item, support_item) -> float`` (lower = more
    similar). ``answers[i]`` is the support index of query i's class.
    """
    answers = np.asarray(answers, dtype=np.int64).reshape(-1)
    if callable(distance):
        d = np.array([[float(distance(qi, si)) for si in support] for qi in queries])
    else:
        q, s = np.asarray(queries, dtype=np.float64), np.asarray(support, dtype=np.float64)
        if q.ndim != 2 or s.ndim != 2:
            raise DataError(
                f"With a named distance, queries and support must be embeddings (N×D); got {q.shape}, {s.shape}.",
                hint="Embed the images first or pass a distance(a, b) callable.",
            )
        d = pairwise_distance(q, s, distance)
    if d.shape[0] != answers.size:
        raise DataError(f"{d.shape[0]} test items but {answers.size} answers.")
    if answers.size and (answers.min() < 0 or answers.max() >= d.shape[1]):
        raise DataError(f"Answers must index the {d.shape[1]} support items.")
    if not np.all(np.isfinite(d)):
        raise DataError("The distance returned NaN or infinite values.")
    return np.argmin(d, axis=1) == answers


def score_lake_runs(
    runs: Sequence[Any],
    distance: str | Callable[[Any, Any], float] = "euclidean",
    embed: Callable[[Any], Any] | None = None,
) -> dict:
    """Accuracy over Lake's 20-way within-alphabet runs (protocol "Lake/Koch 20-way").

    Each run has ``support``, ``queries`` and ``answers`` (attributes, as
    :class:`siamkit.data.identities.OneShotRun`, or a mapping / 3-tuple in that order). With
    ``embed`` (images → N×D array) both sides are embedded first; otherwise ``distance`` is a
    callable on raw items or a named distance on arrays that already are embeddings.
    """
    if not runs:
        raise DataError("No one-shot runs to score.")
    per_run, correct = [], []
    for run in runs:
        support, queries, answers = _unpack(run)
        if embed is not None:
            support, queries = embed(support), embed(queries)
            support = support.detach().cpu().numpy() if hasattr(support, "detach") else support
            queries = queries.detach().cpu().numpy() if hasattr(queries, "detach") else queries
        ok = lake_run_correct(queries, support, answers, distance)
        per_run.append(float(ok.mean()))
        correct.append(ok)
    allc = np.concatenate(correct)
    _, ci = mean_ci95(per_run)
    return {
        "protocol": "Lake/Koch 20-way within-alphabet one-shot",
        "accuracy": float(allc.mean()),
        "ci95_over_runs": ci,
        "trials": int(allc.size),
        "runs": len(per_run),
        "per_run": per_run,
    }


def _unpack(run: Any) -> tuple[Any, Any, Any]:
    if all(hasattr(run, a) for a in ("support", "queries", "answers")):
        return run.support, run.queries, run.answers
    if isinstance(run, dict):
        return run["support"], run["queries"], run["answers"]
    if isinstance(run, (tuple, list)) and len(run) == 3:
        return tuple(run)
    raise DataError(f"Cannot read a one-shot run from {type(run).__name__}; need support, queries and answers.")


def within_group_trials(
    labels,
    groups,
    ways: int = 20,
    shots: int = 1,
    trials: int = 1000,
    seed: int = 0,
    drawers=None,
) -> list[tuple[np.ndarray, int, int]]:
    """Random N-way K-shot trials inside one group (alphabet) each: ``(support, query, answer)`` indices.

    A trial picks a group with at least ``ways`` classes that have ``shots + 1`` images, ``ways``
    distinct classes of it, ``shots`` support images per class (ordered class by class), then one
    query image of one of those classes that is not in the support. With ``drawers`` (one id per
    image, e.g. Omniglot's drawer) the query is by a drawer none of its class's support images
    came from, as in Lake's runs. The query's class is ``support[shots * answer]``'s class.
    """
    labels, groups = np.asarray(labels).reshape(-1), np.asarray(groups).reshape(-1)
    if labels.size != groups.size:
        raise DataError(f"{labels.size} labels but {groups.size} group ids.")
    if min(ways, shots, trials) < 1:
        raise DataError(f"ways, shots and trials must be >= 1; got {ways}, {shots}, {trials}.")
    drawers = None if drawers is None else np.asarray(drawers).reshape(-1)
    members: dict[Any, list[np.ndarray]] = {}
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if idx.size >= shots + 1:
            members.setdefault(groups[idx[0]], []).append(idx)
    eligible = [g for g, classes in members.items() if len(classes) >= ways]
    if not eligible:
        most = max((len(v) for v in members.values()), default=0)
        raise DataError(
            f"No group has {ways} classes with {shots + 1} images each (the largest has {most}).",
            hint="Lower ways or shots, or point at a set with larger alphabets.",
        )
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(trials):
        classes = members[eligible[rng.integers(len(eligible))]]
        chosen = rng.choice(len(classes), size=ways, replace=False)
        answer = int(rng.integers(ways))
        support = []
        for i, c in enumerate(chosen):
            pick = rng.permutation(classes[c])
            support.append(pick[:shots])
            if i == answer:
                rest = pick[shots:]
                if drawers is not None:
                    other = rest[~np.isin(drawers[rest], drawers[pick[:shots]])]
                    rest = other if other.size else rest
                query = int(rest[rng.integers(rest.size)])
        out.append((np.concatenate(support), query, answer))
    return out


def score_trials(distance_fn: Callable[[np.ndarray, np.ndarray], np.ndarray], trials, shots: int = 1) -> dict:
    """Accuracy ± 95 % CI of trials from :func:`within_group_trials`.

    ``distance_fn(query_indices, support_indices)`` returns the distance matrix; with K shots a
    class's distance is the mean distance to its K support images. Also returns each trial's
    chosen class (``chosen``) for plotting.
    """
    correct, chosen = [], []
    for support, query, answer in trials:
        d = np.asarray(distance_fn(np.array([query]), support), dtype=np.float64).reshape(-1, shots).mean(axis=1)
        pick = int(np.argmin(d))
        chosen.append(pick)
        correct.append(pick == answer)
    acc = float(np.mean(correct))
    return {
        "accuracy": acc,
        "ci95": float(Z95 * np.sqrt(acc * (1 - acc) / len(correct))),
        "trials": len(correct),
        "chosen": chosen,
    }
