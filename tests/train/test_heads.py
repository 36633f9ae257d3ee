"""The Lite0 tracker families and their head-training recipe: trunk split, targets read back from the cache,
exact resume, a frozen trunk, and each family's tracker running the trained model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from siamkit.config import MODELS
from siamkit.losses.tracking import PointTargets
from siamkit.train import heads

TWO_LEVELS = {"levels": ["s16a", "s16"]}  # SiamRPN++'s multi-layer aggregation
FAMILIES = {  # case → (model, model options, tracker, preset)
    "siamfc_lite0": ("siamfc_lite0", {}, "siamfc", "lite0"),
    "siamrpn_lite0": ("siamrpn_lite0", {}, "siamrpn", "lite0"),
    "siamrpnpp_lite0": ("siamrpnpp_lite0", {}, "siamrpnpp_lite0", "lite0"),
    "siamrpnpp_lite0_two_levels": ("siamrpnpp_lite0", TWO_LEVELS, "siamrpnpp_lite0", "lite0"),
    "siamban_lite0": ("siamban_lite0", {}, "siamban", "lite0"),
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


@pytest.mark.parametrize("case", sorted(FAMILIES))
def test_trunk_split_is_the_whole_network_and_the_tracker_maps_fit(case):
    name, options, tracker_name, preset = FAMILIES[case]
    torch.manual_seed(0)
    model = MODELS.build(name, **options).eval()
    z = torch.rand(2, 3, 127, 127) * 255
    x = torch.rand(2, 3, 255, 255) * 255
    whole = model(z, x)
    split = model.search_from_trunk(model.trunk_maps(x), model.template_from_trunk(model.trunk_maps(z)))
    assert whole.keys() == split.keys()
    for key in whole:
        torch.testing.assert_close(whole[key], split[key])
        assert whole[key].shape[-1] == model.score_size == 11

    from siamkit.trackers import create_tracker

    frame = (np.random.default_rng(1).uniform(0, 255, (200, 260, 3))).astype(np.uint8)
    boxes = []
    for backend in ("torch", "onnxruntime"):  # the exported search branch keeps static shapes after the trunk
        torch.manual_seed(0)
        tracker = create_tracker(tracker_name, weights="none", preset=preset, device="cpu", backend=backend,
                                 **({"model_options": options} if options else {}))
        tracker.init(frame, (100, 70, 40, 50))
        boxes.append(tracker.track(frame).box)
    assert np.isfinite(boxes[0]).all() and boxes[0][2] > 0 and boxes[0][3] > 0
    np.testing.assert_allclose(boxes[1], boxes[0], atol=1e-3)


@pytest.mark.parametrize("family", ["siamfc_lite0", "siamrpnpp_lite0", "siamban_lite0", "siamban_acm_lite0"])
def test_head_training_resumes_exactly_and_leaves_the_trunk_alone(tiny_recipe, tmp_path, family):
    exp = heads.from_dict(heads.HeadsExperiment, heads._collate_aug(tiny_recipe(family)))
    model = MODELS.build(exp.model, **exp.model_config, pretrained=True)
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


def test_distractor_templates_move_at_every_level_and_search_maps_stay():
    g = torch.Generator().manual_seed(0)
    owner = torch.arange(6.0).reshape(6, 1, 1, 1)
    batch = {"zf@s16a": owner.expand(6, 2, 3, 3).clone(), "zf@s16": owner.expand(6, 3, 2, 2).clone(),
             "xf@s16": owner.expand(6, 3, 4, 4).clone()}
    heads.make_distractor_pairs(batch, np.zeros(6, bool), 0.5, g)
    moved = batch["zf@s16a"][:, 0, 0, 0]
    assert not torch.equal(moved, owner.flatten()) and torch.equal(batch["zf@s16"][:, 0, 0, 0], moved)
    assert torch.equal(batch["xf@s16"][:, 0, 0, 0], owner.flatten())


def _cache_of(trunk, crops: dict[str, torch.Tensor], split: int, folder) -> heads.CachedPairs:
    """A one-chunk cache of ``crops`` run through the trunk's blocks before ``split`` (labels are zeros)."""
    n = len(crops["xf"])
    with torch.no_grad():
        chunk = {k: trunk.run_blocks(v, 0, split).half() for k, v in crops.items()}
    chunk |= {"label_cls": torch.zeros(n, 11, 11, dtype=torch.int8), "label_loc": torch.zeros(n, 4, 11, 11).half()}
    path = folder / "chunk.pt"
    torch.save(chunk, path)
    return heads.CachedPairs([path])


