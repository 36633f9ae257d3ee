"""N-way K-shot episodes and accuracy; Lake's 20-way runs scored on the real all_runs.zip."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_path

from siamkit.errors import DataError
from siamkit.eval.metric import oneshot as O


def test_prototype_and_nearest_hand_case():
    # class A shots at 0 and 10 (prototype 5), class B shot at 7; query 5.5 of class A.
    #   nearest: B (|5.5-7| = 1.5 beats 5.5 and 4.5)   prototype: A (|5.5-5| = 0.5 beats 1.5)
    support = np.array([[0.0], [10.0], [7.0]])
    labels = ["A", "A", "B"]
    q, ql = np.array([[5.5]]), ["A"]
    assert O.n_way_k_shot_accuracy(support, labels, q, ql, method="prototype") == 1.0
    assert O.n_way_k_shot_accuracy(support, labels, q, ql, method="nearest") == 0.0
    # cosine distance ignores the norm
    s2 = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert O.n_way_k_shot_accuracy(s2, [0, 1], np.array([[10.0, 9.0], [0.1, 3.0]]), [0, 1], distance="cosine") == 1.0
    with pytest.raises(DataError, match="no support"):
        O.n_way_k_shot_accuracy(support, labels, q, ["C"])


def test_random_episodes_are_valid_and_reproducible():
    labels = np.repeat(np.arange(12), 6)
    labels = np.r_[labels, [12, 12]]  # class 12 has too few examples: never drawn
    eps = O.random_episodes(labels, n_way=5, k_shot=2, n_query=3, episodes=50, seed=3)
    assert len(eps) == 50
    for support, query in eps:
        assert support.size == 10 and query.size == 15
        assert not set(support) & set(query)
        classes = labels[support].reshape(5, 2)
        assert (classes == classes[:, :1]).all() and len(set(classes[:, 0])) == 5
        assert set(labels[query]) == set(classes[:, 0]) and 12 not in classes
    again = O.random_episodes(labels, 5, 2, 3, 50, seed=3)
    assert all((a[0] == b[0]).all() and (a[1] == b[1]).all() for a, b in zip(eps, again, strict=True))
    with pytest.raises(DataError, match="Only 12 classes"):
        O.random_episodes(labels, 13, 2, 3, 1)


def test_evaluate_episodes_matches_direct_loop():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(20), 8)
    emb = rng.normal(size=(20, 4))[labels] + 0.8 * rng.normal(size=(160, 4))
    eps = O.random_episodes(labels, 5, 1, 4, 40, seed=1)
    res = O.evaluate_episodes(emb, labels, eps)
    direct = []
    for s, q in eps:
        d = ((emb[q][:, None] - emb[s][None]) ** 2).sum(-1)
        direct.append(np.mean(labels[s][d.argmin(1)] == labels[q]))
    assert res["accuracy"] == pytest.approx(np.mean(direct))
    assert res["ci95"] == pytest.approx(1.959964 * np.std(direct, ddof=1) / np.sqrt(40), rel=1e-5)
    assert 0.2 < res["accuracy"] < 1.0


def test_lake_runs_on_real_data_callable_equals_embeddings():
    from siamkit.data.identities import omniglot_runs

    runs = omniglot_runs(shared_path("metric", "omniglot", "all_runs.zip"))
    assert len(runs) == 20 and all(r.support.shape[0] == 20 and r.queries.shape[0] == 20 for r in runs)
    runs = runs[:5]  # keep the callable path fast

    def pixel_l2(a, b):
        return float(np.linalg.norm(a.astype(np.float64) - b.astype(np.float64)))

    by_callable = O.score_lake_runs(runs, distance=pixel_l2)
    flat = [(r.support.reshape(20, -1), r.queries.reshape(20, -1), r.answers) for r in runs]
    by_arrays = O.score_lake_runs(flat, distance="euclidean")
    by_embed = O.score_lake_runs(runs, embed=lambda imgs: imgs.reshape(len(imgs), -1).astype(np.float64))
    assert by_callable["per_run"] == pytest.approx(by_arrays["per_run"]) == by_embed["per_run"]
    assert by_callable["trials"] == 100 and by_callable["protocol"].startswith("Lake/Koch 20-way")
    assert 0.05 < by_callable["accuracy"] < 0.6  # raw pixels beat chance (1/20) but are far from a learned metric
    # the oracle distance (answers known) scores 100 %
    oracle = [(np.eye(20), np.eye(20)[r.answers], r.answers) for r in runs]
    assert O.score_lake_runs(oracle)["accuracy"] == 1.0


def test_lake_run_errors():
    with pytest.raises(DataError, match="embeddings"):
        O.lake_run_correct(np.zeros((2, 3, 3)), np.zeros((2, 3, 3)), [0, 1])
    with pytest.raises(DataError, match="index"):
        O.lake_run_correct(np.eye(2), np.eye(2), [0, 2])
    with pytest.raises(DataError, match="No one-shot runs"):
        O.score_lake_runs([])
