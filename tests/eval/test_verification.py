"""Verification metrics against hand-computed cases and scikit-learn."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from siamkit.errors import DataError
from siamkit.eval.metric import verification as V


def _random_pairs(n=400, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    same = rng.random(n) < 0.4
    scores = rng.normal(size=n) + 1.2 * same
    if ties:
        scores = np.round(scores, 1)
    return scores, same


@pytest.mark.parametrize("ties", [False, True])
def test_roc_and_auc_match_sklearn(ties):
    scores, same = _random_pairs(ties=ties)
    far, tar, thr = V.roc_curve(scores, same)
    sk_far, sk_tar, sk_thr = skm.roc_curve(same, scores, drop_intermediate=False)
    np.testing.assert_allclose(far, sk_far)
    np.testing.assert_allclose(tar, sk_tar)
    np.testing.assert_allclose(thr[1:], sk_thr[1:])
    with pytest.warns(UserWarning, match="oracle"):
        res = V.evaluate_verification(scores, same)
    assert res["auc"] == pytest.approx(skm.roc_auc_score(same, scores), abs=1e-12)


def test_distances_flag_equals_negated_scores():
    scores, same = _random_pairs(seed=3)
    dist = 5.0 - scores
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        a = V.evaluate_verification(scores, same)
        b = V.evaluate_verification(dist, same, higher_is_same=False)
    for key in ("auc", "eer", "best_accuracy"):
        assert a[key] == pytest.approx(b[key])
    assert b["best_threshold"] == pytest.approx(5.0 - a["best_threshold"])
    # the distance threshold really gives the best accuracy when applied as distance <= t
    assert V.accuracy_at_threshold(dist, same, b["best_threshold"], higher_is_same=False) == pytest.approx(
        b["best_accuracy"]
    )


def test_hand_computed_case():
    # genuine: 0.9 0.8 0.4 ; impostor: 0.7 0.3 0.2 0.1
    scores = [0.9, 0.8, 0.4, 0.7, 0.3, 0.2, 0.1]
    same = [1, 1, 1, 0, 0, 0, 0]
    with pytest.warns(UserWarning):
        r = V.evaluate_verification(scores, same, far_targets=(0.0, 0.25, 0.5))
    # 11 of 12 genuine/impostor orderings are correct (0.4 < 0.7 is the only inversion)
    assert r["auc"] == pytest.approx(11 / 12)
    # best accuracy: threshold between 0.3 and 0.4 -> 6/7 correct (only 0.7 wrong)
    assert r["best_accuracy"] == pytest.approx(6 / 7)
    assert 0.3 < r["best_threshold"] < 0.4
    # TAR at FAR 0 = 2/3 (threshold above 0.7), at FAR 0.25 = 1 (0.7 accepted, 0.4 accepted)
    assert r["tar_at_far"][0.0] == pytest.approx(2 / 3)
    assert r["tar_at_far"][0.25] == pytest.approx(1.0)
    # ROC points (far, frr): (0, 1/3) at t=0.8, (1/4, 1/3) at 0.7, (1/4, 0) at 0.4 -> FAR = FRR crosses
    # between (0.25, 1/3) and (0.25, 0): EER = 0.25
    assert r["eer"] == pytest.approx(0.25)


def test_eer_interpolates_between_points():
    # two genuine, two impostor, perfectly interleaved: g 0.9, i 0.8, g 0.7, i 0.6
    scores = [0.9, 0.8, 0.7, 0.6]
    same = [1, 0, 1, 0]
    with pytest.warns(UserWarning):
        r = V.evaluate_verification(scores, same)
    # points (far, frr): (0,1) (0,.5) (.5,.5) -> EER exactly 0.5 at threshold 0.8
    assert r["eer"] == pytest.approx(0.5)
    assert r["eer_threshold"] == pytest.approx(0.8)


def test_kfold_uses_training_folds_only():
    # Two contiguous folds with different optimal thresholds: fold A best at ~0.5, fold B best at ~0.8.
    fold_a = ([0.6, 0.55, 0.45, 0.4, 0.35], [1, 1, 0, 0, 0])
    fold_b = ([0.9, 0.85, 0.75, 0.7, 0.65], [1, 1, 0, 0, 0])
    scores = np.array(fold_a[0] + fold_b[0])
    same = np.array(fold_a[1] + fold_b[1])
    r = V.kfold_verification(scores, same, folds=2, shuffle=False, far_target=None)
    # fold A is tested with fold B's threshold (between 0.75 and 0.85): every A score rejected -> 3/5 correct
    # fold B is tested with fold A's threshold (between 0.45 and 0.55): every B score accepted -> 2/5 correct
    assert r["fold_accuracy"] == pytest.approx([0.6, 0.4])
    assert 0.75 < r["fold_threshold"][0] < 0.85 and 0.45 < r["fold_threshold"][1] < 0.55
    assert r["accuracy_mean"] == pytest.approx(0.5)
    assert r["accuracy_std"] == pytest.approx(0.1)
    # the test-tuned number is much higher and comes with a warning
    with pytest.warns(UserWarning, match="same pairs"):
        oracle = V.evaluate_verification(scores, same)["best_accuracy"]
    assert oracle == pytest.approx(0.8)  # threshold between 0.75 and 0.85 on all ten pairs


def test_kfold_against_brute_force_threshold_search():
    scores, same = _random_pairs(n=300, seed=7)
    r = V.kfold_verification(scores, same, folds=5, seed=1)
    order = np.random.default_rng(1).permutation(scores.size)
    parts = np.array_split(order, 5)
    grid = np.unique(scores)
    for k in range(5):
        train = np.concatenate([parts[j] for j in range(5) if j != k])
        best = max(np.mean((scores[train] >= t) == same[train]) for t in grid)
        thr = r["fold_threshold"][k]
        assert np.mean((scores[train] >= thr) == same[train]) == pytest.approx(best)
        assert r["fold_accuracy"][k] == pytest.approx(np.mean((scores[parts[k]] >= thr) == same[parts[k]]))
    # VAL@FAR: FAR on the training folds never exceeds the target by construction; on test it is near it
    assert 0.0 <= r["far_mean"] <= 0.05


def test_balanced_accuracy_warns_and_matches_definition():
    scores, same = _random_pairs(seed=11)
    with pytest.warns(UserWarning):
        bal, thr = V.best_balanced_accuracy(scores, same)
    grid = np.unique(scores)
    brute = max(0.5 * (np.mean(scores[same] >= t) + np.mean(scores[~same] < t)) for t in grid)
    assert bal == pytest.approx(brute)


@pytest.mark.parametrize(
    "scores,same,match",
    [
        ([0.1, 0.2], [1, 1], "only genuine"),
        ([0.1, 0.2], [1], "labels"),
        ([np.nan, 0.2], [1, 0], "NaN"),
        ([0.1, 0.2], [2, 0], "0/1"),
        ([], [], "No pairs"),
    ],
)
def test_bad_input_raises(scores, same, match):
    with pytest.raises(DataError, match=match):
        V.roc_curve(scores, same)
