"""Tiny variants of every published network on CPU: forward/backward, purity, batching, fusion rules, the
ACM head against the asymmetric-fusion op, the SiamMask refine windows, and backbone layer facts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import siamkit.nn  # noqa: F401
from siamkit.config import MODELS
from siamkit.nn.backbones.alexnet import AlexNetV1
from siamkit.nn.backbones.mobilenet import MobileNetV2
from siamkit.nn.backbones.resnet import resnet50_atrous
from siamkit.nn.heads.acm import ACMXCorr
from siamkit.nn.models import cat_templates, index_template
from siamkit.nn.necks import AdjustLayer, center_crop
from siamkit.ops.correlation import asymmetric_fuse, xcorr

R50 = {"base_width": 8, "blocks": (1, 1, 1, 1)}
TINY = {
    "siamfc_alexnet": {"width_mult": 0.125},
    "siamrpn_alexnet": {"width_mult": 0.125, "hidden": 8},
    "siamrpnpp_alexnet": {"width_mult": 0.125, "hidden": 16},
    "siamrpnpp_r50": {**R50, "neck_channels": (16, 16, 16)},
    "siamrpnpp_mobilev2": {"width_mult": 0.25, "neck_channels": (16, 16, 16)},
    "siammask_r50": {**R50, "hidden": 16},
    "siamban_r50": {**R50, "neck_channels": (16, 16, 16)},
    "siamban_acm_r50": {**R50, "neck_channels": (16, 16, 16)},
}
BOX = torch.tensor([[40.0, 70.0], [90.0, 20.0], [64.0, 64.0]])


def _build(name, seed=0):
    torch.manual_seed(seed)
    return MODELS.build(name, **TINY[name])


def _images(model, b, seed=1):
    g = torch.Generator().manual_seed(seed)
    z = torch.rand(b, 3, 127, 127, generator=g) * 255
    x = torch.rand(b, 3, model.instance_size, model.instance_size, generator=g) * 255
    return z, x


def _randomize_bn(model):
    """Non-trivial BN statistics so eval-mode checks are not accidentally identity-like."""
    g = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            m.running_mean.normal_(0, 0.5, generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)
            m.weight.data.uniform_(0.5, 1.5, generator=g)
            m.bias.data.normal_(0, 0.2, generator=g)


def _template(model, z, box=None):
    return model.template(z, BOX[: z.shape[0]] if box is None else box) if model.kind == "ban" else model.template(z)


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_forward_backward_reaches_every_parameter(name):
    model = _build(name).train()
    z, x = _images(model, 2)
    out = model(z, x, BOX[:2]) if name == "siamban_acm_r50" else model(z, x)
    s = model.score_size
    assert out["cls"].shape[-2:] == (s, s)
    loss = out["cls"].square().mean()
    if "loc" in out:
        loss = loss + out["loc"].square().mean()
    if name == "siammask_r50":
        loss = loss + out["mask"].square().mean() + model.refine_mask(out, (12, 12)).square().mean()
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), pname
    if name in ("siamban_r50", "siamban_acm_r50"):
        assert (out["loc"] > 0).all()  # exp(·) distances


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_eval_is_pure_and_batch_independent(name):
    model = _build(name).eval().double()  # float64 so batched and single results agree to rounding
    _randomize_bn(model)
    z, x = (t.double() for t in _images(model, 2))
    with torch.no_grad():
        zf = _template(model, z, BOX[:2].double())
        batched = model.search(x, zf)
        again = model.search(x, _template(model, z))  # no state cached between calls
        single = [model.search(x[i : i + 1], index_template(zf, i)) for i in range(2)]
        joined = model.search(x, cat_templates([index_template(zf, i) for i in range(2)]))
        whole = model(z, x, BOX[:2].double()) if name == "siamban_acm_r50" else model(z, x)
    for key in ("cls", "loc", "mask"):
        if key not in batched:
            continue
        ref = batched[key]
        torch.testing.assert_close(again[key], ref, rtol=0, atol=0)
        torch.testing.assert_close(torch.cat([o[key] for o in single]), ref, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(joined[key], ref, rtol=0, atol=0)
        torch.testing.assert_close(whole[key], ref, rtol=0, atol=0)
    if name == "siammask_r50":
        pos = torch.tensor([[0, 3], [24, 17]])
        refined = model.refine_mask(batched, pos)
        for i in range(2):
            one = model.refine_mask({k: index_template(v, i) for k, v in batched.items()}, tuple(pos[i].tolist()))
            torch.testing.assert_close(one, refined[i : i + 1], rtol=1e-9, atol=1e-9)


def test_siamfc_scales_share_a_template():
    model = _build("siamfc_alexnet").eval()
    _randomize_bn(model)
    z, _ = _images(model, 1)
    x = torch.rand(3, 3, 255, 255) * 255
    with torch.no_grad():
        out = model.search(x, model.template(z))["cls"]
        zf, xf = model.backbone(z), model.backbone(x)
        for i in range(3):
            ref = xcorr(xf[i : i + 1], zf) * 0.001 + model.head.bias
            torch.testing.assert_close(out[i : i + 1], ref)
        # centre cell by hand: the 6×6 template over the central 6×6 window of the 22×22 search map
        centre = (xf[1, :, 8:14, 8:14].double() * zf[0].double()).sum() * 0.001
        assert abs(float(out[1, 0, 8, 8]) - float(centre)) < 1e-4 * max(1.0, abs(float(centre)))


@pytest.mark.parametrize("head", ["siamrpnpp_r50", "siamban_r50"])
def test_weighted_fusion_is_softmax_mix_of_levels(head):
    model = _build(head).eval().double()
    _randomize_bn(model)
    fuse = model.rpn_head if head == "siamrpnpp_r50" else model.head
    with torch.no_grad():
        fuse.cls_weight.copy_(torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64))
        fuse.loc_weight.copy_(torch.tensor([1.5, 0.0, -0.5], dtype=torch.float64))
        if head == "siamban_r50":
            fuse.loc_scale.copy_(torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64))
        z, x = (t.double() for t in _images(model, 2))
        out = model(z, x)
        zfs = model.neck(model.backbone(z), crop=True)
        xfs = model.neck(model.backbone(x), crop=False)
        levels = [lvl(zf, xf) for lvl, zf, xf in zip(fuse.levels(), zfs, xfs, strict=True)]

    def softmax(v):
        e = np.exp(np.asarray(v, dtype=np.float64))
        return e / e.sum()

    wc, wl = softmax([0.3, -1.0, 2.0]), softmax([1.5, 0.0, -0.5])
    cls_ref = sum(wc[i] * levels[i][0].double() for i in range(3))
    if head == "siamban_r50":
        loc_ref = sum(wl[i] * torch.exp(levels[i][1].double() * [0.5, 1.0, 2.0][i]) for i in range(3))
    else:
        loc_ref = sum(wl[i] * levels[i][1].double() for i in range(3))
    torch.testing.assert_close(out["cls"], cls_ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(out["loc"], loc_ref, rtol=1e-10, atol=1e-10)


def test_unweighted_fusion_is_mean():
    model = _build("siamrpnpp_mobilev2").eval()
    assert not hasattr(model.rpn_head, "cls_weight")
    z, x = _images(model, 1)
    with torch.no_grad():
        out = model(z, x)
        zfs = model.neck(model.backbone(z), crop=True)
        xfs = model.neck(model.backbone(x), crop=False)
        cls = [lvl(zf, xf)[0] for lvl, zf, xf in zip(model.rpn_head.levels(), zfs, xfs, strict=True)]
    torch.testing.assert_close(out["cls"], (cls[0] + cls[1] + cls[2]) / 3)


def test_acm_head_equals_asymmetric_fusion_op():
    torch.manual_seed(0)
    head = ACMXCorr(8, 8, 4).eval()
    _randomize_bn(head)
    zf, xf, wh = torch.randn(2, 8, 7, 7), torch.randn(2, 8, 31, 31), torch.tensor([[30.0, 50.0], [80.0, 12.0]])
    with torch.no_grad():
        out = head(zf, xf, wh)
        fused = asymmetric_fuse(
            head.conv_search(xf), head.conv_kernel(zf), head.xorr_search.weight, head.xorr_kernel.weight,
            head.xorr_kernel.bias, extra=head.xorr_bbox(wh),
        )
        ref = head.head(head.xorr_activate(fused))
    assert out.shape == (2, 4, 25, 25)
    torch.testing.assert_close(out, ref)
    with torch.no_grad():  # the box prior changes the output (it is not ignored)
        assert not torch.allclose(head(zf, xf, wh.flip(0)), out)


def test_acm_box_accepts_xywh_or_wh():
    model = _build("siamban_acm_r50").eval()
    z, x = _images(model, 2)
    xywh = torch.cat([torch.full((2, 2), 63.5), BOX[:2]], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(z, x, xywh)["cls"], model(z, x, BOX[:2])["cls"], rtol=0, atol=0)


def test_refine_reads_only_its_window():
    """For cell (r, c) the refine sees stem rows 4r−16…4r+44, layer1 2r−8…2r+22, layer2 r−4…r+10 and the
    correlation vector at (r, c) only (tracking.md §7: one RoW per cell)."""
    model = _build("siammask_r50").eval()
    _randomize_bn(model)
    z, x = _images(model, 1)
    r, c = 9, 14
    with torch.no_grad():
        out = model(z, x)
        base = model.refine_mask(out, (r, c))

        def changed(stage, row, col):
            feats = [f.clone() for f in out["mask_features"]]
            corr = out["mask_corr"].clone()
            if stage == "corr":
                corr[:, :, row, col] += 5.0
            else:
                feats[stage][:, :, row, col] += 50.0
            new = model.refine_mask({"mask_features": tuple(feats), "mask_corr": corr}, (r, c))
            return not torch.equal(new, base)

        for stage, scale, pad, size in ((0, 4, 16, 61), (1, 2, 8, 31), (2, 1, 4, 15)):
            lo = scale * r - pad
            hi = lo + size - 1
            col = scale * c - pad + size // 2
            assert changed(stage, lo, col) and changed(stage, hi, col), stage
            assert not changed(stage, hi + 1, col), stage
            if lo > 0:
                assert not changed(stage, lo - 1, col), stage
        assert changed("corr", r, c)
        assert not changed("corr", r + 1, c)


def test_neck_centre_crop_and_rule():
    x = torch.arange(15 * 15.0).reshape(1, 1, 15, 15)
    crop = center_crop(x, 7)
    assert torch.equal(crop, x[:, :, 4:11, 4:11])
    assert crop[0, 0, 0, 0] == 4 * 15 + 4
    layer = AdjustLayer(4, 6)
    assert layer(torch.randn(1, 4, 15, 15)).shape[-1] == 7  # pysot rule: width < 20 is a template
    assert layer(torch.randn(1, 4, 31, 31)).shape[-1] == 31
    assert layer(torch.randn(1, 4, 15, 15), crop=False).shape[-1] == 15


def test_backbone_layer_facts():
    """Facts from tracking.md §2/§3 that shapes and parameter counts alone would not catch."""
    r = resnet50_atrous(base_width=8)
    assert r.conv1.padding == (0, 0) and r.conv1.stride == (2, 2)
    ds2 = r.layer2[0].downsample[0]
    assert (ds2.kernel_size, ds2.stride, ds2.padding) == ((3, 3), (2, 2), (0, 0))
    assert r.layer2[0].conv2.padding == (0, 0)
    assert [b.conv2.dilation[0] for b in r.layer3] == [1, 2, 2, 2, 2, 2]
    assert [b.conv2.dilation[0] for b in r.layer4] == [2, 4, 4]
    assert all(b.conv2.padding == b.conv2.dilation for b in list(r.layer3) + list(r.layer4))
    assert r.layer3[0].downsample[0].dilation == (1, 1) and r.layer4[0].downsample[0].dilation == (2, 2)
    assert resnet50_atrous((0, 1, 2, 3)).layer4 is None  # SiamMask stops at layer3
    a = AlexNetV1()
    assert [m.groups for m in a.modules() if isinstance(m, nn.Conv2d)] == [1, 2, 1, 2, 2]
    assert {m.eps for m in a.modules() if isinstance(m, nn.BatchNorm2d)} == {1e-6}
    assert MobileNetV2(1.4).out_channels == (44, 134, 448)
