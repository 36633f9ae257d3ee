"""Third-party checkpoint importers: round trips under the original projects' key names, and failures.

The expected third-party names below were read in each project's model definitions (pysot
``models/``, foolwood/SiamMask ``experiments/siammask_sharp/custom.py``, foolwood/DaSiamRPN
``code/net.py``, siamfc-pytorch ``siamfc/backbones.py``, siamban ``models/head/ban.py``).
"""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch
from conftest import PUBLISHED_PRESETS

import siamkit.nn  # noqa: F401  (registers the model builders)
from siamkit.config import MODELS
from siamkit.errors import WeightsError
from siamkit.importers import dasiamrpn as da_imp
from siamkit.importers import pysot as pysot_imp
from siamkit.importers import siamban as ban_imp
from siamkit.importers import siamfc as fc_imp
from siamkit.trackers import create_tracker

R50 = {"base_width": 8, "blocks": [1, 1, 1, 1], "neck_channels": [16, 16, 16]}

CASES = {
    # tracker: (model name, model options, table, names that must appear in the exported file)
    "siamrpnpp_r50": (
        "siamrpnpp_r50",
        R50,
        pysot_imp.PYSOT_TABLE,
        [
            "backbone.layer2.0.downsample.0.weight",
            "neck.downsample3.downsample.1.running_var",
            "rpn_head.rpn4.loc.head.3.bias",
            "rpn_head.cls_weight",
        ],
    ),
    "siammask": (
        "siammask_r50",
        {"base_width": 8, "blocks": [1, 1, 1, 1], "hidden": 16},
        pysot_imp.FOOLWOOD_SIAMMASK_TABLE,
        [
            "features.features.conv1.weight",
            "features.downsample.downsample.0.weight",
            "rpn_model.cls.conv_kernel.0.weight",
            "mask_model.mask.head.3.weight",
            "refine_model.deconv.weight",
        ],
    ),
    "dasiamrpn": (
        "siamrpn_alexnet",
        {"width_mult": 0.25, "hidden": 16},
        da_imp.DASIAMRPN_TABLE,
        [
            "featureExtract.0.weight",
            "featureExtract.15.running_mean",
            "conv_r1.weight",
            "conv_cls2.bias",
            "regress_adjust.weight",
        ],
    ),
    "siamfc": ("siamfc_alexnet", {"width_mult": 0.25}, fc_imp.SIAMFC_TABLE, ["backbone.conv5.0.weight"]),
    "siamban": (
        "siamban_r50",
        R50,
        ban_imp.SIAMBAN_TABLE,
        ["head.box2.cls.conv_kernel.0.weight", "head.loc_scale", "neck.downsample4.downsample.0.weight"],
    ),
}


def random_model(name, options, seed):
    torch.manual_seed(seed)
    model = MODELS.build(name, **options)
    with torch.no_grad():  # make BN statistics non-trivial too
        for key, t in model.state_dict().items():
            if t.is_floating_point() and ("running" in key):
                t.uniform_(0.5, 1.5)
    return model.eval()


@pytest.mark.parametrize("tracker", sorted(CASES))
def test_round_trip_under_third_party_names(tracker, tmp_path):
    arch, options, table, names = CASES[tracker]
    source = random_model(arch, options, seed=1)
    exported = pysot_imp.export_state_dict(source, table)
    for name in names:
        assert name in exported, f"{name} missing from the exported {tracker} checkpoint"
    # Wrap it the way training scripts do: {"state_dict": …, "epoch": …} and DataParallel prefixes.
    wrapped = {"epoch": 20, "state_dict": {f"module.{k}": v for k, v in exported.items()}}
    path = tmp_path / "model.pth"
    torch.save(wrapped, path)
    torch.manual_seed(2)
    t = create_tracker(tracker, weights=str(path), device="cpu", model_options=options,
                       preset=PUBLISHED_PRESETS.get(tracker))
    got = t.model.state_dict()
    want = source.state_dict()
    assert set(got) == set(want)
    for key in want:
        assert torch.equal(got[key], want[key]), key


