"""NanoTrack v2 network and checkpoint importer: shapes, parameter counts, correlation, key mapping, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import shared_path

from siamkit.config import MODELS
from siamkit.errors import WeightsError
from siamkit.importers import nanotrack as imp
from siamkit.nn.nanotrack import NanoTrackV2, pixelwise_xcorr


def _checkpoint():
    return shared_path("peers", "nanotrack_v2", "nanotrackv2.pth")


def test_pixelwise_xcorr_matches_float64_loops():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(2, 5, 3, 2, generator=gen)
    x = torch.randn(2, 5, 4, 6, generator=gen)
    out = pixelwise_xcorr(z, x).double()
    zn, xn = z.double().numpy(), x.double().numpy()
    ref = np.zeros((2, 6, 4, 6))
    for b in range(2):
        for k in range(6):
            ky, kx = divmod(k, 2)  # template position k, row-major
            for i in range(4):
                for j in range(6):
                    ref[b, k, i, j] = sum(zn[b, c, ky, kx] * xn[b, c, i, j] for c in range(5))
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-5)


def test_shapes_stride_and_published_parameter_counts():
    model = MODELS.build("nanotrack_v2").eval()
    assert isinstance(model, NanoTrackV2)
    assert (model.exemplar_size, model.instance_size, model.stride, model.score_size) == (127, 255, 16, 16)
    assert model.anchor_num == 0 and model.kind == "ban"
    # Counts of the released checkpoint (tracking reference §12): 190,520 backbone + 143,558 head.
    assert sum(p.numel() for p in model.backbone.parameters()) == 190_520
    assert sum(p.numel() for p in model.head.parameters()) == 143_558
    with torch.no_grad():
        zf = model.template(torch.rand(2, 3, 127, 127) * 255)
        out = model.search(torch.rand(2, 3, 255, 255) * 255, zf)
        both = model(torch.rand(1, 3, 127, 127), torch.rand(1, 3, 255, 255))
    assert zf.shape == (2, 48, 8, 8)
    assert out["cls"].shape == (2, 2, 16, 16) and out["loc"].shape == (2, 4, 16, 16)
    assert (out["loc"] > 0).all()  # distances come out of exp()
    assert both["cls"].shape == (1, 2, 16, 16)


def test_residual_rule_follows_stride_and_channels():
    blocks = NanoTrackV2().backbone.blocks
    assert [b.residual for b in blocks] == [False, False, True, False, True, True, False, True]
    assert [b.expand is None for b in blocks] == [True] + [False] * 7


def test_checkpoint_keys_all_map_and_load_strictly():
    path = _checkpoint()
    raw = imp.read_checkpoint(path)
    assert raw["epoch"] == 34
    state = raw["state_dict"]
    assert len(state) == 298
    mapped = imp.map_state_dict(state)
    dropped = [k for k in state if imp.map_key(k) is None]
    assert sorted(dropped) == sorted(k for k in state if k.startswith("neck.downsample."))
    model = NanoTrackV2()
    assert set(mapped) == set(model.state_dict())
    loaded = imp.load_nanotrack_v2(path)
    assert torch.equal(loaded.backbone.blocks[7].project.conv.weight, state["backbone.features.8.conv.7.weight"])
    assert torch.equal(loaded.head.reg.tower[5].pw.weight, state["ban_head.bbox_pw_tower.21.weight"])
    assert torch.equal(loaded.backbone.blocks[0].se.fc2.bias, state["backbone.features.1.conv.3.fc.2.bias"])


def test_only_the_numpy_scalar_globals_are_allowed(tmp_path):
    names = [g[1] if isinstance(g, tuple) else f"{g.__module__}.{g.__qualname__}" for g in imp.numpy_safe_globals()]
    assert len(names) == 3 and names[0] == "numpy.core.multiarray.scalar"
    # A checkpoint holding a NumPy *array* needs other globals and must still be refused.
    bad = tmp_path / "array.pth"
    torch.save({"state_dict": {}, "extra": np.zeros(3)}, bad)
    with pytest.raises(WeightsError, match="not a readable"):
        imp.read_checkpoint(bad)


def test_wrong_and_truncated_files_raise_weights_error(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        imp.read_checkpoint(tmp_path / "missing.pth")
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(WeightsError):
        imp.load_nanotrack_v2(text)
    path = _checkpoint()
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(path.read_bytes()[:700_000])
    with pytest.raises(WeightsError, match="truncated"):
        imp.load_nanotrack_v2(truncated)


def test_missing_unexpected_and_mismatched_keys_are_listed(tmp_path):
    state = imp.read_checkpoint(_checkpoint())["state_dict"]
    state = dict(state)
    del state["ban_head.cls_pred.0.bias"]
    state["ban_head.extra.weight"] = torch.zeros(1)
    state["ban_head.bbox_pred.0.weight"] = torch.zeros(4, 64, 1, 1)
    edited = tmp_path / "edited.pth"
    torch.save({"epoch": 1, "state_dict": state}, edited)
    with pytest.raises(WeightsError) as info:
        imp.load_nanotrack_v2(edited)
    err = info.value
    assert err.missing == ["head.cls.pred.bias"]
    assert err.unexpected == ["ban_head.extra.weight"]
    assert len(err.mismatched) == 1 and err.mismatched[0].startswith("head.reg.pred.weight")


def test_convert_to_zoo_round_trip(tmp_path):
    from siamkit import zoo

    out = imp.convert_to_zoo(_checkpoint(), tmp_path / "nanotrack_v2")
    assert out.suffix == ".safetensors" and out.with_suffix(".yaml").is_file()
    model, entry = zoo.load_model(out)
    assert entry.architecture == "nanotrack_v2" and entry.meta["license"] == "Apache-2.0"
    assert entry.meta["sha256"] == "938a320c560fd8c8d6a148a76a072bca29c529ce16591c9a2157859ee0ecc5e1"
    ref = imp.load_nanotrack_v2(_checkpoint())
    z, x = torch.rand(1, 3, 127, 127) * 255, torch.rand(1, 3, 255, 255) * 255
    with torch.no_grad():
        a, b = model(z, x), ref(z, x)
    assert torch.equal(a["cls"], b["cls"]) and torch.equal(a["loc"], b["loc"])
    # The tracker accepts the converted entry as its weights.
    from siamkit.trackers import create_tracker

    tracker = create_tracker("nanotrack", weights=str(out), device="cpu")
    assert torch.equal(tracker.model.head.cls.pred.weight, ref.head.cls.pred.weight)
