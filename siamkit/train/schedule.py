"""Learning-rate schedules as a multiplicative factor of the base rate: warm-up then decay.

``lr(step) = base_lr · factor(step)``. Warm-up rises linearly from ``warmup_factor`` to 1 over
``warmup_steps``; after it, ``cosine`` decays to ``final_factor`` along half a cosine,
``step`` multiplies by ``gamma`` every ``step_size`` steps, ``log`` decays geometrically
(linearly in log-lr) to ``final_factor``, and ``constant`` stays at 1.

``pysot`` is pysot's per-epoch schedule (constant within an epoch of ``epoch_steps`` steps): a
geometric warm-up from ``warmup_factor`` towards 1 over the ``warmup_steps // epoch_steps`` warm-up
epochs, then a log-spaced decay from 1 to ``final_factor`` over the remaining epochs (first and
last epoch included) — :func:`siamkit.train.tracking.pysot_lr` divided by the base rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SCHEDULES = ("constant", "cosine", "step", "log", "pysot")


@dataclass(frozen=True)
class Schedule:
    name: str = "cosine"
    total_steps: int = 1000
    warmup_steps: int = 0
    warmup_factor: float = 0.01
    final_factor: float = 0.0
    step_size: int = 1000
    gamma: float = 0.1
    epoch_steps: int = 0  # pysot: optimizer steps per epoch

    def __post_init__(self):
        from siamkit.errors import ConfigError

        if self.name not in SCHEDULES:
            raise ConfigError(f"Unknown LR schedule {self.name!r}.", hint=f"Use one of {', '.join(SCHEDULES)}.")
        if self.name == "pysot" and self.epoch_steps <= 0:
            raise ConfigError("The pysot schedule needs epoch_steps (optimizer steps per epoch).")

    def __call__(self, step: int) -> float:
        if self.name == "pysot":
            return self._pysot(step)
        if step < self.warmup_steps:
            alpha = step / max(1, self.warmup_steps)
            return self.warmup_factor + (1.0 - self.warmup_factor) * alpha
        t = step - self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, t / span)
        if self.name == "cosine":
            return self.final_factor + (1.0 - self.final_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))
        if self.name == "step":
            return self.gamma ** (t // max(1, self.step_size))
        if self.name == "log":
            final = max(self.final_factor, 1e-12)
            return math.exp(progress * math.log(final))
        return 1.0

    def _pysot(self, step: int) -> float:
        epoch, epochs = step // self.epoch_steps, max(1, self.total_steps // self.epoch_steps)
        warm = self.warmup_steps // self.epoch_steps
        if epoch < warm:
            return self.warmup_factor ** (1.0 - epoch / warm)
        n = epochs - warm
        t = min(1.0, (epoch - warm) / (n - 1)) if n > 1 else 0.0
        return max(self.final_factor, 1e-12) ** t


def make_scheduler(optimizer: torch.optim.Optimizer, schedule: Schedule) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` stepping once per optimizer step (its state is saved in checkpoints)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
