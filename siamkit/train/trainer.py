"""One generic, step-based Trainer shared by metric learning and tracker training.

The Trainer knows nothing about the task: a *task* is an ``nn.Module`` whose
``training_step(batch)`` returns the loss (or ``(loss, {name: value})``); the Trainer calls it
through ``forward`` so DDP synchronises gradients. It handles the device, AMP (CUDA only, a
no-op on CPU), gradient clipping, warm-up + LR schedule, progress bar, CSV/JSON logs,
checkpoints (atomic, every N steps and at the end) and exact resume: model, optimizer,
scheduler, AMP scaler, the batch stream position and every RNG state are saved, so an
interrupted-and-resumed run follows the same loss curve as an uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import pickle
import random
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from siamkit.errors import ConfigError, DataError
from siamkit.safety import make_private
from siamkit.train import distributed
from siamkit.train.loader import StepLoader
from siamkit.train.schedule import Schedule, make_scheduler
from siamkit.utils.device import resolve_device
from siamkit.utils.io import atomic_write, write_json
from siamkit.utils.progress import progress

log = logging.getLogger("siamkit.train")

OPTIMIZERS = ("adam", "adamw", "sgd")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation hyper-parameters (every field can be set from an experiment YAML)."""

    steps: int = 1000
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9
    schedule: str = "cosine"
    warmup_steps: int = 0
    warmup_factor: float = 0.01
    final_lr_factor: float = 0.0
    step_size: int = 1000
    gamma: float = 0.1
    epoch_steps: int = 0  # the pysot schedule's epoch length (tracker training fills it in)
    grad_clip: float | None = None
    amp: bool = True
    checkpoint_every: int = 0
    log_every: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        # Validated where it enters: `steps: 0` or `lr: .nan` used to train nothing, silently.
        if self.steps < 1:
            raise ConfigError(f"train.steps must be at least 1, got {self.steps}.", hint="Set steps: to e.g. 1000.")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"train.lr must be a positive number, got {self.lr}.", hint="Write e.g. lr: 1.0e-3.")
        for name in ("weight_decay", "momentum", "warmup_factor", "final_lr_factor", "gamma"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"train.{name} must be a finite number >= 0, got {value}.")
        for name in ("warmup_steps", "checkpoint_every", "epoch_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must be >= 0, got {getattr(self, name)}.")
        if self.step_size < 1 or self.log_every < 1:
            raise ConfigError("train.step_size and train.log_every must be at least 1.")
        if self.grad_clip is not None and not (math.isfinite(self.grad_clip) and self.grad_clip > 0):
            raise ConfigError(f"train.grad_clip must be a positive number or none, got {self.grad_clip}.")


