"""Gallery (FAISS) search against numpy brute force; persistence; approximate recall; errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from siamkit.config import MODELS
from siamkit.errors import ConfigError, DataError
from siamkit.index import Gallery, default_nlist, load_image_for


def _clustered(n, d, n_clusters, seed=0, noise=0.3, n_queries=0):
    """Points around random centres; optional queries drawn independently around the same centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, d))
    x = centres[rng.integers(0, n_clusters, n)] + noise * rng.normal(size=(n, d))
    if not n_queries:
        return x.astype(np.float32)
    q = centres[rng.integers(0, n_clusters, n_queries)] + noise * rng.normal(size=(n_queries, d))
    return x.astype(np.float32), q.astype(np.float32)


def _brute(x, q, metric, k):
    x, q = x.astype(np.float64), q.astype(np.float64)
    if metric == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    s = -((q[:, None] - x[None]) ** 2).sum(-1) if metric == "l2" else q @ x.T
    idx = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(s, idx, 1)


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_flat_search_equals_numpy_brute_force(metric):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 16)).astype(np.float32)
    q = rng.normal(size=(20, 16)).astype(np.float32)
    ids = [f"item{i}" for i in range(300)]
    meta = [{"row": i} for i in range(300)]
    g = Gallery.from_arrays(x, ids, meta, kind="flat", metric=metric)
    got_ids, scores, got_meta = g.search(q, k=7)
    idx, ref = _brute(x, q, metric, 7)
    assert got_ids.shape == (20, 7) and scores.shape == (20, 7)
    assert [[int(s[4:]) for s in row] for row in got_ids] == idx.tolist()
    np.testing.assert_allclose(scores, ref, rtol=1e-4, atol=1e-4)
    assert [[m["row"] for m in row] for row in got_meta] == idx.tolist()


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_save_load_round_trip(tmp_path, kind):
    x = _clustered(2000, 24, 40, seed=2)
    g = Gallery.from_arrays(
        x, [f"id{i}" for i in range(2000)], [{"i": i} for i in range(2000)], kind=kind, info={"model": "demo"}, nprobe=4
    )
    q = x[:15] + 0.01
    before = g.search(q, 5)
    g.save(tmp_path / "gal")
    g2 = Gallery.load(tmp_path / "gal")
    after = g2.search(q, 5)
    assert (g2.kind, g2.metric, g2.dim, len(g2), g2.info["model"]) == (kind, "cosine", 24, 2000, "demo")
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_allclose(before[1], after[1])
    assert before[2] == after[2]
    np.testing.assert_allclose(g2.vectors, g.vectors)


@pytest.mark.parametrize("kind,params", [("ivf", {"nprobe": 8}), ("hnsw", {"ef_search": 64})])
def test_approximate_recall_on_clustered_data(kind, params):
    x, q = _clustered(8000, 32, 100, seed=3, noise=0.5, n_queries=200)
    exact = Gallery.from_arrays(x, kind="flat", metric="l2")
    approx = Gallery.from_arrays(x, kind=kind, metric="l2", **params)
    truth, _, _ = exact.search(q, 10)
    got, _, _ = approx.search(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, got, strict=True)])
    assert recall >= 0.9, recall
    if kind == "ivf":
        assert approx.params["nlist"] == default_nlist(8000) == 205  # min(4·√N = 358, N/39 = 205)
        # scanning every cell is exact
        approx.set_params(nprobe=approx.params["nlist"])
        assert np.array_equal(approx.search(q, 10)[0], truth)


def test_errors_are_clear(tmp_path):
    g = Gallery.from_arrays(np.eye(4, dtype=np.float32))
    with pytest.raises(DataError, match="dimension 3 but the gallery holds 4"):
        g.search(np.ones((1, 3)), 2)
    with pytest.raises(DataError, match="empty"):
        Gallery(4).search(np.ones((1, 4)), 2)
    with pytest.raises(DataError, match="empty gallery"):
        Gallery.from_arrays(np.empty((0, 4)))
    with pytest.raises(DataError, match="NaN"):
        g.search(np.full((1, 4), np.nan), 1)
    with pytest.raises(ConfigError, match="kind"):
        Gallery(4, kind="lsh")
    with pytest.raises(DataError, match="not found"):
        Gallery.load(tmp_path / "nope")
    g.save(tmp_path / "g")
    (tmp_path / "g" / "ids.json").unlink()
    with pytest.raises(DataError, match="missing ids.json"):
        Gallery.load(tmp_path / "g")
    with pytest.raises(DataError, match="nlist=8 needs at least 8"):
        Gallery.from_arrays(np.eye(4, dtype=np.float32), kind="ivf", nlist=8)
    with pytest.raises(DataError, match="Image folder not found"):
        Gallery.from_folder(tmp_path / "missing", model=lambda paths: np.zeros((len(paths), 2)))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="No images"):
        Gallery.from_folder(tmp_path / "empty", model=lambda paths: np.zeros((len(paths), 2)))
    # k larger than the gallery is capped
    ids, scores, _ = g.search(np.eye(4)[:1], 10)
    assert ids.shape == (1, 4) and ids[0, 0] == "0"


