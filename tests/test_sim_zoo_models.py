"""The shipped (fp16) zoo models reproduce the numbers recorded in their sidecars on the shared data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import shared_path

from siamkit.zoo import PACKAGE_ZOO


def _load(name):
    from siamkit.zoo import load_model

    if not (PACKAGE_ZOO / f"{name}.safetensors").is_file():
        pytest.skip(f"shipped {name} model not present")
    return load_model(name, device="cpu")


def _embed(model, meta, images):
    from siamkit.experiments.preprocess import normalise, prepare

    batch = prepare(list(images), meta["input_size"], meta["channels"])
    if meta.get("invert"):
        batch = 255 - batch
    with torch.no_grad():
        return model(normalise(batch, meta["normalize"]["mean"], meta["normalize"]["std"])).numpy()


def test_shipped_omniglot_model_one_shot_accuracy():
    from siamkit.data.identities import omniglot_runs

    runs = omniglot_runs(shared_path("metric", "omniglot"))
    model, entry = _load("omniglot_koch")
    correct = 0
    for run in runs:
        s, q = _embed(model, entry.meta, run.support), _embed(model, entry.meta, run.queries)
        d = ((q[:, None, :] - s[None, :, :]) ** 2).sum(-1)  # independent 1-NN in numpy
        correct += int((d.argmin(1) == run.answers).sum())
    accuracy = correct / 400
    assert accuracy == pytest.approx(entry.meta["metrics"]["accuracy"], abs=0.01)  # fp16 weights: within 4 trials
    assert accuracy > 0.8  # far above 1-NN on pixels (21.7 %) and Modified-Hausdorff 1-NN (61.2 %)
    assert (PACKAGE_ZOO / "omniglot_koch.safetensors").stat().st_size < 3_000_000


def test_shipped_orl_model_test_auc():
    from siamkit.data.identities import orl_faces
    from siamkit.eval.metric.verification import roc_curve

    ds = orl_faces(shared_path("metric", "orl_faces"))
    model, entry = _load("orl_faces")
    test = ds.split_identities(entry.meta["metrics"]["test_identities"])
    emb = _embed(model, entry.meta, [test.read(i) for i in range(len(test))])
    i, j = np.triu_indices(len(emb), 1)
    d = np.linalg.norm(emb[i] - emb[j], axis=1)
    same = test.labels[i] == test.labels[j]
    # AUC as the probability that a genuine pair is closer than an impostor pair (Mann-Whitney)
    g, n = d[same], d[~same]
    auc = ((g[:, None] < n[None, :]).mean() + 0.5 * (g[:, None] == n[None, :]).mean())
    assert auc == pytest.approx(entry.meta["metrics"]["auc"], abs=0.005)
    far, tar, _ = roc_curve(-d, same)
    assert tar.max() == 1.0 and far.min() == 0.0
    acc = ((d <= entry.meta["threshold"]) == same).mean()
    assert acc == pytest.approx(entry.meta["metrics"]["accuracy_at_calibrated_threshold"], abs=0.005)
    assert (PACKAGE_ZOO / "orl_faces.safetensors").stat().st_size < 3_000_000
