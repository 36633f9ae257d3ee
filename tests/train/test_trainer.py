"""Trainer: schedules, exact resume (identical loss curves), and 2-process gloo DDP gradient averaging."""

from __future__ import annotations

import math
import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from siamkit.errors import ConfigError, DataError
from siamkit.train import distributed
from siamkit.train.loader import RandomBatches, StepLoader
from siamkit.train.schedule import Schedule
from siamkit.train.trainer import Task, TrainConfig, Trainer


class ToyTask(Task):
    """Regression with dropout (exercises the torch RNG) on randomly augmented data (numpy RNG)."""

    def __init__(self, dropout: float = 0.3):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Dropout(dropout), nn.Linear(16, 1))

    def training_step(self, batch):
        x, y = batch
        return nn.functional.mse_loss(self.net(x).squeeze(1), y), {"mean_y": y.mean()}


DATA_X = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
DATA_Y = (DATA_X @ np.array([1.0, -2.0, 0.5, 0.0], np.float32)).astype(np.float32)


def make_batch(indices, rng, noise=0.1):
    x = DATA_X[indices] + noise * rng.normal(size=(len(indices), 4)).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(DATA_Y[indices])


def _trainer(out, steps=12, checkpoint_every=0):
    torch.manual_seed(123)
    task = ToyTask()
    loader = StepLoader(RandomBatches(len(DATA_X), 8, seed=5), make_batch, seed=5)
    cfg = TrainConfig(steps=steps, lr=0.05, schedule="cosine", warmup_steps=3, grad_clip=1.0,
                      checkpoint_every=checkpoint_every, seed=7)
    return Trainer(task, loader, cfg, out_dir=out, device="cpu")


def test_resume_reproduces_the_uninterrupted_loss_curve(tmp_path):
    full = _trainer(tmp_path / "full").run()
    first = _trainer(tmp_path / "split")
    first.run(stop_at=7)  # 40 images / 8 = 5 batches per epoch: stops mid-epoch 2
    assert (tmp_path / "split" / "checkpoint.pt").is_file()
    # a fresh process-like state: different global RNG, fresh model init
    torch.manual_seed(999)
    np.random.seed(999)
    second = _trainer(tmp_path / "split")
    resumed = second.run(resume=True)
    assert [r["loss"] for r in resumed] == [r["loss"] for r in full]
    assert [r["lr"] for r in resumed] == [r["lr"] for r in full]
    for a, b in zip(second.task.state_dict().values(), _final_state(tmp_path / "full").values(), strict=True):
        assert torch.equal(a, b)
    log_csv = (tmp_path / "split" / "log.csv").read_text().splitlines()
    assert log_csv[0].startswith("step,loss,lr") and len(log_csv) == 13
    # the curve really depends on the RNG: a different seed changes it
    other = _trainer(tmp_path / "other")
    other.cfg = TrainConfig(**{**other.cfg.__dict__, "seed": 8})
    assert [r["loss"] for r in other.run()] != [r["loss"] for r in full]


def _final_state(out):
    return torch.load(out / "checkpoint.pt", weights_only=False)["task"]


def test_periodic_checkpoints_and_missing_checkpoint(tmp_path):
    t = _trainer(tmp_path / "a", steps=4, checkpoint_every=2)
    t.run()
    assert torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)["step"] == 4
    with pytest.raises(DataError, match="No checkpoint"):
        _trainer(tmp_path / "b").run(resume=True)


def test_training_reduces_the_loss(tmp_path):
    t = _trainer(None, steps=60)
    rows = t.run()
    assert np.mean([r["loss"] for r in rows[-10:]]) < 0.5 * np.mean([r["loss"] for r in rows[:5]])


def test_schedules_match_hand_computed_values():
    cos = Schedule("cosine", total_steps=110, warmup_steps=10, warmup_factor=0.1, final_factor=0.0)
    assert cos(0) == pytest.approx(0.1) and cos(5) == pytest.approx(0.55) and cos(10) == pytest.approx(1.0)
    assert cos(60) == pytest.approx(0.5) and cos(110) == pytest.approx(0.0, abs=1e-12)
    step = Schedule("step", total_steps=100, step_size=30, gamma=0.1)
    assert [step(s) for s in (0, 29, 30, 61)] == pytest.approx([1, 1, 0.1, 0.01])
    logd = Schedule("log", total_steps=100, final_factor=0.01)
    assert logd(50) == pytest.approx(0.1) and logd(100) == pytest.approx(0.01)
    assert math.isclose(Schedule("constant")(500), 1.0)
    with pytest.raises(ConfigError):
        Schedule("linearish")


