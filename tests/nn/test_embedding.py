"""Embedding networks: shapes against the published layouts, pooling, Siamese weight sharing, zoo round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import siamkit.nn  # noqa: F401  (registers builders)
from siamkit.config import MODELS
from siamkit.losses.distances import EuclideanDistance
from siamkit.nn.backbones.koch import KochNet
from siamkit.nn.backbones.reid_resnet import ReIDResNet
from siamkit.nn.embedding import GeM, L1VerificationHead, PseudoSiameseNet, SiameseNet


def test_koch_trunk_gives_the_published_6x6x256_map():
    net = KochNet()  # Koch et al. 2015: 105x105 -> 256 maps of 6x6 = 9216 features
    assert net(torch.zeros(1, 1, 105, 105)).shape == (1, 256, 6, 6)


def test_builders_registered_and_output_shapes():
    assert {"embed_koch", "embed_smallconv", "embed_reid_resnet"} <= set(MODELS.names())
    koch = MODELS.build("embed_koch", input_size=(52, 52), widths=(8, 8, 8, 8), kernels=(5, 3, 3, 3), embed_dim=32,
                        activation="sigmoid", normalize=False)
    out = koch(torch.rand(3, 1, 52, 52))
    assert out.shape == (3, 32) and bool(((out > 0) & (out < 1)).all())  # sigmoid features
    small = MODELS.build("embed_smallconv", input_size=(56, 46), widths=(8, 16), embed_dim=16)
    emb = small(torch.rand(4, 1, 56, 46))
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(4))  # L2-normalised
    reid = MODELS.build("embed_reid_resnet", input_size=(64, 32), base_width=8, pooling="avg")
    assert reid(torch.rand(2, 3, 64, 32)).shape == (2, 64)  # 8 * 2**3 channels, no projection


def test_reid_resnet18_parameter_count_matches_torchvision():
    # torchvision resnet18 has 11,689,512 parameters, 513,000 of which are its 1000-way fc.
    net = ReIDResNet(depth=18, base_width=64)
    assert sum(p.numel() for p in net.parameters()) == 11_689_512 - 513_000
    assert net(torch.zeros(1, 3, 256, 128)).shape == (1, 512, 16, 8)  # last stride 1: 1/16
    assert ReIDResNet(depth=18, base_width=8, last_stride=2)(torch.zeros(1, 3, 256, 128)).shape == (1, 64, 8, 4)


def test_gem_pooling_against_numpy():
    x = torch.rand(2, 3, 4, 5) + 0.1
    gem = GeM(p=3.0)
    ref = np.power(np.power(x.numpy().astype(np.float64), 3).mean(axis=(2, 3)), 1 / 3)
    np.testing.assert_allclose(gem(x).detach().numpy(), ref, rtol=1e-5)
    gem.p.data.fill_(1.0)
    torch.testing.assert_close(gem(x), x.mean(dim=(2, 3)))
    gem.p.data.fill_(60.0)
    torch.testing.assert_close(gem(x), x.amax(dim=(2, 3)), rtol=0.05, atol=0)


def test_bnneck_pre_and_post_features():
    net = MODELS.build("embed_smallconv", input_size=(16, 16), widths=(4,), embed_dim=6, bnneck=True, normalize=False)
    assert not net.neck.bias.requires_grad
    net.train()
    pre, post = net.forward_features(torch.rand(8, 1, 16, 16))
    # training-mode BN: post = (pre - batch mean) / batch std (weight 1, bias 0 at init)
    ref = (pre - pre.mean(0)) / torch.sqrt(pre.var(0, unbiased=False) + net.neck.eps)
    torch.testing.assert_close(post, ref, rtol=1e-4, atol=1e-5)


def test_siamese_shares_weights_over_n_inputs():
    torch.manual_seed(0)
    emb = MODELS.build("embed_smallconv", input_size=(16, 16), widths=(4, 8), embed_dim=5)
    net = SiameseNet(emb).eval()
    a, b, c = (torch.rand(2, 1, 16, 16) for _ in range(3))
    fa, fb, fc = net(a, b, c)  # triplet
    torch.testing.assert_close(fa, emb(a))
    torch.testing.assert_close(fc, emb(c))
    assert net(a).shape == (2, 5)
    d = net.distance(a, b)
    np.testing.assert_allclose(d.detach().numpy(), np.linalg.norm((fa - fb).detach().numpy(), axis=1), rtol=1e-5)
    torch.testing.assert_close(d, EuclideanDistance().paired(fa, fb), rtol=0, atol=0)  # the one implementation
    torch.testing.assert_close(net.distance(a, b, squared=True), EuclideanDistance(squared=True).paired(fa, fb),
                               rtol=0, atol=0)
    # one parameter set receives the gradient of every branch
    net.train()
    sum(f.sum() for f in net(a, b, c, a)).backward()  # quadruplet
    assert all(p.grad is not None for p in emb.parameters() if p.requires_grad)
    assert len(list(net.parameters())) == len(list(emb.parameters()))
    # different input sizes go through separately
    big = MODELS.build("embed_smallconv", input_size=(16, 16), widths=(4,), embed_dim=3, pooling="avg")
    out = SiameseNet(big).eval()(torch.rand(1, 1, 16, 16), torch.rand(1, 1, 24, 20))
    assert [o.shape for o in out] == [(1, 3), (1, 3)]


def test_pseudo_siamese_branches_are_unshared():
    torch.manual_seed(0)
    a = MODELS.build("embed_smallconv", input_size=(16, 16), widths=(4,), embed_dim=5)
    b = MODELS.build("embed_smallconv", input_size=(16, 16), widths=(4,), embed_dim=5)
    net = PseudoSiameseNet(a, b).eval()
    x = torch.rand(2, 1, 16, 16)
    fa, fb = net(x, x)
    assert not torch.allclose(fa, fb)
    torch.testing.assert_close(fa, a(x))
    assert len(list(net.parameters())) == 2 * len(list(a.parameters()))
    with pytest.raises(ValueError, match="expected 2 inputs"):
        net(x)
    with pytest.raises(ValueError):
        PseudoSiameseNet(a)


def test_l1_verification_head_matches_formula():
    head = L1VerificationHead(4)
    a, b = torch.rand(3, 4), torch.rand(3, 4)
    ref = (a - b).abs() @ head.fc.weight.T.squeeze(1) + head.fc.bias
    torch.testing.assert_close(head(a, b), ref)


def test_zoo_round_trip_in_fp16(tmp_path):
    from siamkit.zoo import load_model, save_model

    cfg = {"input_size": [16, 16], "widths": [4, 8], "embed_dim": 6}
    net = MODELS.build("embed_smallconv", **cfg).eval()
    path = save_model(net, tmp_path / "tiny", "embed_smallconv", cfg, {"threshold": 0.5}, half=True)
    loaded, entry = load_model(path)
    x = torch.rand(2, 1, 16, 16)
    torch.testing.assert_close(loaded(x), net(x), rtol=2e-2, atol=2e-3)
    assert entry.meta["threshold"] == 0.5