def test_old_checkpoints_without_batchnorm_counters_load(tmp_path):
    arch, options, table, _ = CASES["dasiamrpn"]
    source = random_model(arch, options, seed=4)
    exported = {k: v for k, v in pysot_imp.export_state_dict(source, table).items() if "num_batches" not in k}
    torch.save(exported, tmp_path / "old.model")
    model = da_imp.import_checkpoint(tmp_path / "old.model", MODELS.build(arch, **options))
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value if "num_batches" not in key else torch.tensor(0)), key


def _exported(tracker="siamban", seed=5):
    arch, options, table, _ = CASES[tracker]
    return arch, options, pysot_imp.export_state_dict(random_model(arch, options, seed), table)


def test_missing_unexpected_and_mismatched_keys_are_listed(tmp_path):
    arch, options, state = _exported()
    state = collections.OrderedDict(state)
    del state["head.box3.loc.head.3.weight"]
    state["head.extra.weight"] = torch.zeros(3)
    state["neck.downsample2.downsample.0.weight"] = torch.zeros(1, 1, 1, 1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(WeightsError) as info:
        ban_imp.import_checkpoint(tmp_path / "bad.pth", MODELS.build(arch, **options))
    err = info.value
    assert err.missing == ["head.box3.loc.head.3.weight"]
    assert err.unexpected == ["head.extra.weight"]
    assert len(err.mismatched) == 1 and err.mismatched[0].startswith("neck.downsample2.downsample.0.weight")
    assert "missing keys (1)" in str(err) and "unexpected keys (1)" in str(err)


def test_wrong_project_checkpoint_is_refused(tmp_path):
    _, _, state = _exported("siamfc")
    torch.save(state, tmp_path / "siamfc.pth")
    with pytest.raises(WeightsError) as info:
        create_tracker("siamban", weights=str(tmp_path / "siamfc.pth"), device="cpu", model_options=R50,
                       preset=PUBLISHED_PRESETS["siamban"])
    assert info.value.missing and info.value.unexpected


def test_truncated_garbage_and_unsafe_files(tmp_path):
    _, options, state = _exported("dasiamrpn")
    path = tmp_path / "full.pth"
    torch.save(state, path)
    data = path.read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.pth").write_text("not a checkpoint")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    torch.save({"epoch": 3}, tmp_path / "empty.pth")
    for name in ("cut.pth", "text.pth", "list.pth", "empty.pth", "missing.pth"):
        with pytest.raises(WeightsError):
            create_tracker("dasiamrpn", weights=str(tmp_path / name), device="cpu", model_options=options,
                           preset=PUBLISHED_PRESETS["dasiamrpn"])


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_weights_only_refuses_code(tmp_path, capsys):
    torch.save({"state_dict": {"x": _Evil()}}, tmp_path / "evil.pth")
    with pytest.raises(WeightsError):
        pysot_imp.read_checkpoint(tmp_path / "evil.pth")
    assert "this must never run" not in capsys.readouterr().out


def test_imported_weights_track_like_the_source(tmp_path):
    arch, options, table, _ = CASES["siamrpnpp_r50"]
    source = random_model(arch, options, seed=7)
    torch.save(pysot_imp.export_state_dict(source, table), tmp_path / "m.pth")
    a = create_tracker("siamrpnpp_r50", weights=str(tmp_path / "m.pth"), device="cpu", model_options=options)
    frame = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    a.init(frame, [50, 40, 30, 20])
    ref = create_tracker("siamrpnpp_r50", device="cpu", model_options=options)
    ref.core.model = source
    ref.init(frame, [50, 40, 30, 20])
    np.testing.assert_allclose(a.track(frame).box, ref.track(frame).box, atol=1e-9)