# ---------------------------------------------------------------------------- DDP (gloo, 2 processes)


class LinearTask(Task):
    def __init__(self, gather):
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.gather = gather

    def training_step(self, batch):
        x, y = batch
        emb = self.lin(x)
        if self.gather:  # a loss over the whole global batch: pairwise-distance energy
            emb = distributed.all_gather_with_grad(emb)
            y = distributed.all_gather_nograd(y)
            d = torch.cdist(emb, emb)
            same = (y[:, None] == y[None, :]).float()
            return (same * d.pow(2) - (1 - same) * d).mean()
        return (emb.pow(2).sum(1) * y).mean()


STEPS = 4  # 'unfreeze' trains its backbone in the last two
XS = torch.arange(48, dtype=torch.float32).reshape(16, 3).sin()
YS = torch.tensor([0.0, 1.0] * 8)


def _batch(indices, rng):
    return XS[indices], YS[indices]


class UnfreezeTask(Task):
    """A 'backbone' frozen for the first two steps, then trained (the tracker tasks' schedule in miniature)."""

    changes_trainable = True

    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(3, 3)
        self.lin = nn.Linear(3, 2)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def training_step(self, batch):
        x, y = batch
        self.backbone.requires_grad_(int(self.step) >= 2)
        self.step += 1
        return (self.lin(self.backbone(x)).pow(2).sum(1) * y).mean()


def _task(kind):
    """'mean': per-sample loss; 'gather': a whole-batch loss; 'metric': the experiments' MetricTask + batch-hard;
    'unfreeze': part of the model frozen, then trained."""
    if kind == "unfreeze":
        return UnfreezeTask()
    if kind != "metric":
        return LinearTask(kind == "gather")
    import siamkit.losses.metric  # noqa: F401
    from siamkit.config import LOSSES
    from siamkit.train.metric import MetricTask

    class _Labels(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def forward(self, x):
            return self.lin(x)

    return MetricTask(_Labels(), LOSSES.build("batch_hard_triplet", margin=1.0), "embedding")


def _labelled_batch(indices, rng):
    return XS[indices], YS[indices].long()


def _ddp_worker(rank, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2")
    torch.set_num_threads(1)
    distributed.init_from_env("cpu")
    try:
        for kind in KINDS:
            torch.manual_seed(0)
            task = _task(kind)
            loader = StepLoader(RandomBatches(16, 8, seed=1), _labelled_batch if kind == "metric" else _batch, seed=1)
            trainer = Trainer(task, loader, TrainConfig(steps=STEPS, lr=0.1, optimizer="sgd", schedule="constant"),
                              device="cpu")
            assert isinstance(trainer.model, torch.nn.parallel.DistributedDataParallel)
            trainer.run()
            if rank == 0:
                torch.save(task.state_dict(), f"{out}.{kind}")
    finally:
        torch.distributed.destroy_process_group()


def _weight(kind):
    return "model.lin.weight" if kind == "metric" else "lin.weight"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "state"
    mp.spawn(_ddp_worker, args=(_free_port(), str(out)), nprocs=2, join=True)
    return {k: torch.load(f"{out}.{k}") for k in KINDS}


KINDS = ("mean", "gather", "metric", "unfreeze")


@pytest.mark.slow  # spawns two processes (each imports torch): a few seconds on an idle machine
@pytest.mark.parametrize("kind", KINDS)
def test_ddp_two_processes_equal_one_process_with_the_combined_batch(ddp_results, kind):
    torch.manual_seed(0)
    task = _task(kind)
    loader = StepLoader(RandomBatches(16, 8, seed=1), _labelled_batch if kind == "metric" else _batch, seed=1)
    Trainer(task, loader, TrainConfig(steps=STEPS, lr=0.1, optimizer="sgd", schedule="constant"), device="cpu").run()
    ddp_state = ddp_results[kind]
    # per-sample mean loss: DDP's gradient average over 2 half-batches equals the full-batch gradient;
    # gathered loss: the all-reduced backward of all_gather_with_grad gives the global-loss gradient.
    # Rank r holds items r, r+2, ... so the gathered order differs from the single batch, which the
    # permutation-invariant loss does not see.
    torch.manual_seed(0)
    start = _task(kind)
    assert not torch.allclose(task.state_dict()[_weight(kind)], start.state_dict()[_weight(kind)])  # weights moved
    for k, v in task.state_dict().items():
        torch.testing.assert_close(ddp_state[k], v, rtol=1e-5, atol=1e-6)
