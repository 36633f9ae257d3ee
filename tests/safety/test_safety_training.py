"""Training: plain-data checkpoints, publishing only when asked, clear config errors (issue 17 rows 1, 2, 11, 12)."""

from __future__ import annotations

import stat

import cv2
import numpy as np
import pytest
import torch
import yaml

from siamkit.cli import main
from siamkit.config import from_dict
from siamkit.errors import ConfigError, DataError, WeightsError
from siamkit.train.loader import RandomBatches, StepLoader
from siamkit.train.trainer import Task, TrainConfig, Trainer


class _Line(Task):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(3))

    def training_step(self, batch):
        return ((self.w - batch) ** 2).mean()


def _trainer(out, steps=4):
    loader = StepLoader(RandomBatches(8, 2, 0), lambda idx, rng: torch.tensor(rng.normal(size=3), dtype=torch.float32),
                        0)
    cfg = TrainConfig(steps=steps, lr=0.1, optimizer="sgd", schedule="constant", amp=False)
    return Trainer(_Line(), loader, cfg, out, device="cpu")


def test_a_crafted_checkpoint_cannot_run_code_on_resume(tmp_path, payload):
    code_object, marker = payload
    with (tmp_path / "checkpoint.pt").open("wb") as fh:
        torch.save({"task": {}, "step": 0, "x": code_object}, fh)
    trainer = _trainer(tmp_path)
    with pytest.raises(DataError, match="not a plain-data siamkit checkpoint"):
        trainer.run(resume=True)
    assert not marker.exists()


def test_checkpoints_round_trip_as_plain_data_and_are_private(tmp_path):
    first = _trainer(tmp_path / "a")
    first.run(stop_at=2)
    path = tmp_path / "a" / "checkpoint.pt"
    torch.load(path, weights_only=True)  # the safe loader reads every part of it
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    resumed = _trainer(tmp_path / "a")
    resumed.run(resume=True)
    straight = _trainer(tmp_path / "b")
    straight.run()
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in straight.history]


def test_read_checkpoint_refuses_pickled_code(tmp_path, payload):
    from siamkit.train.trainer import read_checkpoint

    code_object, marker = payload
    torch.save({"task": {}, "x": code_object}, tmp_path / "checkpoint.pt")
    with pytest.raises(DataError):
        read_checkpoint(tmp_path / "checkpoint.pt")
    assert not marker.exists()


