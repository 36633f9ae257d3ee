"""Samplers for similarity learning: P×K identity batches, balanced pairs, triplets, quadruplets.

All samplers are deterministic given ``(seed, epoch)`` (call ``set_epoch`` each epoch, as with
``DistributedSampler``) and DDP-aware: every rank builds the same global list from the same seed
and takes a disjoint, equally long share of it (rank, world_size given explicitly or read from
an initialised ``torch.distributed`` process group).

* :class:`PKSampler` — a *batch* sampler (``DataLoader(ds, batch_sampler=...)``) yielding lists of
  P·K dataset indices: P distinct identities × K images each.
* :class:`PairSampler` — yields ``(i, j, same)`` with a chosen fraction of positive pairs.
* :class:`TripletSampler` — yields ``(a, p, n)``, or ``(a, p, n1, n2)`` with ``quadruplets=True``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from siamkit.errors import ConfigError, DataError


def _labels_array(labels: Sequence[int] | np.ndarray) -> np.ndarray:
    arr = np.asarray(labels.cpu() if hasattr(labels, "cpu") else labels)
    if arr.ndim != 1 or arr.size == 0:
        raise DataError(f"labels must be a non-empty 1-D sequence, got shape {arr.shape}.")
    if not np.issubdtype(arr.dtype, np.integer):
        raise DataError(f"labels must be integers (identity ids), got dtype {arr.dtype}.",
                        hint="Map identity names to integer ids first.")
    return arr


def resolve_rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """(rank, world_size) from the arguments, else from torch.distributed, else (0, 1)."""
    if rank is None or world_size is None:
        import torch.distributed as dist

        initialised = dist.is_available() and dist.is_initialized()
        if world_size is None:
            world_size = dist.get_world_size() if initialised else 1
        if rank is None:
            rank = dist.get_rank() if initialised else 0
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"Invalid DDP placement rank={rank}, world_size={world_size}.",
                          hint="Need world_size >= 1 and 0 <= rank < world_size.")
    return int(rank), int(world_size)


class _Groups:
    """Dataset indices grouped by identity (sorted by label)."""

    def __init__(self, labels: np.ndarray):
        self.order = np.argsort(labels, kind="stable")
        self.ids, self.starts, self.counts = np.unique(labels[self.order], return_index=True, return_counts=True)
        self.group_of = np.empty(labels.size, dtype=np.int64)  # dataset index -> group number
        self.group_of[self.order] = np.repeat(np.arange(self.ids.size), self.counts)
        self.rank_in_group = np.empty(labels.size, dtype=np.int64)
        self.rank_in_group[self.order] = np.arange(labels.size) - np.repeat(self.starts, self.counts)

    def member(self, group: np.ndarray, offset: np.ndarray) -> np.ndarray:
        return self.order[self.starts[group] + offset]

    def random_member(self, group: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.member(group, (rng.random(group.shape) * self.counts[group]).astype(np.int64))

    def other_member(self, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A different member of idx's identity (the identity must have >= 2 members)."""
        g = self.group_of[idx]
        n = self.counts[g]
        shift = 1 + (rng.random(idx.shape) * (n - 1)).astype(np.int64)
        return self.member(g, (self.rank_in_group[idx] + shift) % n)

    def other_group(self, group: np.ndarray, rng: np.random.Generator, also_not: np.ndarray | None = None
                    ) -> np.ndarray:
        """A uniformly random identity different from ``group`` (and from ``also_not`` if given)."""
        n = self.ids.size
        if also_not is None:
            return (group + 1 + (rng.random(group.shape) * (n - 1)).astype(np.int64)) % n
        lo, hi = np.minimum(group, also_not), np.maximum(group, also_not)
        r = (rng.random(group.shape) * (n - 2)).astype(np.int64)  # rank among the n - 2 allowed ids
        r = r + (r >= lo)
        return r + (r >= hi)


