"""`siamkit eval --model`: layouts (omniglot, market, pairs), protocols, headline, metrics.json and plots."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from conftest import shared_path

from siamkit.cli import main as _main
from siamkit.errors import ConfigError, DataError
from siamkit.eval.metric import protocols as P
from siamkit.eval.metric.oneshot import within_group_trials


def run_cli(argv, capsys):
    """Run the CLI in-process; returns (exit code, stdout lines, stderr)."""
    with pytest.raises(SystemExit) as info:
        _main(argv)
    captured = capsys.readouterr()
    return info.value.code or 0, captured.out.strip().splitlines(), captured.err


def _blob(rng, size=(24, 24), colour=False):
    base = rng.integers(0, 255, (*size, 3) if colour else size)
    return lambda: np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- protocols


def test_verification_pairs_with_forgeries_score_same_identity_pairs_only():
    emb = np.arange(12, dtype=float).reshape(6, 2)
    labels = np.array([0, 0, 0, 1, 1, 1])
    genuine = np.array([True, True, False, True, True, False])
    d, same = P.verification_pairs(emb, labels, genuine)
    # per identity: 1 genuine-genuine + 2 genuine-forgery pairs; no cross-identity, no forgery-forgery pairs
    assert same.tolist().count(True) == 2 and same.tolist().count(False) == 4
    d_all, same_all = P.verification_pairs(emb, labels)
    assert d_all.size == 15 and same_all.sum() == 6


def test_within_group_trials_follow_lakes_rules():
    labels = np.repeat(np.arange(60), 4)
    groups = labels // 20  # three alphabets of 20 characters
    drawers = np.tile(np.arange(4), 60)
    trials = within_group_trials(labels, groups, ways=5, shots=1, trials=200, seed=1, drawers=drawers)
    assert len(trials) == 200
    for support, query, answer in trials:
        assert len(set(labels[support])) == 5 and len(set(groups[support])) == 1
        assert groups[query] == groups[support[0]] and query not in support
        assert labels[query] == labels[support[answer]] and drawers[query] != drawers[support[answer]]
    assert len({(tuple(s), q) for s, q, _ in trials}) > 150  # random, not one repeated trial
    with pytest.raises(DataError, match="No group has 21 classes"):
        within_group_trials(labels, groups, ways=21)


def test_oneshot_trials_perfect_and_random_embeddings():
    labels = np.repeat(np.arange(40), 3)
    groups = labels // 20
    perfect = np.eye(40)[labels] + 0.01 * np.random.default_rng(0).normal(size=(120, 40))
    assert P.oneshot_trials(perfect, labels, groups, trials=300)["accuracy"] == 1.0
    noise = np.random.default_rng(1).normal(size=(120, 8))
    acc = P.oneshot_trials(noise, labels, groups, trials=600)["accuracy"]
    assert acc < 0.15  # chance is 1/20


def test_lake_runs_swap_uses_the_other_drawer_as_support():
    support = np.eye(3)
    queries = np.array([[0, 0.9, 0.1], [0.2, 0, 1.0], [1.0, 0, 0]])  # answers 1, 2, 0
    answers = np.array([1, 2, 0])
    assert P.lake_runs([(support, queries, answers)])["accuracy"] == 1.0
    swapped = P.lake_runs([(support, queries, answers)], swap=True)
    assert swapped["accuracy"] == 1.0 and swapped["trials"] == 3
    # a support image closer to a wrong test item is wrong only in the swapped direction
    queries2 = np.array([[0.7, 0.9, 0], [0, 0, 1.0], [0, -1.0, -1.0]])
    assert P.lake_runs([(support, queries2, answers)])["accuracy"] == 1.0
    assert P.lake_runs([(support, queries2, answers)], swap=True)["accuracy"] == pytest.approx(2 / 3)


def test_reid_metrics_perfect_gallery():
    q = np.eye(3)
    g = np.repeat(np.eye(3), 2, axis=0)
    m = P.reid_metrics(q, g, [1, 2, 3], [1, 1, 2, 2, 3, 3], [0, 0, 0], [1] * 6, rerank=False, curve=True)
    assert m["plain"]["rank1"] == 1.0 and m["plain"]["mAP"] == 1.0 and len(m["plain"]["cmc"]) == 6


# --------------------------------------------------------------------------- the command


def _pairs_folder(root):
    rng = np.random.default_rng(0)
    for i in range(4):
        make = _blob(rng)
        (root / f"p{i}").mkdir(parents=True)
        for k in range(3):
            cv2.imwrite(str(root / f"p{i}" / f"{k}.png"), make())
    return root


def test_eval_pairs_writes_metrics_roc_and_headline(tmp_path, capsys):
    data = _pairs_folder(tmp_path / "faces")
    code, out, _ = run_cli(["eval", "--model", "baseline:pixels", "--dataset", f"pairs:{data}",
                            "--out", str(tmp_path / "ev")], capsys)
    assert code == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert out[-1] == f"EER {metrics['eer']:.3f}  AUC {metrics['auc']:.3f}"
    assert metrics["num_genuine_pairs"] == 4 * 3 and metrics["num_impostor_pairs"] == 66 - 12
    assert metrics["impostors"] == "other identities" and metrics["auc"] > 0.9  # four well-separated blobs
    assert (tmp_path / "ev" / "roc.png").stat().st_size > 1000


def test_eval_pairs_forgeries_are_the_impostors(tmp_path, capsys):
    rng = np.random.default_rng(1)
    for writer in ("w1", "w2"):
        make = _blob(rng, (20, 40))
        (tmp_path / "sig" / writer).mkdir(parents=True)
        for k in range(3):
            cv2.imwrite(str(tmp_path / "sig" / writer / f"{writer}-G-{k}.png"), make())
        cv2.imwrite(str(tmp_path / "sig" / writer / f"{writer}-F-1.png"), make())
    (tmp_path / "sig" / "w1_forg").mkdir()
    cv2.imwrite(str(tmp_path / "sig" / "w1_forg" / "x.png"), _blob(rng, (20, 40))())
    code, _, _ = run_cli(["eval", "-m", "baseline:pixels", "-d", f"pairs:{tmp_path / 'sig'}", "-o",
                          str(tmp_path / "ev")], capsys)
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert code == 0 and m["identities"] == ["w1", "w2"]
    # w1: 3 genuine → 3 genuine pairs, 3×2 forgeries; w2: 3 genuine pairs, 3×1
    assert m["num_genuine_pairs"] == 6 and m["num_impostor_pairs"] == 9
    assert m["impostors"] == "skilled forgeries of the same identity"


def test_eval_market_layout_and_errors(tmp_path, capsys):
    rng = np.random.default_rng(2)
    for split in ("query", "bounding_box_test"):
        (tmp_path / "m" / split).mkdir(parents=True)
    for pid in (1, 2, 3):
        make = _blob(rng, (32, 16), colour=True)
        cv2.imwrite(str(tmp_path / "m" / "query" / f"{pid:04d}_c1s1_000001_00.jpg"), make())
        for k in range(2):
            cv2.imwrite(str(tmp_path / "m" / "bounding_box_test" / f"{pid:04d}_c2s1_00000{k}_00.jpg"), make())
    code, out, _ = run_cli(["eval", "-m", "baseline:histogram", "-d", f"market:{tmp_path / 'm'}", "-o",
                            str(tmp_path / "ev"), "--option", "rerank=false"], capsys)
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert code == 0 and out[-1] == f"rank-1 {m['plain']['rank1']:.3f}  mAP {m['plain']['mAP']:.3f}"
    assert m["num_query"] == 3 and m["num_gallery"] == 6 and "re_ranked" not in m
    assert (tmp_path / "ev" / "cmc.png").is_file()
    # wrong layout: one error naming what was expected and what was found, exit status 2
    code, _, err = run_cli(["eval", "-m", "baseline:histogram", "-d", f"market:{tmp_path / 'ev'}"], capsys)
    assert code == 2 and "lacks query/ and bounding_box_test/" in err and "metrics.json" in err
    assert "Traceback" not in err
    code, _, err = run_cli(["eval", "-m", "baseline:pixels", "-d", f"omniglot:{tmp_path / 'm'}"], capsys)
    assert code == 2 and "neither Omniglot alphabets nor Lake's runs" in err and "bounding_box_test/" in err
    code, _, err = run_cli(["eval", "-m", "baseline:pixels", "-d", f"pairs:{tmp_path}", "--option", "ways=3"],
                           capsys)
    assert code == 2 and "Unknown option(s) for pairs: ways" in err


def test_eval_omniglot_folder_trials_and_grid(tmp_path, capsys):
    rng = np.random.default_rng(3)
    for alphabet in ("Alpha", "Beta"):
        for c in range(6):
            make = _blob(rng, (28, 28))
            folder = tmp_path / "omni" / alphabet / f"character{c + 1:02d}"
            folder.mkdir(parents=True)
            for drawer in range(1, 4):
                cv2.imwrite(str(folder / f"{c:04d}_{drawer:02d}.png"), make())
    code, out, _ = run_cli(["eval", "-m", "baseline:pixels", "-d", f"omniglot:{tmp_path / 'omni'}", "-o",
                            str(tmp_path / "ev"), "--option", "ways=5", "--option", "trials=50"], capsys)
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert code == 0 and m["trials"] == 50 and m["ways"] == 5 and m["alphabets"] == ["Alpha", "Beta"]
    assert m["accuracy"] > 0.9 and out[-1].startswith(f"accuracy {m['accuracy']:.3f}")
    assert (tmp_path / "ev" / "trials.png").stat().st_size > 1000


def test_eval_lake_runs_with_a_zoo_model(tmp_path, capsys):
    runs = shared_path("metric", "omniglot", "all_runs.zip")
    import siamkit.nn  # noqa: F401
    from siamkit.config import MODELS
    from siamkit.zoo import save_model

    torch.manual_seed(0)
    net = MODELS.build("embed_smallconv", in_channels=1, input_size=(28, 28), widths=(4, 8), embed_dim=8)
    meta = {"input_size": [28, 28], "channels": 1, "invert": True, "normalize": {"mean": [0.0], "std": [1.0]},
            "threshold": 0.5}
    path = save_model(net, tmp_path / "tiny.safetensors", "embed_smallconv",
                      {"in_channels": 1, "input_size": [28, 28], "widths": [4, 8], "embed_dim": 8}, meta)
    code, out, _ = run_cli(["eval", "-m", str(path), "-d", f"omniglot:{runs}", "-o", str(tmp_path / "ev"),
                            "--option", "swap=true", "--option", "plot_trials=2"], capsys)
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert code == 0 and m["trials"] == 400 and len(m["per_run"]) == 20 and m["swapped"]["trials"] == 400
    assert 0.0 <= m["accuracy"] <= 1.0 and out[-1].startswith("accuracy")


def test_eval_refuses_tracker_and_model_together(capsys):
    code, _, err = run_cli(["eval", "-t", "siamfc", "-m", "baseline:pixels", "-d", "pairs:."], capsys)
    assert code == 2 and "either --tracker" in err
    with pytest.raises(ConfigError, match="KIND:PATH"):
        from siamkit.eval.metric.models import parse_dataset

        parse_dataset("faces:.")


def test_lake_runs_read_the_same_from_the_zip_and_an_unpacked_folder(tmp_path):
    import zipfile

    from siamkit.data import identities as ids

    archive = shared_path("metric", "omniglot", "all_runs.zip")
    with zipfile.ZipFile(archive) as z:
        z.extractall(tmp_path / "unpacked", [n for n in z.namelist() if n.startswith(("run01/", "run02/"))])
    assert ids.omniglot_layout(tmp_path / "unpacked") == "runs" and ids.omniglot_layout(archive) == "runs"
    folder = ids.omniglot_runs(tmp_path / "unpacked")
    zipped = ids.omniglot_runs(archive)[:2]
    assert [r.name for r in folder] == ["run01", "run02"]
    for a, b in zip(folder, zipped, strict=True):
        assert np.array_equal(a.support, b.support) and np.array_equal(a.queries, b.queries)
        assert np.array_equal(a.answers, b.answers) and sorted(a.answers.tolist()) == list(range(20))
