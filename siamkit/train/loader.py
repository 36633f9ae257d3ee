"""A resumable, deterministic batch stream for step-based training.

A batch is a function of ``(seed, epoch, position)`` only: the batch sampler is re-seeded per
epoch (``set_epoch``) and the per-batch augmentation generator is seeded from the same triple.
The stream's state is ``(epoch, position)``, so a resumed run reads exactly the batches an
uninterrupted run would have read, whatever the number of workers. Under DDP every rank takes
its own slice of each global batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from siamkit.train import distributed


class RandomBatches:
    """Shuffled fixed-size batches of ``range(n)`` (drops the last incomplete batch)."""

    def __init__(self, n: int, batch_size: int, seed: int = 0):
        if batch_size > n:
            raise ValueError(f"batch_size {batch_size} is larger than the dataset ({n})")
        self.n, self.batch_size, self.seed, self.epoch = n, batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        for start in range(0, self.n - self.batch_size + 1, self.batch_size):
            yield order[start : start + self.batch_size].tolist()

    def __len__(self) -> int:
        return self.n // self.batch_size


class StepLoader:
    """Endless stream of batches: ``make_batch(indices, rng)`` builds one from dataset indices.

    ``batch_sampler`` yields lists of indices (global batches) and may have ``set_epoch``.
    """

    def __init__(
        self,
        batch_sampler: Any,
        make_batch: Callable[[Sequence[int], np.random.Generator], Any],
        seed: int = 0,
    ):
        self.batch_sampler = batch_sampler
        self.make_batch = make_batch
        self.seed = seed
        self.epoch = 0
        self.position = 0
        self._iter: Iterator[list[int]] | None = None

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._iter = None

    def _start_epoch(self) -> None:
        if hasattr(self.batch_sampler, "set_epoch"):
            self.batch_sampler.set_epoch(self.epoch)
        self._iter = iter(self.batch_sampler)
        for _ in range(self.position):  # fast-forward: index lists only, nothing is decoded
            next(self._iter)

    def next(self) -> Any:
        if self._iter is None:
            self._start_epoch()
        try:
            indices = next(self._iter)
        except StopIteration:
            self.epoch, self.position = self.epoch + 1, 0
            self._start_epoch()
            try:
                indices = next(self._iter)
            except StopIteration:
                raise ValueError("The batch sampler yields no batches (dataset smaller than one batch?)") from None
        rng = np.random.default_rng([self.seed, self.epoch, self.position, distributed.rank()])
        self.position += 1
        return self.make_batch(distributed.shard(list(indices)), rng)
