"""`siamkit train` end to end on a generated image-folder dataset, and `siamkit verify` with the shipped ORL model."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import yaml
from conftest import shared_path

from siamkit.cli import main as _main
from siamkit.errors import ConfigError, RegistryError


def main(argv):
    """Run the CLI in-process; a successful command exits with status 0."""
    with pytest.raises(SystemExit) as exit_info:
        _main(argv)
    assert exit_info.value.code in (0, None)


def _dataset(root, identities=6, per=4):
    rng = np.random.default_rng(0)
    for i in range(identities):
        base = rng.integers(0, 255, (20, 20))
        (root / f"id{i}").mkdir(parents=True)
        for k in range(per):
            img = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / f"id{i}" / f"{k}.png"), img)
    return root


def _config(tmp_path, **extra):
    cfg = {
        "task": "metric",
        "name": "tiny",
        "data": {"kind": "image_folder", "root": str(_dataset(tmp_path / "data")), "input_size": [16, 16],
                 "test_identities": 2, "val_identities": 2, "rotation": 5.0, "calibration_images": 16},
        "architecture": "embed_smallconv",
        "model": {"widths": [4, 8], "embed_dim": 8},
        "loss": {"name": "batch_hard_triplet", "margin": 0.2},
        "p": 2, "k": 2,
        "train": {"steps": 4, "lr": 0.01, "checkpoint_every": 2, "seed": 3},
        "results": str(tmp_path / "results.json"),
        "ship": {"name": "tiny_model", "dir": str(tmp_path / "zoo"), "half": True},
        **extra,
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_train_cli_runs_resumes_and_ships(tmp_path, capsys):
    config = _config(tmp_path)
    main(["train", "--config", str(config), "--out", str(tmp_path / "run"), "--publish"])
    results = json.loads((tmp_path / "results.json").read_text())
    m = results["validation"]
    assert results["steps"] == 4 and 0.0 <= m["auc"] <= 1.0 and 0.0 <= m["eer"] <= 1.0
    assert m["num_genuine_pairs"] == 2 * 6 and m["num_impostor_pairs"] == 4 * 4  # 2 validation ids x 4 images
    # validation ids come from the training side; the 2 test ids (id4, id5) are never read
    assert m["identities"] == ["id2", "id3"] and results["training_identities"] == 2
    assert "metrics" not in results
    losses = [r["loss"] for r in json.loads((tmp_path / "run" / "log.json").read_text())["history"]]
    assert len(losses) == 4
    sidecar = yaml.safe_load((tmp_path / "zoo" / "tiny_model.yaml").read_text())
    assert sidecar["architecture"] == "embed_smallconv" and sidecar["meta"]["input_size"] == [16, 16]
    assert sidecar["meta"]["threshold"] == pytest.approx(results["threshold"])
    assert "command" in sidecar["meta"]["recipe"]
    assert sidecar["meta"]["recipe"]["seed"] == 3 and sidecar["meta"]["validation"]["identities"] == ["id2", "id3"]
    # resuming a finished run trains no further and reproduces the same log
    main(["train", "--config", str(config), "--out", str(tmp_path / "run"), "--resume", "--no-publish"])
    again = [r["loss"] for r in json.loads((tmp_path / "run" / "log.json").read_text())["history"]]
    assert again == losses
    # the shipped model verifies two of its own images
    img = tmp_path / "data" / "id0"
    main(["verify", str(img / "0.png"), str(img / "1.png"), "--model", str(tmp_path / "zoo" / "tiny_model.safetensors"),
          "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["distance"] >= 0 and out["same"] == (out["distance"] <= sidecar["meta"]["threshold"])


def test_train_config_errors(tmp_path):
    from siamkit.train.tasks import run_experiment

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    with pytest.raises(ConfigError, match="no 'task' key"):
        run_experiment(bad)
    bad.write_text("task: nonsense\n")
    with pytest.raises(RegistryError, match="Unknown training task 'nonsense'"):
        run_experiment(bad)
    with pytest.raises(ConfigError, match="unknown key"):
        run_experiment(_config(tmp_path, typo_key=1))


def test_verify_two_orl_images_with_the_default_face_model(capsys):
    from siamkit.cli.verify import verify_pair
    from siamkit.zoo import PACKAGE_ZOO

    root = shared_path("metric", "orl_faces")
    if not (PACKAGE_ZOO / "faces.safetensors").is_file():
        pytest.skip("shipped faces model not present")
    main(["verify", str(root / "s40" / "1.pgm"), str(root / "s33" / "1.pgm"), "--json"])
    out = json.loads(capsys.readouterr().out.strip())
    assert out["model"] == "faces" and out["same"] == (out["distance"] <= out["threshold"])
    main(["verify", str(root / "s40" / "1.pgm"), str(root / "s33" / "1.pgm")])
    assert "threshold" in capsys.readouterr().out
    # s31..s40 were never seen in training or calibration: genuine (image 1 vs 2 of a subject) and
    # impostor (image 1 of consecutive subjects) pairs, decided at the shipped calibrated threshold
    subjects = [f"s{i}" for i in range(31, 41)]
    genuine = [verify_pair(root / s / "1.pgm", root / s / "2.pgm") for s in subjects]
    others = subjects[1:] + subjects[:1]
    impostor = [verify_pair(root / a / "1.pgm", root / b / "1.pgm") for a, b in zip(subjects, others, strict=True)]
    assert np.mean([g["distance"] for g in genuine]) < np.mean([i["distance"] for i in impostor])
    correct = sum(g["same"] for g in genuine) + sum(not i["same"] for i in impostor)
    assert correct >= 15  # >= 75 % of 20 decisions (the shipped model's test accuracy is in its sidecar)
