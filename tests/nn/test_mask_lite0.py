"""SiamMask on the Lite0 trunk: refine windows, trunk taps, and a box branch that is SiamRPN++-Lite0's."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from siamkit.config import MODELS
from siamkit.nn.backbones.efficientnet_lite import TAPS, LiteTrunk
from siamkit.nn.heads.mask import PYSOT_REFINE, Refine, refine_geometry
from siamkit.nn.lite0_trackers import MASK_TAPS


@pytest.mark.parametrize("map_stride, base_size", [(16, 2), (8, 8)])
def test_refine_windows_start_where_the_cell_window_starts(map_stride, base_size):
    """Cell c's window starts at (c − base/2)·map_stride px of the search crop and spans ≥ the 127 px exemplar."""
    geometry = refine_geometry((2, 4, 8), map_stride, base_size)
    for (scale, pad, size), stride in zip(geometry.windows, (2, 4, 8), strict=True):
        for cell in range(11):
            first_cell = scale * cell - pad  # in the unpadded map
            assert first_cell * stride == (cell - base_size // 2) * map_stride
        assert 127 <= size * stride < 127 + stride


def test_pysot_geometry_keeps_the_published_refine_sizes():
    refine = Refine((8, 8, 8), 4, PYSOT_REFINE)
    assert refine.deconv.kernel_size == (15, 15)
    features = [torch.rand(1, 8, n, n) for n in (125, 63, 31)]
    assert refine(features, torch.rand(1, 4, 25, 25), (12, 12)).shape == (1, 127, 127)


def test_trunk_taps_are_the_trunk_maps_of_one_pass():
    trunk = LiteTrunk("s16", pretrained=False).eval()
    x = torch.rand(1, 3, 127, 127) * 255
    with torch.no_grad():
        taps, out = trunk.with_taps(x, ("s8", "s2"))
        assert torch.equal(out, trunk(x))
        s2 = trunk.run_blocks(x, 0, TAPS["s2"][0] + 1)
        s8 = trunk.run_blocks(trunk.run_blocks(s2, 1, TAPS["s4"][0] + 1), TAPS["s4"][0] + 1, TAPS["s8"][0] + 1)
    assert [t.shape[1] for t in taps] == [16, 40]
    assert torch.equal(taps[0], s2) and torch.equal(taps[1], s8)
    with pytest.raises(ValueError, match="not before"):
        trunk.with_taps(x, ("s16",))


def test_box_branch_is_siamrpnpp_lite0():
    """With SiamRPN++-Lite0's parameters copied in, SiamMask-Lite0's box maps are SiamRPN++-Lite0's, exactly."""
    torch.manual_seed(0)
    rpn = MODELS.build("siamrpnpp_lite0").eval()
    mask = MODELS.build("siammask_lite0").eval()
    missing = mask.load_state_dict(rpn.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith(("mask_head.", "refine_head.")) for k in missing)
    z, x = torch.rand(2, 3, 127, 127) * 255, torch.rand(2, 3, 255, 255) * 255
    with torch.no_grad():
        want = rpn(z, x)
        got = mask(z, x)
        refined = mask.refine_mask(got, torch.tensor([[0, 0], [10, 10]]))
    for key in ("cls", "loc"):
        assert torch.equal(got[key], want[key])
    assert got["mask"].shape == (2, 63 * 63, 11, 11)
    assert [f.shape[1] for f in got["mask_features"]] == [TAPS[t][2] for t in MASK_TAPS]
    assert refined.shape == (2, 127, 127)


def test_refine_reads_the_cells_own_window():
    """Changing the trunk maps outside cell (5, 5)'s window leaves its refined mask unchanged; inside, it changes."""
    torch.manual_seed(0)
    model = MODELS.build("siammask_lite0").eval()
    features = [torch.rand(1, TAPS[t][2], n, n) for t, n in zip(MASK_TAPS, (128, 64, 32), strict=True)]
    corr = torch.rand(1, 128, 11, 11)
    out = {"mask_features": tuple(features), "mask_corr": corr}
    with torch.no_grad():
        base = model.refine_mask(out, (5, 5))
        outside = [f.clone() for f in features]
        for f, (scale, pad, size) in zip(outside, model.refine_head.geometry.windows, strict=True):
            start = scale * 5 - pad
            keep = f[:, :, start : start + size, start : start + size].clone()
            f.fill_(7.0)
            f[:, :, start : start + size, start : start + size] = keep
        same = model.refine_mask({**out, "mask_features": tuple(outside)}, (5, 5))
        inside = [f.clone() for f in features]
        inside[2][:, :, 10:12, 10:12] += 5.0  # s8 cells 10–11: inside the (5, 5) window (8 … 23)
        changed = model.refine_mask({**out, "mask_features": tuple(inside)}, (5, 5))
    assert torch.equal(base, same)
    assert not torch.allclose(base, changed)
    assert F.mse_loss(base, changed) > 0


def test_tuple_outputs_travel_through_flat_graph_outputs():
    """SiamMask's ``mask_features`` tuple gets one graph output per map and is rebuilt after onnxruntime."""
    from siamkit.nn.branches import nest_outputs, output_keys, output_value

    out = {"cls": torch.zeros(1), "mask_features": (torch.ones(1), torch.ones(2)), "skip": None}
    keys = output_keys(out)
    assert keys == ["cls", "mask_features.0", "mask_features.1"]
    back = nest_outputs({k: output_value(out, k) for k in keys})
    assert back.keys() == {"cls", "mask_features"} and back["mask_features"][1].shape == (2,)
