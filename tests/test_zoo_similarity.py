"""The shipped (fp16) similarity models reproduce the test numbers their sidecars record, and beat the baselines.

Each check re-scores a small, fast part of a model's test split with independent numpy code (1-NN,
Mann-Whitney AUC) and compares with the sidecar's ``metrics`` (written once by
``benchmarks/similarity.py --publish``).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_path

from siamkit.zoo import PACKAGE_ZOO


def _load(name):
    from siamkit.eval.metric.models import load_embedder
    from siamkit.zoo import resolve

    if not (PACKAGE_ZOO / f"{name}.safetensors").is_file():
        pytest.skip(f"shipped {name} model not present")
    entry = resolve(name)
    if "metrics" not in entry.meta:
        pytest.skip(f"{name} has not been scored on its test split yet")
    return load_embedder(name), entry


def _mann_whitney_auc(d, same):
    g, n = d[same], d[~same]
    return (g[:, None] < n[None, :]).mean() + 0.5 * (g[:, None] == n[None, :]).mean()


def test_shipped_omniglot_model_on_lakes_runs():
    from siamkit.data.identities import omniglot_runs
    from siamkit.eval.metric.protocols import raw_pixels

    runs = omniglot_runs(shared_path("metric", "omniglot"))
    embedder, entry = _load("omniglot")
    correct = pixels = 0
    for run in runs:
        s, q = embedder.embed(list(run.support)), embedder.embed(list(run.queries))
        d = ((q[:, None, :] - s[None, :, :]) ** 2).sum(-1)  # independent 1-NN in numpy
        correct += int((d.argmin(1) == run.answers).sum())
        ps, pq = raw_pixels(list(run.support)), raw_pixels(list(run.queries))
        pixels += int((((pq[:, None] - ps[None]) ** 2).sum(-1).argmin(1) == run.answers).sum())
    assert correct / 400 == pytest.approx(entry.meta["metrics"]["accuracy"], abs=0.0051)  # fp16: within 2 trials
    assert correct > 3 * pixels  # raw pixels 1-NN: ~22 %
    assert (PACKAGE_ZOO / "omniglot.safetensors").stat().st_size < 3_000_000


def _verification(name, root, identities):
    from siamkit.data.identities import pair_folder
    from siamkit.eval.metric.protocols import raw_pixels, verification_pairs

    embedder, entry = _load(name)
    ds = pair_folder(root).split_identities(identities)
    images = [ds.read(i) for i in range(len(ds))]
    genuine = np.array([it.genuine for it in ds.items])
    d, same = verification_pairs(embedder.embed(images), ds.labels, genuine)
    pixels, _ = verification_pairs(raw_pixels(images), ds.labels, genuine)
    return entry, d, same, _mann_whitney_auc(pixels, same)


def test_shipped_face_model_on_unseen_subjects():
    entry, d, same, pixel_auc = _verification("faces", shared_path("metric", "orl_faces"),
                                              [f"s{i}" for i in range(31, 41)])
    recorded = entry.meta["metrics"]
    assert same.sum() == 450 and (~same).sum() == 4500
    assert _mann_whitney_auc(d, same) == pytest.approx(recorded["auc"], abs=0.002)
    acc = ((d <= entry.meta["threshold"]) == same).mean()  # the threshold came from validation subjects
    assert acc == pytest.approx(recorded["accuracy_at_threshold"], abs=0.003)
    assert recorded["auc"] > pixel_auc + 0.02  # raw pixels: AUC ~0.91


def test_shipped_signature_model_on_unseen_writers():
    root = shared_path("metric", "signatures", "bhsig260_subset")
    entry, d, same, pixel_auc = _verification("signatures", root, ["Bengali/002", "Hindi/002"])
    assert same.sum() == 2 * 276 and (~same).sum() == 2 * 24 * 30  # genuine pairs vs skilled forgeries
    assert _mann_whitney_auc(d, same) == pytest.approx(entry.meta["metrics"]["auc"], abs=0.003)
    assert entry.meta["metrics"]["auc"] > pixel_auc + 0.05  # raw pixels: AUC ~0.63


def test_shipped_reid_model_beats_the_colour_histogram_on_a_few_test_ids():
    from siamkit.data import identities as ids
    from siamkit.eval.metric.protocols import hsv_stripe_histogram, reid_metrics

    root = shared_path("metric", "market1501_subset")
    embedder, entry = _load("reid")
    query, gallery = ids.market1501(root, "query"), ids.market1501(root, "bounding_box_test")
    keep = set(sorted(set(ids.pids(query).tolist()))[:8])  # 8 test ids: a few seconds on one thread
    qi = [i for i, p in enumerate(ids.pids(query)) if p in keep]
    gi = [i for i, p in enumerate(ids.pids(gallery)) if p in keep]
    q_img, g_img = [query.read(i) for i in qi], [gallery.read(i) for i in gi]
    args = (ids.pids(query)[qi], ids.pids(gallery)[gi], query.cameras[qi], gallery.cameras[gi])
    model = reid_metrics(embedder.embed(q_img), embedder.embed(g_img), *args, rerank=False)["plain"]
    hist = reid_metrics(hsv_stripe_histogram(q_img), hsv_stripe_histogram(g_img), *args, rerank=False)["plain"]
    assert model["mAP"] > hist["mAP"] and model["rank1"] >= hist["rank1"]
    assert entry.meta["metrics"]["rank1"] > 0.0 and 0.0 < entry.meta["metrics"]["mAP"] <= 1.0
