"""Miners vs brute force (same distance matrix, explicit loops), and tuples consumed by losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from siamkit.losses.distances import EuclideanDistance
from siamkit.losses.metric import ContrastiveLoss, TripletLoss
from siamkit.losses.miners import (
    AllPairsMiner,
    AllTripletsMiner,
    BatchHardMiner,
    SemiHardMiner,
    label_masks,
    semi_hard,
)

SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def batch(draw, max_b=12, max_ids=4):
    b = draw(st.integers(1, max_b))
    labels = np.array(draw(st.lists(st.integers(0, max_ids - 1), min_size=b, max_size=b)))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    # few distinct values so that ties between distances actually happen
    x = rng.integers(-2, 3, size=(b, 2)).astype(np.float64) if draw(st.booleans()) else rng.normal(size=(b, 3))
    return x, labels


def dmat(x):
    return EuclideanDistance().pairwise(torch.from_numpy(x)).numpy()


@SETTINGS
@given(data=batch())
def test_batch_hard_miner_matches_brute_force(data):
    x, labels = data
    miner = BatchHardMiner()
    a, p, n = (t.numpy() for t in miner(torch.from_numpy(x), torch.from_numpy(labels)))
    d = dmat(x)
    expected_anchors = []
    for i in range(len(x)):
        ps = [j for j in range(len(x)) if j != i and labels[j] == labels[i]]
        ns = [j for j in range(len(x)) if labels[j] != labels[i]]
        if ps and ns:
            expected_anchors.append(i)
            k = list(a).index(i)
            assert labels[p[k]] == labels[i] and p[k] != i and labels[n[k]] != labels[i]
            assert d[i, p[k]] == max(d[i, j] for j in ps)  # ties: any arg-max is fine, the value is unique
            assert d[i, n[k]] == min(d[i, j] for j in ns)
    assert list(a) == expected_anchors
    assert miner.last_stats["dropped"] == len(x) - len(expected_anchors)


@SETTINGS
@given(data=batch(), margin=st.one_of(st.none(), st.floats(0.1, 2.0)), fallback=st.sampled_from(["drop", "largest"]))
def test_semi_hard_matches_brute_force(data, margin, fallback):
    x, labels = data
    d = torch.from_numpy(dmat(x))
    pos, neg = label_masks(torch.from_numpy(labels))
    (a, p, n), _ = semi_hard(d, pos, neg, margin, fallback)
    got = {(int(i), int(j)): int(k) for i, j, k in zip(a, p, n, strict=True)}
    assert len(got) == len(a)
    dn = d.numpy()
    expected = {}
    for i in range(len(x)):
        ns = [k for k in range(len(x)) if labels[k] != labels[i]]
        for j in range(len(x)):
            if j == i or labels[j] != labels[i] or not ns:
                continue
            farther = [k for k in ns if dn[i, k] > dn[i, j] and (margin is None or dn[i, k] < dn[i, j] + margin)]
            if farther:
                expected[(i, j)] = min(dn[i, k] for k in farther)
            elif fallback == "largest":
                expected[(i, j)] = max(dn[i, k] for k in ns)
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert labels[got[key]] != labels[key[0]] and dn[key[0], got[key]] == value


@SETTINGS
@given(data=batch())
def test_all_pairs_and_all_triplets_match_enumeration(data):
    x, labels = data
    emb, lab = torch.from_numpy(x), torch.from_numpy(labels)
    a1, p, a2, n = AllPairsMiner()(emb, lab)
    b = len(x)
    assert sorted(zip(a1.tolist(), p.tolist(), strict=True)) == [
        (i, j) for i in range(b) for j in range(b) if i != j and labels[i] == labels[j]]
    assert sorted(zip(a2.tolist(), n.tolist(), strict=True)) == [
        (i, j) for i in range(b) for j in range(b) if labels[i] != labels[j]]
    trip = AllTripletsMiner()(emb, lab)
    got = sorted(zip(*(t.tolist() for t in trip), strict=True))
    assert got == [(i, j, k) for i in range(b) for j in range(b) for k in range(b)
                   if i != j and labels[i] == labels[j] and labels[k] != labels[i]]


def test_semi_hard_miner_tuple_feeds_triplet_and_contrastive():
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.normal(size=(12, 4)))
    labels = torch.arange(3).repeat_interleave(4)
    miner = SemiHardMiner(margin=1.0)
    a, p, n = miner(x, labels)
    assert miner.last_stats["kept"] == a.numel() > 0
    loss = TripletLoss(margin=1.0)
    value = loss(x, labels, indices_tuple=(a, p, n))
    d = EuclideanDistance().pairwise(x)
    ref = torch.relu(d[a, p] - d[a, n] + 1.0).mean()
    assert float(value) == pytest.approx(float(ref), rel=1e-9)
    # semi-hard triplets are active by definition: d_ap < d_an < d_ap + m
    assert bool(((d[a, n] > d[a, p]) & (d[a, n] < d[a, p] + 1.0)).all())
    value = ContrastiveLoss(margin=2.0)(x, labels, indices_tuple=(a, p, n))
    ref = torch.cat([d[a, p], torch.relu(2.0 - d[a, n])]).mean()
    assert float(value) == pytest.approx(float(ref), rel=1e-9)


def test_miner_with_facenet_preset_and_one_identity():
    loss = TripletLoss.preset("facenet")
    x = torch.randn(6, 5, requires_grad=True)
    value = loss(x, torch.zeros(6, dtype=torch.long))  # no negatives: nothing mined, zero loss
    value.backward()
    assert float(value.detach()) == 0.0 and loss.last_stats["kept"] == 0 and (x.grad == 0).all()