class _TinyEmbed(nn.Module):
    """A random conv + linear embedding for tests (registered under a test-only name)."""

    def __init__(self, channels: int = 3, dim: int = 8):
        super().__init__()
        self.conv = nn.Conv2d(channels, 4, 3, stride=2)
        self.fc = nn.Linear(4, dim)

    def forward(self, x):
        return self.fc(self.conv(x).mean(dim=(2, 3)))


if "test_tiny_embed" not in MODELS:
    MODELS.register("test_tiny_embed")(_TinyEmbed)

META = {"input_size": [20, 16], "channels": 3, "normalize": {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]}}


def make_model_and_images(root):
    from siamkit.zoo import save_model

    torch.manual_seed(0)
    weights = save_model(_TinyEmbed(), root / "zoo" / "tiny.safetensors", "test_tiny_embed", {}, META)
    rng = np.random.default_rng(0)
    for person in ("alice", "bob"):
        (root / "imgs" / person).mkdir(parents=True)
        for i in range(3):
            cv2.imwrite(str(root / "imgs" / person / f"{i}.png"), rng.integers(0, 255, (30 + i, 25, 3), dtype=np.uint8))
    return weights, root / "imgs"


def test_load_image_for_matches_manual_preprocessing(tmp_path):
    image = np.random.default_rng(1).integers(0, 255, (40, 30, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), image)
    x = load_image_for(META, tmp_path / "a.png")
    resized = cv2.resize(image, (16, 20), interpolation=cv2.INTER_AREA)[:, :, ::-1].astype(np.float32) / 255
    expected = ((resized - np.array([0.5, 0.4, 0.3])) / np.array([0.2, 0.25, 0.3])).transpose(2, 0, 1)
    assert x.shape == (3, 20, 16) and x.dtype == torch.float32
    np.testing.assert_allclose(x.numpy(), expected, rtol=1e-5, atol=1e-5)
    grey = load_image_for({"input_size": [20, 16], "channels": 1, "normalize": None}, tmp_path / "a.png")
    assert grey.shape == (1, 20, 16) and float(grey.max()) <= 1.0
    with pytest.raises(ConfigError, match="input_size"):
        load_image_for({"channels": 3}, tmp_path / "a.png")


def test_gallery_from_folder_with_zoo_model(tmp_path):
    from siamkit.zoo import load_model

    weights, folder = make_model_and_images(tmp_path)
    g = Gallery.from_folder(folder, str(weights), batch_size=4, kind="flat")
    assert len(g) == 6 and g.dim == 8
    assert g.ids[0] == "alice/0.png" and g.metadata[3] == {"path": "bob/0.png", "identity": "bob"}
    model, entry = load_model(str(weights))
    with torch.inference_mode():
        q = model(load_image_for(entry, folder / "bob" / "1.png")[None]).numpy()
    ids, scores, meta = g.search(q, 3)
    assert ids[0, 0] == "bob/1.png" and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert meta[0][0]["identity"] == "bob"
    assert g.info["model"] == str(weights.resolve())


@pytest.mark.parametrize("channels,invert,size", [(3, False, (20, 16)), (1, True, (60, 50)), (3, False, (60, 50))])
def test_load_image_for_matches_training_preprocessing(tmp_path, channels, invert, size):
    """Gallery embeddings must see exactly what the model saw in training (down- and up-scaling).

    Training (``train.metric._load``) resizes first and inverts the resized uint8 image; spelled
    out here step by step.
    """
    pre = pytest.importorskip("siamkit.data.preprocess")
    image = np.random.default_rng(2).integers(0, 255, (40, 30, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), image)
    norm = {"mean": [0.5] * channels, "std": [0.25] * channels}
    meta = {"input_size": list(size), "channels": channels, "normalize": norm, "invert": invert}
    ours = load_image_for(meta, tmp_path / "a.png")
    batch = pre.prepare([pre.read_image(tmp_path / "a.png", channels)], size, channels)
    theirs = pre.normalise(255 - batch if invert else batch, norm["mean"], norm["std"])[0]
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-5)


