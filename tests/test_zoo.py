"""Zoo entries: safetensors + sidecar round trip; mismatched files list their keys."""

import pytest
import torch
from torch import nn

from siamkit import zoo
from siamkit.config import MODELS
from siamkit.errors import WeightsError


class Tiny(nn.Module):
    def __init__(self, width: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3)
        self.bn = nn.BatchNorm2d(width)
        self.fc = nn.Linear(width, 2)

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).mean((2, 3)))


if "test_tiny" not in MODELS:
    MODELS.register("test_tiny")(Tiny)


def test_save_and_load_round_trip(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = Tiny(width=5).eval()
    path = zoo.save_model(model, tmp_path / "tiny.safetensors", "test_tiny", {"width": 5}, {"task": "demo"})
    assert path.exists() and path.with_suffix(".yaml").exists()
    monkeypatch.setenv("SIAMKIT_ZOO", str(tmp_path))
    assert "tiny" in [e.name for e in zoo.list_models()]
    loaded, entry = zoo.load_model("tiny")
    assert entry.meta == {"task": "demo"} and entry.config == {"width": 5}
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(loaded(x), model(x))
    loaded_by_path, _ = zoo.load_model(path)
    torch.testing.assert_close(loaded_by_path(x), model(x))


def test_half_precision_storage_is_cast_back(tmp_path):
    model = Tiny()
    path = zoo.save_model(model, tmp_path / "half", "test_tiny", {"width": 4}, half=True)
    loaded, _ = zoo.load_model(path)
    assert loaded.conv.weight.dtype == torch.float32
    torch.testing.assert_close(loaded.conv.weight, model.conv.weight.half().float())


def test_mismatched_weights_list_missing_unexpected_and_shapes(tmp_path):
    zoo.save_model(Tiny(width=4), tmp_path / "w4", "test_tiny", {"width": 4})
    with pytest.raises(WeightsError) as info:
        zoo.load_weights(Tiny(width=6), tmp_path / "w4.safetensors")
    message = str(info.value)
    assert "mismatched shapes" in message and "conv.weight" in message
    assert info.value.mismatched

    from safetensors.torch import save_file

    state = Tiny().state_dict()
    state.pop("fc.bias")
    state["extra.weight"] = torch.zeros(1)
    save_file(state, str(tmp_path / "partial.safetensors"))
    with pytest.raises(WeightsError, match=r"missing keys \(1\): fc.bias.*unexpected keys \(1\): extra.weight"):
        zoo.load_weights(Tiny(), tmp_path / "partial.safetensors")


def test_never_downloads_and_unknown_names_are_clear(tmp_path):
    with pytest.raises(WeightsError, match="never downloads"):
        zoo.resolve("https://example.com/model.safetensors")
    with pytest.raises(WeightsError, match="No model named 'nope'"):
        zoo.resolve("nope")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError, match="not a readable safetensors"):
        zoo.load_weights(Tiny(), tmp_path / "junk.safetensors")