class Task(nn.Module):
    """Base class of task adapters: implement ``training_step(batch) -> loss | (loss, logs)``.

    Set ``changes_trainable = True`` when ``training_step`` freezes or unfreezes parameters (DDP then
    finds the parameters without gradients each step).
    """

    changes_trainable: bool = False

    def training_step(self, batch: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, batch: Any) -> Any:
        return self.training_step(batch)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    """Every RNG state as plain data (tensors, ints, lists): loadable with ``weights_only=True``."""
    version, keys, gauss_index = random.getstate()
    kind, np_keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": {"version": version, "state": torch.tensor(keys, dtype=torch.int64), "gauss": gauss_index},
        "numpy": {"kind": kind, "keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    py, npy = state["python"], state["numpy"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    np.random.set_state((npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                         npy["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def read_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a training checkpoint as plain data only (``weights_only=True``: no code in it can run).

    A checkpoint that needs more than tensors and plain Python values (e.g. pickled objects
    written by an older siamkit, or a crafted file) is refused with a DataError.
    """
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, KeyError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        if isinstance(exc, pickle.UnpicklingError):  # torch's text would suggest weights_only=False: never
            first = "it holds pickled objects, not only tensors and plain values"
        raise DataError(
            f"{path} is not a plain-data siamkit checkpoint ({first}).",
            hint="siamkit only resumes from checkpoints it wrote (tensors and plain values); start without --resume.",
        ) from None
    if not isinstance(state, dict) or "task" not in state:
        raise DataError(f"{path} is not a siamkit training checkpoint.", hint="Start without --resume.")
    return state


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def build_optimizer(params: Any, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True)
    raise ConfigError(f"Unknown optimizer {cfg.optimizer!r}.", hint=f"Use one of {', '.join(OPTIMIZERS)}.")


class Trainer:
    """Runs ``cfg.steps`` optimisation steps of ``task`` on batches from ``loader``.

    ``out_dir`` receives ``checkpoint.pt`` (latest state), ``log.csv`` and ``log.json``.
    ``run(stop_at=k)`` stops after step k (with a checkpoint) as if interrupted — for tests
    and for splitting long runs.
    """

    def __init__(
        self,
        task: Task,
        loader: StepLoader,
        cfg: TrainConfig,
        out_dir: str | Path | None = None,
        device: str | torch.device | None = None,
    ):
        self.cfg = cfg
        self.device = resolve_device(device)
        self.task = task.to(self.device)
        self.loader = loader
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.use_amp = bool(cfg.amp and self.device.type == "cuda")
        self.model: nn.Module = self.task
        if distributed.is_distributed():
            ids = [self.device.index] if self.device.type == "cuda" else None
            # a task that freezes and later unfreezes parameters (tracker backbones) leaves some without
            # gradients in some steps: DDP must look for them each step instead of waiting for them
            unused = bool(getattr(task, "changes_trainable", False))
            self.model = nn.parallel.DistributedDataParallel(self.task, device_ids=ids, find_unused_parameters=unused)
        params = [p for p in self.task.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(params, cfg)
        self.schedule = Schedule(
            cfg.schedule, cfg.steps, cfg.warmup_steps, cfg.warmup_factor, cfg.final_lr_factor, cfg.step_size, cfg.gamma,
            cfg.epoch_steps,
        )
        self.scheduler = make_scheduler(self.optimizer, self.schedule)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.wall_time = 0.0

    # ------------------------------------------------------------------ checkpoints

    @property
    def checkpoint_path(self) -> Path | None:
        return self.out_dir / "checkpoint.pt" if self.out_dir is not None else None

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "task": self.task.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "loader": self.loader.state_dict(),
            "rng": _rng_state(),
            "history": self.history,
            "wall_time": self.wall_time,
        }

    def save_checkpoint(self) -> None:
        if self.checkpoint_path is None or not distributed.is_main():
            return
        buffer = io.BytesIO()
        torch.save(self.state_dict(), buffer)  # plain data only: read back with weights_only=True

        def write_private(p: Path) -> None:
            p.write_bytes(buffer.getvalue())
            make_private(p)  # training state is the user's

        atomic_write(self.checkpoint_path, write_private)
        self.write_logs()

    def load_checkpoint(self, path: str | Path | None = None) -> None:
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None or not path.is_file():
            raise DataError(f"No checkpoint to resume from at {path}.", hint="Run without --resume to start afresh.")
        state = read_checkpoint(path, map_location=self.device)
        self.task.load_state_dict(state["task"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.loader.load_state_dict(state["loader"])
        _set_rng_state(state["rng"])
        self.step = int(state["step"])
        self.history = list(state["history"])
        self.wall_time = float(state.get("wall_time", 0.0))
        log.info("resumed from %s at step %d", path, self.step)

    def write_logs(self) -> None:
        if self.out_dir is None or not distributed.is_main() or not self.history:
            return
        keys: list[str] = []
        for row in self.history:
            keys += [k for k in row if k not in keys]

        def write_csv(p: Path) -> None:
            with p.open("w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=keys)
                writer.writeheader()
                writer.writerows(self.history)

        atomic_write(self.out_dir / "log.csv", write_csv)
        summary = {"steps": self.step, "wall_time_s": self.wall_time, "history": self.history}
        write_json(self.out_dir / "log.json", summary)

    # ------------------------------------------------------------------ training

    def train_step(self, batch: Any) -> dict[str, float]:
        self.model.train()
        batch = _to_device(batch, self.device)
        with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.use_amp):
            out = self.model(batch)
        loss, logs = (out if isinstance(out, tuple) else (out, {}))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"Loss is {loss.item()} at step {self.step}; lower the learning rate.")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        row = {"step": self.step + 1, "loss": float(loss.detach()), "lr": self.optimizer.param_groups[0]["lr"]}
        if self.cfg.grad_clip:
            self.scaler.unscale_(self.optimizer)
            norm = torch.nn.utils.clip_grad_norm_(self.task.parameters(), self.cfg.grad_clip)
            row["grad_norm"] = float(norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1
        row.update({k: float(v) for k, v in logs.items()})
        return row

    def run(self, resume: bool = False, stop_at: int | None = None) -> list[dict[str, float]]:
        """Train until ``cfg.steps`` (or ``stop_at``); returns the per-step log rows."""
        if resume:
            self.load_checkpoint()
        else:
            seed_everything(self.cfg.seed + distributed.rank())
        end = self.cfg.steps if stop_at is None else min(stop_at, self.cfg.steps)
        bar = progress(total=end, desc="train", unit="step", enable=None if distributed.is_main() else False)
        bar.update(self.step)
        started = time.perf_counter()
        last = started
        while self.step < end:
            row = self.train_step(self.loader.next())
            now = time.perf_counter()
            self.wall_time += now - last
            last = now
            row["time_s"] = round(self.wall_time, 3)
            self.history.append(row)
            bar.update(1)
            if self.step % max(1, self.cfg.log_every) == 0 or self.step == end:
                bar.set_postfix(loss=f"{row['loss']:.4f}", lr=f"{row['lr']:.2e}")
                log.debug("step %d loss %.5f", self.step, row["loss"])
            if self.cfg.checkpoint_every and self.step % self.cfg.checkpoint_every == 0 and self.step < end:
                self.save_checkpoint()
        bar.close()
        self.save_checkpoint()
        return self.history

    def mean_loss(self, last: int = 50) -> float:
        rows = self.history[-last:]
        return math.fsum(r["loss"] for r in rows) / max(1, len(rows))