# --------------------------------------------------------------------------- publishing
def _metric_config(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(6):
        base = rng.integers(0, 255, (20, 20))
        (tmp_path / "data" / f"id{i}").mkdir(parents=True)
        for k in range(4):
            img = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(tmp_path / "data" / f"id{i}" / f"{k}.png"), img)
    cfg = {
        "task": "metric", "name": "tiny",
        "data": {"kind": "image_folder", "root": str(tmp_path / "data"), "input_size": [16, 16],
                 "test_identities": 2, "calibration_images": 16},
        "architecture": "embed_smallconv", "model": {"widths": [4, 8], "embed_dim": 8},
        "loss": {"name": "batch_hard_triplet", "margin": 0.2}, "p": 2, "k": 2,
        "train": {"steps": 2, "lr": 0.01},
        "results": str(tmp_path / "published" / "results.json"),
        "ship": {"name": "tiny_model", "dir": str(tmp_path / "zoo")},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_training_publishes_only_with_the_publish_flag(tmp_path):
    config = _metric_config(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(["train", "--config", str(config), "--out", str(tmp_path / "run")])
    assert info.value.code in (0, None)
    assert (tmp_path / "run" / "results.json").is_file()
    assert not (tmp_path / "published").exists() and not (tmp_path / "zoo").exists()
    with pytest.raises(SystemExit):
        main(["train", "--config", str(config), "--out", str(tmp_path / "run2"), "--publish"])
    assert (tmp_path / "published" / "results.json").is_file()
    assert sorted(p.name for p in (tmp_path / "zoo").iterdir()) == ["tiny_model.safetensors", "tiny_model.yaml"]


def test_every_training_runner_publishes_only_when_asked():
    """Every runner ``siamkit train`` can reach (the task registry) defaults to ``publish=False``."""
    import inspect

    from siamkit.train.tasks import TASKS, _ensure_registered

    _ensure_registered()
    assert len(TASKS.names()) >= 3
    for name in TASKS.names():
        runner = TASKS.get(name)
        assert inspect.signature(runner).parameters["publish"].default is False, name


def test_a_failed_zoo_save_leaves_the_earlier_entry_intact(tmp_path):
    from siamkit import zoo

    model = torch.nn.Linear(2, 2)
    path = zoo.save_model(model, tmp_path / "m.safetensors", "linear", {}, {"note": "first"})
    before = (path.read_bytes(), path.with_suffix(".yaml").read_text())
    with torch.no_grad():
        model.weight.fill_(7.0)
    with pytest.raises(WeightsError, match="YAML"):
        zoo.save_model(model, path, "linear", {}, {"bad": np.float32(1.5)})  # not plain YAML
    assert (path.read_bytes(), path.with_suffix(".yaml").read_text()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors", "m.yaml"]


# --------------------------------------------------------------------------- values
@pytest.mark.parametrize("train", [{"steps": 0}, {"lr": float("nan")}, {"lr": -1.0}, {"steps": 10, "log_every": 0}])
def test_nonsense_training_settings_are_refused(train):
    with pytest.raises(ConfigError, match="train\\."):
        from_dict(TrainConfig, train, where="train")


def test_yaml_exponent_without_a_dot_is_a_float():
    data = yaml.safe_load("steps: 5\nlr: 1e-3\ngrad_clip: 5e1\n")
    assert data["lr"] == "1e-3"  # PyYAML's reading: YAML 1.1 floats need a dot
    cfg = from_dict(TrainConfig, data, where="train")
    assert cfg.lr == 1e-3 and cfg.grad_clip == 50.0
    with pytest.raises(ConfigError, match="expected a number"):
        from_dict(TrainConfig, {"lr": "fast"}, where="train")
    with pytest.raises(ConfigError, match="finite"):
        from_dict(TrainConfig, {"lr": "nan"}, where="train")


def test_weights_holding_nan_are_refused(tmp_path):
    from siamkit import zoo

    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.bias[0] = float("nan")
    path = zoo.save_model(model, tmp_path / "nan.safetensors", "linear")
    with pytest.raises(WeightsError, match="NaN"):
        zoo.load_weights(torch.nn.Linear(2, 2), path)


def test_verify_refuses_a_nan_threshold(cli):
    code, _, err = cli("verify", "a.png", "b.png", "--threshold", "nan")
    assert code == 2 and "threshold" in err and "Traceback" not in err


def test_train_resume_from_the_command_line_refuses_a_crafted_checkpoint(tmp_path, cli, payload):
    (code_object, marker), config, run = payload, _metric_config(tmp_path), tmp_path / "run"
    assert cli("train", "--config", config, "--out", run)[0] == 0
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    torch.save({**state, "step": 1, "x": code_object}, run / "checkpoint.pt")
    code, _, err = cli("train", "--config", config, "--out", run, "--resume")
    assert code == 2 and "not a plain-data siamkit checkpoint" in err and err.count("\n") == 1, err
    assert "False" not in err  # no advice to load it unsafely
    assert not marker.exists()


def test_every_benchmark_writes_benchmarks_results_only_with_publish(tmp_path, monkeypatch):
    """A benchmark run writes runs/benchmarks/ unless ``--publish`` asks for benchmarks/results/."""
    from pathlib import Path

    bench = Path(__file__).resolve().parents[2] / "benchmarks"
    monkeypatch.syspath_prepend(str(bench))
    import harness

    parse = harness.command_line("a benchmark").parse_args
    assert harness.output_path(parse([]), "x.json") == harness.RUNS / "x.json"
    assert harness.output_path(parse(["--publish"]), "x.json") == harness.RESULTS / "x.json"
    assert harness.output_path(parse(["--out", str(tmp_path / "y.json")]), "x.json") == tmp_path / "y.json"
    assert harness.RESULTS not in harness.RUNS.parents
    # readme_tables reads the results (writes README.md); harness and heldout are imported, not run
    scripts = [p for p in sorted(bench.glob("*.py")) if p.name not in ("readme_tables.py", "harness.py", "heldout.py")]
    assert len(scripts) >= 8
    missing = [p.name for p in scripts if "harness.output_path(" not in p.read_text()
               and '"--publish"' not in p.read_text()]
    assert not missing, f"these may write benchmarks/results/ without --publish: {missing}"
