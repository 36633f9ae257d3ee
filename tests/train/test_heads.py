"""The Lite0 tracker families and their head-training recipe: trunk split, targets read back from the cache,
exact resume, a frozen trunk, and each family's tracker running the trained model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from siamkit.config import MODELS
from siamkit.losses.tracking import PointTargets
from siamkit.train import heads

FAMILIES = {  # model → (tracker, preset)
    "siamfc_lite0": ("siamfc", "lite0"),
    "siamrpn_lite0": ("siamrpn", "lite0"),
    "siamrpnpp_lite0": ("siamrpnpp_lite0", "lite0"),
    "siamban_lite0": ("siamban", "lite0"),
}


@pytest.fixture(scope="module", autouse=True)
def _registered():
    from siamkit import zoo

    zoo._ensure_registered()


def test_cached_point_distances_give_the_search_box_back():
    rng = np.random.default_rng(0)
    targets = PointTargets(score_size=16, search_size=255, stride=16)
    boxes = [(100.5, 90.0, 160.0, 171.25), (20.0, 30.0, 60.0, 50.0)]
    label_loc = torch.stack([torch.from_numpy(targets(b, False, rng)["label_loc"]) for b in boxes]
                            + [torch.from_numpy(targets(boxes[0], True, rng)["label_loc"])])
    got, negative = heads.boxes_from_point_targets(label_loc.half(), 16, 255)
    np.testing.assert_allclose(got[:2], boxes, atol=0.13)  # float16 storage: 1/8 px at 128–256
    assert negative.tolist() == [False, False, True]
    c, h = 127.5, heads.NEGATIVE_BOX_SIDE / 2
    np.testing.assert_allclose(got[2], (c - h, c - h, c + h, c + h))


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_trunk_split_is_the_whole_network_and_the_tracker_maps_fit(name):
    torch.manual_seed(0)
    model = MODELS.build(name).eval()
    z = torch.rand(2, 3, 127, 127) * 255
    x = torch.rand(2, 3, 255, 255) * 255
    whole = model(z, x)
    split = model.search_from_trunk(model.backbone(x), model.template_from_trunk(model.backbone(z)))
    assert whole.keys() == split.keys()
    for key in whole:
        torch.testing.assert_close(whole[key], split[key])
        assert whole[key].shape[-1] == model.score_size == 11

    from siamkit.trackers import create_tracker

    tracker_name, preset = FAMILIES[name]
    frame = (np.random.default_rng(1).uniform(0, 255, (200, 260, 3))).astype(np.uint8)
    boxes = []
    for backend in ("torch", "onnxruntime"):  # the exported search branch keeps static shapes after the trunk
        torch.manual_seed(0)
        tracker = create_tracker(tracker_name, weights="none", preset=preset, device="cpu", backend=backend)
        tracker.init(frame, (100, 70, 40, 50))
        boxes.append(tracker.track(frame).box)
    assert np.isfinite(boxes[0]).all() and boxes[0][2] > 0 and boxes[0][3] > 0
    np.testing.assert_allclose(boxes[1], boxes[0], atol=1e-3)


@pytest.mark.parametrize("family", ["siamfc_lite0", "siamrpnpp_lite0", "siamban_lite0", "siamban_acm_lite0"])
def test_head_training_resumes_exactly_and_leaves_the_trunk_alone(tiny_recipe, tmp_path, family):
    exp = heads.from_dict(heads.HeadsExperiment, heads._collate_aug(tiny_recipe(family)))
    model = MODELS.build(exp.model, pretrained=True)
    paths = heads.build_cache(exp, model, tmp_path / "cache", tmp_path)
    cache = heads.CachedPairs(paths)
    assert not cache.has_teacher and cache.size == 12
    validate = heads.Validator(exp, heads.validation_sequences(exp, tmp_path), tmp_path)
    start = {k: v.clone() for k, v in heads.head_state(model).items()}
    trunk_before = {k: v.clone() for k, v in model.backbone.state_dict().items()}

    straight = heads.train_heads(model, cache, exp, tmp_path / "a", validate)
    final = {k: v.clone() for k, v in heads.head_state(model).items()}
    learns = "xorr_bbox" if "acm" in family else ""  # SiamBAN-ACM: the box-prior branch learns too
    assert any(not torch.equal(final[k], start[k]) for k in start if learns in k)
    assert [v["step"] for v in straight["validation"]] == [2, 4]
    assert all(0.0 <= v["auc"] <= 1.0 for v in straight["validation"])

    heads.load_head_state(model, start)
    heads.train_heads(model, cache, exp, tmp_path / "b", validate, steps=2)
    heads.load_head_state(model, start)  # a fresh process: only the checkpoint carries the state
    resumed = heads.train_heads(model, cache, exp, tmp_path / "b", validate, resume=True)
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in straight["history"]]
    for key, value in heads.head_state(model).items():
        torch.testing.assert_close(value, final[key])
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, trunk_before[key]), key


def test_a_model_that_does_not_split_at_the_trunk_is_refused(tiny_recipe, tmp_path):
    data = dict(tiny_recipe("siamban_lite0"), model="siamban_alexnet")
    with pytest.raises(heads.ConfigError, match="does not split at the trunk"):
        heads.run_heads(data, out_dir=tmp_path / "run")


def test_distractor_pairs_swap_templates_among_positive_pairs_only():
    g = torch.Generator().manual_seed(0)
    batch = {"zf": torch.arange(8.0).reshape(8, 1, 1, 1).expand(8, 2, 3, 3).clone()}
    negative = np.array([False, False, True, False, False, False, True, False])
    flags = heads.make_distractor_pairs(batch, negative, 0.5, g)
    owner = batch["zf"][:, 0, 0, 0].long().numpy()  # which pair's template each sample now holds
    swapped = owner != np.arange(8)
    assert swapped.sum() == 4 and not swapped[negative].any()  # half the batch, taken from positives only
    assert flags[swapped].all() and (flags == (negative | swapped)).all()
    assert set(owner[swapped]) == set(np.flatnonzero(swapped))  # templates move among the chosen pairs
    unchanged = heads.make_distractor_pairs({"zf": torch.zeros(2, 1, 1, 1)}, np.array([True, False]), 1.0, g)
    assert unchanged.tolist() == [True, False]  # fewer than two positives: nothing to swap
