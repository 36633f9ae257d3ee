"""Published tracking networks: parameter counts against tracking.md §11 [C], output shapes at the published
input sizes (built on the ``meta`` device: shapes without memory or compute), and the model interface."""

from __future__ import annotations

import pytest
import torch

import siamkit.nn  # noqa: F401  (registers the builders)
from siamkit.config import MODELS
from siamkit.errors import ConfigError

# tracking.md §11 "Compute per frame [C]", params (M), 2 decimals; all counted from the reference definitions.
PUBLISHED_PARAMS_M = [
    ("siamfc_alexnet", {}, 2.34),  # SiamFC AlexNetV1 (+1 for our scalar bias)
    ("siamrpn_alexnet", {}, 22.63),  # DaSiamRPN SiamRPNvot / SiamRPNotb
    ("siamrpn_alexnet", {"width_mult": 2.0, "hidden": 512}, 90.44),  # DaSiamRPN SiamRPNBIG
    ("siamrpnpp_alexnet", {}, 6.25),
    ("siamrpnpp_mobilev2", {}, 11.15),
    ("siamrpnpp_r50", {}, 53.95),
    ("siamrpnpp_r50", {"neck_channels": (128, 256, 512)}, 60.02),  # SiamRPN++ R50 LT
    ("siammask_r50", {}, 21.48),  # SiamMask-LD incl. refine
    ("siamban_r50", {}, 53.93),
    ("siamban_acm_r50", {}, 80.38),
]


def _meta(name, **kw):
    with torch.device("meta"):
        return MODELS.build(name, **kw)


def _n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("name", "kw", "millions"), PUBLISHED_PARAMS_M)
def test_parameter_count_matches_reference(name, kw, millions):
    assert round(_n_params(_meta(name, **kw)) / 1e6, 2) == millions


def test_exact_counts_of_known_parts():
    # Exact counts derivable by hand from the layer lists in tracking.md §2–§4.
    alex_v1 = 34944 + (256 * 48 * 25 + 256) + (384 * 256 * 9 + 384) + (384 * 192 * 9 + 384) + (256 * 192 * 9 + 256)
    alex_v1 += 2 * (96 + 256 + 384 + 384)  # BN affine
    assert _n_params(_meta("siamfc_alexnet").backbone) == alex_v1
    up = _meta("siamrpn_alexnet").rpn_head  # "UPChannelRPN(256) has 18.88 M params"
    assert _n_params(up) == 256 * 2560 * 9 + 2560 + 256 * 5120 * 9 + 5120 + 2 * (256 * 256 * 9 + 256) + 20 * 20 + 20
    assert round(_n_params(up) / 1e6, 2) == 18.88
    assert round(_n_params(_meta("siamrpnpp_alexnet").rpn_head) / 1e6, 2) == 2.50  # DepthwiseRPN(256)


PUBLISHED_SHAPES = [
    # name, kwargs, instance size, S, cls channels, loc channels (the other published sizes are checked in
    # test_compute.py on the same forward pass that counts MACs)
    ("siamfc_alexnet", {}, 255, 17, 1, None),
    ("siamrpn_alexnet", {}, 287, 21, 10, 20),  # DaSiamRPN's adaptive large search
    ("siamrpnpp_alexnet", {}, 255, 17, 10, 20),  # training size
    ("siammask_r50", {}, 255, 25, 10, 20),
    ("siamban_acm_r50", {}, 510, 56, 2, 4),  # ACM fast-motion search
]


@pytest.mark.parametrize(("name", "kw", "instance", "s", "c_cls", "c_loc"), PUBLISHED_SHAPES)
def test_output_shapes_at_published_sizes(name, kw, instance, s, c_cls, c_loc):
    model = _meta(name, **kw)
    assert model.score_size_for(instance) == s
    b = 2
    z = torch.empty(b, 3, 127, 127, device="meta")
    x = torch.empty(b, 3, instance, instance, device="meta")
    box = torch.ones(b, 2) if name == "siamban_acm_r50" else None
    out = model.search(x, model.template(z, box) if box is not None else model.template(z))
    assert out["cls"].shape == (b, c_cls, s, s)
    if c_loc is None:
        assert "loc" not in out
    else:
        assert out["loc"].shape == (b, c_loc, s, s)
    if name == "siammask_r50":
        assert out["mask"].shape == (b, 63 * 63, s, s)
        assert [tuple(f.shape[1:]) for f in out["mask_features"]] == [(64, 125, 125), (256, 63, 63), (512, 31, 31)]
        assert model.refine_mask(out, (3, 4)).shape == (b, 127, 127)


@pytest.mark.parametrize(
    ("name", "kind", "anchors", "instance", "s"),
    [
        ("siamfc_alexnet", "siamfc", 0, 255, 17),
        ("siamrpn_alexnet", "rpn", 5, 271, 19),
        ("siamrpnpp_alexnet", "rpn", 5, 287, 21),
        ("siamrpnpp_r50", "rpn", 5, 255, 25),
        ("siamrpnpp_mobilev2", "rpn", 5, 255, 25),
        ("siammask_r50", "mask", 5, 255, 25),
        ("siamban_r50", "ban", 0, 255, 25),
        ("siamban_acm_r50", "ban", 0, 255, 25),
    ],
)
def test_model_attributes(name, kind, anchors, instance, s):
    m = _meta(name)
    assert (m.kind, m.anchor_num, m.exemplar_size, m.instance_size, m.stride, m.score_size) == (
        kind, anchors, 127, instance, 8, s
    )


def test_bad_inputs_raise():
    m = _meta("siamrpnpp_alexnet")
    with pytest.raises(ConfigError):
        m.template(torch.empty(1, 1, 127, 127, device="meta"))  # grey image
    with pytest.raises(ConfigError):
        m.template(torch.zeros(1, 3, 127, 127, dtype=torch.uint8))  # not float
    acm = _meta("siamban_acm_r50")
    with pytest.raises(ConfigError):
        acm.template(torch.empty(1, 3, 127, 127, device="meta"))  # ACM needs the box prior
    mask = _meta("siammask_r50")
    zf = mask.template(torch.empty(1, 3, 127, 127, device="meta"))
    out = mask.search(torch.empty(1, 3, 255, 255, device="meta"), zf)
    with pytest.raises(ConfigError):
        mask.refine_mask(out, (25, 0))  # outside the 25×25 map
