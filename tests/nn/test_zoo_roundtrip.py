"""Tracking models survive the zoo: built by name from a YAML config, weights saved and loaded unchanged."""

from __future__ import annotations

import torch

import siamkit.nn  # noqa: F401
from siamkit.config import MODELS
from siamkit.zoo import load_model, save_model


def test_tiny_siamrpnpp_roundtrip(tmp_path):
    config = {"base_width": 8, "blocks": [1, 1, 1, 1], "neck_channels": [16, 16, 16], "weighted": True}
    torch.manual_seed(0)
    model = MODELS.build("siamrpnpp_r50", **config).eval()
    with torch.no_grad():
        model.rpn_head.cls_weight.copy_(torch.tensor([0.1, 0.5, -0.3]))
    path = save_model(model, tmp_path / "tiny_rpn.safetensors", "siamrpnpp_r50", config)
    loaded, _ = load_model(path)
    z, x = torch.rand(1, 3, 127, 127) * 255, torch.rand(1, 3, 255, 255) * 255
    with torch.no_grad():
        a, b = model(z, x), loaded(z, x)
    assert loaded.kind == "rpn" and loaded.score_size == 25
    torch.testing.assert_close(a["cls"], b["cls"], rtol=0, atol=0)
    torch.testing.assert_close(a["loc"], b["loc"], rtol=0, atol=0)
