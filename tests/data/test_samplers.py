"""Sampler properties: P×K structure, DDP ranks disjoint and equal, determinism per epoch."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siamkit.data.samplers import PairSampler, PKSampler, TripletSampler
from siamkit.errors import ConfigError, DataError


@st.composite
def dataset(draw):
    sizes = draw(st.lists(st.integers(1, 9), min_size=3, max_size=12))
    labels = np.repeat(np.arange(len(sizes)) * 7 + 3, sizes)  # non-contiguous identity ids
    return np.random.default_rng(draw(st.integers(0, 1000))).permutation(labels)


@settings(max_examples=40, deadline=None)
@given(labels=dataset(), p=st.integers(1, 3), k=st.integers(1, 4), replace=st.booleans())
def test_pk_batches_have_p_identities_times_k_images(labels, p, k, replace):
    counts = Counter(labels.tolist())
    eligible = len(counts) if replace else sum(c >= k for c in counts.values())
    if eligible < p:
        with pytest.raises(DataError, match="fewer than P"):
            PKSampler(labels, p, k, replace=replace)
        return
    sampler = PKSampler(labels, p, k, seed=1, replace=replace)
    batches = list(sampler)
    assert len(batches) == len(sampler) > 0
    used = Counter()
    for b in batches:
        ids = Counter(labels[b].tolist())
        assert len(b) == p * k and len(ids) == p and set(ids.values()) == {k}
        used.update(i for i in b if counts[labels[i]] >= k)
    # identities with >= K images: no image is used twice per epoch
    assert max(used.values(), default=1) == 1


def test_pk_deterministic_per_epoch_and_changes_between_epochs():
    labels = np.repeat(np.arange(10), 6)
    a, b = PKSampler(labels, 4, 3, seed=5), PKSampler(labels, 4, 3, seed=5)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    a.set_epoch(0)
    assert list(a) == first
    assert list(PKSampler(labels, 4, 3, seed=6)) != first


@pytest.mark.parametrize("world", [2, 3])
def test_pk_ddp_ranks_get_disjoint_equal_shares(world):
    labels = np.repeat(np.arange(20), [3, 5, 8] * 6 + [4, 4])
    single = list(PKSampler(labels, 4, 2, seed=9, rank=0, world_size=1))
    shards = [list(PKSampler(labels, 4, 2, seed=9, rank=r, world_size=world)) for r in range(world)]
    assert len({len(s) for s in shards}) == 1 and len(shards[0]) == len(single) // world
    as_sets = [{tuple(b) for b in s} for s in shards]
    for i in range(world):
        for j in range(i + 1, world):
            assert not as_sets[i] & as_sets[j]
    assert set().union(*as_sets) <= {tuple(b) for b in single}
    with pytest.raises(ConfigError, match="rank"):
        PKSampler(labels, 4, 2, rank=2, world_size=2)


def test_pair_sampler_balance_validity_and_ddp():
    labels = np.repeat(np.arange(6), [1, 2, 3, 4, 5, 6])
    sampler = PairSampler(labels, num_pairs=400, pos_fraction=0.25, seed=0)
    pairs = list(sampler)
    assert len(pairs) == 400 and sum(s for *_, s in pairs) == 100
    for i, j, same in pairs:
        assert i != j and (labels[i] == labels[j]) == same
    assert labels[[i for i, _, s in pairs if s]].tolist().count(0) == 0  # the singleton never anchors a positive
    r0, r1 = (list(PairSampler(labels, 400, 0.25, seed=0, rank=r, world_size=2)) for r in (0, 1))
    assert len(r0) == len(r1) == 200 and sorted(r0 + r1) == sorted(pairs)
    with pytest.raises(DataError, match="two images"):
        PairSampler([0, 1, 2], num_pairs=4)
    with pytest.raises(DataError, match="two identities"):
        PairSampler([5, 5, 5], num_pairs=4, pos_fraction=0.5)


@pytest.mark.parametrize("quad", [False, True])
def test_triplet_and_quadruplet_sampler_validity(quad):
    labels = np.repeat(np.arange(5), [2, 1, 3, 2, 4])
    sampler = TripletSampler(labels, num_triplets=300, quadruplets=quad, seed=2)
    items = list(sampler)
    assert len(items) == 300 and all(len(t) == (4 if quad else 3) for t in items)
    seen_ids = Counter()
    for t in items:
        a, p, n1 = t[:3]
        assert a != p and labels[a] == labels[p] and labels[n1] != labels[a]
        if quad:
            n2 = t[3]
            assert labels[n2] != labels[a] and labels[n2] != labels[n1]
            seen_ids[labels[n2]] += 1
    if quad:
        assert len(seen_ids) == 5  # every identity can be the second negative
    sampler.set_epoch(3)
    assert list(sampler) != items
    with pytest.raises(DataError, match="3 identities"):
        TripletSampler([0, 0, 1, 1], quadruplets=True)


def test_rank_and_world_size_default_to_the_process_group(monkeypatch):
    import torch.distributed as dist

    labels = np.repeat(np.arange(12), 4)
    explicit = list(PKSampler(labels, 3, 2, seed=4, rank=1, world_size=2))
    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    sampler = PKSampler(labels, 3, 2, seed=4)
    assert (sampler.rank, sampler.world_size) == (1, 2) and list(sampler) == explicit