@pytest.mark.parametrize("channels,invert", [(3, False), (1, True)])
def test_every_image_entry_point_is_the_one_preprocessing(tmp_path, channels, invert):
    """Gallery search, ``siamkit eval --model`` and ``siamkit verify`` give the numbers of
    ``data.preprocess.Preprocessing`` + ``losses.distances`` exactly."""
    from siamkit.cli.verify import verify_pair
    from siamkit.data.preprocess import Preprocessing, read_image, to_tensor
    from siamkit.eval.metric.models import load_embedder
    from siamkit.index import embed_images
    from siamkit.losses.distances import EuclideanDistance
    from siamkit.zoo import load_model, save_model

    torch.manual_seed(0)
    norm = {"mean": [0.5] * channels, "std": [0.25] * channels}
    meta = {"input_size": [24, 20], "channels": channels, "normalize": norm, "invert": invert, "threshold": 1.0}
    weights = save_model(_TinyEmbed(channels), tmp_path / "tiny.safetensors", "test_tiny_embed",
                         {"channels": channels}, meta)
    rng = np.random.default_rng(3)
    paths = []
    for i, shape in enumerate([(40, 30, 3), (12, 10, 3), (24, 20, 3)]):  # down-, up- and no scaling
        paths.append(tmp_path / f"{i}.png")
        cv2.imwrite(str(paths[-1]), rng.integers(0, 255, shape, dtype=np.uint8))
    prep = Preprocessing.from_meta(meta)
    images = [read_image(p, channels) for p in paths]
    x = prep(images)
    model, entry = load_model(str(weights))
    with torch.no_grad():
        expected = model(x)
    for i, (p, image) in enumerate(zip(paths, images, strict=True)):
        torch.testing.assert_close(load_image_for(entry, p), x[i], rtol=0, atol=0)
        torch.testing.assert_close(to_tensor(image, meta["input_size"], channels, norm, invert=invert)[0], x[i],
                                   rtol=0, atol=0)
    np.testing.assert_array_equal(embed_images(str(weights), paths), expected.numpy())
    np.testing.assert_array_equal(load_embedder(str(weights)).embed(images), expected.double().numpy())
    result = verify_pair(paths[0], paths[1], str(weights))
    # verify embeds a batch of two: same numbers up to float rounding of a different batch size
    assert result["distance"] == pytest.approx(float(EuclideanDistance(eps=0.0).paired(expected[:1], expected[1:2])[0]),
                                               rel=1e-5)


def test_interrupted_ingestion_resumes_from_checkpoint(tmp_path):
    _, folder = make_model_and_images(tmp_path)
    calls, crash_on = [], {"call": 3}

    class Interrupted(Exception):
        pass

    def flaky(paths):  # embeds by pixel statistics; "crashes" on the chosen call
        calls.append(len(paths))
        if len(calls) == crash_on["call"]:
            raise Interrupted
        return np.stack([cv2.imread(str(p)).reshape(-1, 3).mean(0) for p in paths])

    ckpt = tmp_path / "ckpt"
    with pytest.raises(Interrupted):
        Gallery.from_folder(folder, flaky, batch_size=2, checkpoint=ckpt)
    assert len(list(ckpt.glob("batch_*.npy"))) == 2
    calls.clear()
    crash_on["call"] = -1
    resumed = Gallery.from_folder(folder, flaky, batch_size=2, checkpoint=ckpt)
    assert calls == [2]  # only the last batch (2 of 6 images) was embedded again
    fresh = Gallery.from_folder(folder, flaky, batch_size=2)
    np.testing.assert_allclose(resumed.vectors, fresh.vectors)
    assert resumed.ids == fresh.ids
    # a different batch size invalidates the checkpoint instead of mixing batches
    calls.clear()
    Gallery.from_folder(folder, flaky, batch_size=3, checkpoint=ckpt)
    assert calls == [3, 3]