class _EpochSampler(Sampler):
    """Shared logic: per-epoch RNG, DDP sharding of a global list, set_epoch."""

    def __init__(self, seed: int, rank: int | None, world_size: int | None):
        self.seed = int(seed)
        self.rank, self.world_size = resolve_rank(rank, world_size)
        self.epoch = 0
        self._cache: tuple[int, list] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch; the same (seed, epoch) always gives the same samples on every rank."""
        self.epoch = int(epoch)

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch])

    def _global(self) -> list:
        raise NotImplementedError

    def _local(self) -> list:
        if self._cache is None or self._cache[0] != self.epoch:
            items = self._global()
            usable = len(items) // self.world_size * self.world_size
            self._cache = (self.epoch, items[self.rank:usable:self.world_size])
        return self._cache[1]

    def __iter__(self) -> Iterator:
        return iter(self._local())

    def __len__(self) -> int:
        return len(self._local())


class PKSampler(_EpochSampler):
    """Batches of P identities × K images (Hermans et al. 2017; BoT P=16, K=4).

    Each epoch every identity's images are shuffled and cut into chunks of K (the remainder is
    left out, as in torchreid's RandomIdentitySampler); identities with fewer than K images give one
    chunk drawn with replacement (``replace=True``) or are skipped (``replace=False``). Batches take
    one chunk from each of P distinct identities chosen at random among those with chunks left,
    until fewer than P remain. Under DDP each rank gets a disjoint share of the batches (the same
    number on every rank), so the global batch is P·K·world_size images.
    """

    def __init__(self, labels: Sequence[int] | np.ndarray, p: int, k: int, seed: int = 0,
                 rank: int | None = None, world_size: int | None = None, replace: bool = True):
        super().__init__(seed, rank, world_size)
        if p < 1 or k < 1:
            raise ConfigError(f"PKSampler needs p >= 1 and k >= 1, got p={p}, k={k}.")
        self.labels = _labels_array(labels)
        self.p, self.k, self.replace = int(p), int(k), bool(replace)
        self.groups = _Groups(self.labels)
        eligible = self.groups.ids.size if replace else int((self.groups.counts >= k).sum())
        if eligible < p:
            raise DataError(f"PKSampler: only {eligible} identities can give K={k} images, fewer than P={p}.",
                            hint="Lower P or K, or use replace=True for small identities.")

    def _global(self) -> list[list[int]]:
        rng = self._rng()
        g = self.groups
        chunks: list[list[np.ndarray]] = []
        for gi in range(g.ids.size):
            members = g.order[g.starts[gi]:g.starts[gi] + g.counts[gi]]
            if members.size < self.k:
                chunks.append([rng.choice(members, self.k, replace=True)] if self.replace else [])
                continue
            shuffled = rng.permutation(members)
            n = members.size // self.k
            chunks.append([shuffled[c * self.k:(c + 1) * self.k] for c in range(n)])
        left = np.array([len(c) for c in chunks])
        batches = []
        while (left > 0).sum() >= self.p:
            active = np.flatnonzero(left > 0)
            chosen = rng.choice(active, self.p, replace=False)
            batch = []
            for gi in chosen:
                left[gi] -= 1
                batch.extend(int(i) for i in chunks[gi][left[gi]])
            batches.append(batch)
        return batches


class PairSampler(_EpochSampler):
    """``num_pairs`` pairs ``(i, j, same)`` per epoch, a fraction ``pos_fraction`` of them positive.

    Positive: a random image of an identity with >= 2 images and a different image of the same
    identity. Negative: a random image and a random image of another identity (identities drawn
    uniformly). The order is shuffled.
    """

    def __init__(self, labels: Sequence[int] | np.ndarray, num_pairs: int | None = None, pos_fraction: float = 0.5,
                 seed: int = 0, rank: int | None = None, world_size: int | None = None):
        super().__init__(seed, rank, world_size)
        self.labels = _labels_array(labels)
        self.groups = _Groups(self.labels)
        self.num_pairs = int(num_pairs if num_pairs is not None else self.labels.size)
        if not 0.0 <= pos_fraction <= 1.0:
            raise ConfigError(f"pos_fraction must be in [0, 1], got {pos_fraction}.")
        self.pos_fraction = float(pos_fraction)
        self.n_pos = int(round(self.num_pairs * self.pos_fraction))
        self._pos_pool = np.flatnonzero(self.groups.counts[self.groups.group_of] >= 2)
        if self.n_pos and self._pos_pool.size == 0:
            raise DataError("PairSampler: no identity has two images, so no positive pair exists.")
        if self.num_pairs - self.n_pos and self.groups.ids.size < 2:
            raise DataError("PairSampler: negative pairs need at least two identities.")

    def _global(self) -> list[tuple[int, int, bool]]:
        rng = self._rng()
        g = self.groups
        a_pos = self._pos_pool[rng.integers(0, max(self._pos_pool.size, 1), self.n_pos)]
        p = g.other_member(a_pos, rng)
        a_neg = rng.integers(0, self.labels.size, self.num_pairs - self.n_pos)
        n = g.random_member(g.other_group(g.group_of[a_neg], rng), rng)
        first = np.concatenate([a_pos, a_neg])
        second = np.concatenate([p, n])
        same = np.concatenate([np.ones(a_pos.size, bool), np.zeros(a_neg.size, bool)])
        perm = rng.permutation(first.size)
        return [(int(first[i]), int(second[i]), bool(same[i])) for i in perm]


class TripletSampler(_EpochSampler):
    """``num_triplets`` random triplets ``(a, p, n)`` per epoch; ``quadruplets=True`` gives
    ``(a, p, n1, n2)`` with n1, n2 from two different identities, both other than a's (Chen et al.)."""

    def __init__(self, labels: Sequence[int] | np.ndarray, num_triplets: int | None = None, quadruplets: bool = False,
                 seed: int = 0, rank: int | None = None, world_size: int | None = None):
        super().__init__(seed, rank, world_size)
        self.labels = _labels_array(labels)
        self.groups = _Groups(self.labels)
        self.num = int(num_triplets if num_triplets is not None else self.labels.size)
        self.quadruplets = bool(quadruplets)
        self._pool = np.flatnonzero(self.groups.counts[self.groups.group_of] >= 2)
        if self._pool.size == 0:
            raise DataError("TripletSampler: no identity has two images, so no anchor-positive pair exists.")
        need = 3 if quadruplets else 2
        if self.groups.ids.size < need:
            raise DataError(f"TripletSampler: needs at least {need} identities, got {self.groups.ids.size}.")

    def _global(self) -> list[tuple[int, ...]]:
        rng = self._rng()
        g = self.groups
        a = self._pool[rng.integers(0, self._pool.size, self.num)]
        p = g.other_member(a, rng)
        ga = g.group_of[a]
        g1 = g.other_group(ga, rng)
        n1 = g.random_member(g1, rng)
        if not self.quadruplets:
            return [(int(x), int(y), int(z)) for x, y, z in zip(a, p, n1, strict=True)]
        n2 = g.random_member(g.other_group(ga, rng, also_not=g1), rng)
        return [(int(w), int(x), int(y), int(z)) for w, x, y, z in zip(a, p, n1, n2, strict=True)]