def test_level_maps_of_the_cache_are_the_trunk_maps_of_the_crops(tmp_path):
    """The frozen blocks between a block-8 cache and SiamRPN++'s two levels, run once over the cache, give
    each pair the maps the tracker computes from its crops (up to the cache's float16)."""
    torch.manual_seed(0)
    model = MODELS.build("siamrpnpp_lite0", **TWO_LEVELS).eval()
    crops = {"zf": torch.rand(3, 3, 127, 127) * 255, "xf": torch.rand(3, 3, 255, 255) * 255}
    split = model.cache_block
    assert split == 8  # the block after the first stride-16 stage
    cache = _cache_of(model.backbone, crops, split, tmp_path)
    heads.add_level_maps(cache, model, split, chunk=2)
    assert sorted(cache.data) == ["label_cls", "label_loc", "xf@s16", "xf@s16a", "zf@s16", "zf@s16a"]
    batch = cache.batch(torch.tensor([2, 0]))
    with torch.no_grad():
        for key in ("zf", "xf"):
            expected = model.trunk_maps(crops[key][[2, 0]])
            got = heads.level_batch(batch, key, model.levels)
            for level, e, g in zip(model.levels, expected, got, strict=True):
                scale = e.abs().max()
                torch.testing.assert_close(g, e, atol=2e-2 * scale, rtol=0, msg=f"{key}@{level}")

    one = MODELS.build("siamrpnpp_lite0").eval()  # one level at the cache's end: the maps are kept as they are
    cache = _cache_of(one.backbone, {"zf": crops["zf"][:1], "xf": crops["xf"][:1]}, 11, tmp_path)
    xf = cache.data["xf"]
    heads.add_level_maps(cache, one, 11)
    assert cache.data["xf@s16"] is xf and isinstance(heads.level_batch(cache.batch(torch.tensor([0])), "xf",
                                                                       one.levels), torch.Tensor)


def test_multi_level_options_are_checked():
    from siamkit.errors import ConfigError
    from siamkit.nn.lite0_trackers import SiamRPNLite0

    model = MODELS.build("siamrpnpp_lite0", levels=["s16", "s16a"])
    assert model.levels == ("s16a", "s16")  # block order, whatever order is asked
    with pytest.raises(ConfigError, match="Choose among"):
        MODELS.build("siamrpnpp_lite0", levels=["s8", "s16"])  # another stride: another grid
    with pytest.raises(ConfigError, match="depth-wise"):
        SiamRPNLite0("upchannel", levels=("s16a", "s16"))  # SiamRPN's up-channel head has one level


def test_publish_ships_float16_weights_that_load_back_as_float32(tiny_recipe, tmp_path):
    from safetensors.torch import load_file

    from siamkit import zoo

    ship = tmp_path / "zoo" / "siamfc_lite0.safetensors"
    data = dict(tiny_recipe("siamfc_lite0"), ship=str(ship), steps=2)
    results = heads.run_heads(data, out_dir=tmp_path / "run", publish=True)
    assert results["shipped"] == str(ship)
    stored = load_file(str(ship))
    assert {v.dtype for v in stored.values() if v.is_floating_point()} == {torch.float16}
    model, entry = zoo.load_model(ship)
    assert entry.meta["tracker"] == "siamfc" and next(model.parameters()).dtype == torch.float32
