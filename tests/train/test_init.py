"""The light SiamBAN: correlation score equal to SiamFC's, initialisation from a trained SiamFC, regression start."""

from __future__ import annotations

import pytest
import torch

from siamkit import zoo
from siamkit.config import MODELS
from siamkit.errors import ConfigError, WeightsError
from siamkit.nn import models  # noqa: F401  (registers the tracking networks)
from siamkit.train.init import init_ban_regression, init_from_weights

WIDTH = 0.25


def _siamfc_file(tmp_path, width=WIDTH):
    torch.manual_seed(0)
    siamfc = MODELS.build("siamfc_alexnet", width_mult=width).eval()
    with torch.no_grad():
        siamfc.head.bias.fill_(-0.7)
        for m in siamfc.modules():  # non-trivial BatchNorm statistics, so copying them is checked too
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    path = zoo.save_model(siamfc, tmp_path / "fc.safetensors", "siamfc_alexnet", {"width_mult": width}, {}, half=False)
    return siamfc, path


def test_correlation_score_is_siamfcs_response(tmp_path):
    siamfc, path = _siamfc_file(tmp_path)
    light = MODELS.build("siamban_alexnet", width_mult=WIDTH).eval()
    keys = init_from_weights(light, path, ("backbone.", "head.bias"))
    assert "head.bias" in keys and any(k.endswith("running_var") for k in keys)
    z, x = torch.rand(2, 3, 127, 127) * 255, torch.rand(2, 3, 255, 255) * 255
    with torch.no_grad():
        out = light(z, x)
        ref = siamfc(z, x)["cls"]
    assert out["cls"].shape == (2, 2, 17, 17) and out["loc"].shape == (2, 4, 17, 17)
    assert light.score_size == 17
    torch.testing.assert_close(out["cls"][:, 1:], ref, rtol=1e-5, atol=1e-5)
    assert torch.count_nonzero(out["cls"][:, :1]) == 0  # background logit 0: softmax = sigmoid(response)
    assert (out["loc"] > 0).all()


def test_init_rejects_other_widths_and_empty_prefixes(tmp_path):
    _, path = _siamfc_file(tmp_path, width=0.5)
    light = MODELS.build("siamban_alexnet", width_mult=WIDTH)
    with pytest.raises(WeightsError, match="mismatched"):
        init_from_weights(light, path)
    with pytest.raises(ConfigError, match="empty"):
        init_from_weights(light, path, ())
    with pytest.raises(ConfigError, match="no parameters"):
        init_from_weights(light, path, ("neck.",))


@pytest.mark.parametrize("score", ["correlation", "depthwise"])
def test_regression_starts_at_the_requested_distance(score):
    model = MODELS.build("siamban_alexnet", width_mult=WIDTH, score=score).eval()
    init_ban_regression(model, 32.0)
    with torch.no_grad():
        loc = model(torch.rand(1, 3, 127, 127) * 255, torch.rand(1, 3, 255, 255) * 255)["loc"]
    assert loc.min() > 16 and loc.max() < 64  # exp(ln 32 + small) ≈ 32 px on every side
    with pytest.raises(ConfigError, match="positive"):
        init_ban_regression(model, 0.0)
    with pytest.raises(ConfigError, match="no box-adaptive"):
        init_ban_regression(MODELS.build("siamfc_alexnet", width_mult=WIDTH), 32.0)


def test_unknown_score_branch_is_rejected():
    with pytest.raises(ConfigError, match="score"):
        MODELS.build("siamban_alexnet", score="attention")
