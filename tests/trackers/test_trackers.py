"""Every registered Siamese tracker with the real networks (random, narrow weights) on a shared clip.

The networks are the published architectures built with small widths (``model_options``) so
the whole file runs in seconds on one CPU thread; geometry (strides, map sizes) is unchanged.
"""

from __future__ import annotations

import dataclasses
import logging

import cv2
import numpy as np
import pytest
import torch
import yaml
from conftest import PUBLISHED_PRESETS, shared_path

from siamkit.config import from_dict
from siamkit.errors import BoxError, ConfigError, FrameError, RegistryError, TrackerStateError, WeightsError
from siamkit.trackers import available_trackers, create_tracker
from siamkit.trackers.build import CONFIG_DIR, preset_names, resolve_config
from siamkit.trackers.dasiamrpn import DaSiamRPNConfig
from siamkit.trackers.siamban import SiamBANACMConfig, SiamBANConfig
from siamkit.trackers.siamfc import SiamFCConfig
from siamkit.trackers.siammask import SiamMaskConfig, mask_polygon
from siamkit.trackers.siamrpn import SiamRPNAlexConfig, SiamRPNPPAlexConfig, SiamRPNPPMobileConfig, SiamRPNPPR50Config

R50 = {"base_width": 8, "blocks": [1, 1, 1, 1], "neck_channels": [16, 16, 16]}
TINY = {
    "siamfc": {"width_mult": 0.25},
    "siamrpn": {"width_mult": 0.25, "hidden": 16},
    "dasiamrpn": {"width_mult": 0.25, "hidden": 16},
    "siamrpnpp_alexnet": {"width_mult": 0.25, "hidden": 16},
    "siamrpnpp_r50": R50,
    "siamrpnpp_mobilev2": {"width_mult": 0.35, "neck_channels": [16, 16, 16]},
    "siammask": {"base_width": 8, "blocks": [1, 1, 1, 1], "hidden": 16},
    "siamban": R50,
    "siamban_acm": R50,
}
CONFIGS = {
    "siamfc": SiamFCConfig,
    "siamrpn": SiamRPNAlexConfig,
    "dasiamrpn": DaSiamRPNConfig,
    "siamrpnpp_alexnet": SiamRPNPPAlexConfig,
    "siamrpnpp_r50": SiamRPNPPR50Config,
    "siamrpnpp_mobilev2": SiamRPNPPMobileConfig,
    "siammask": SiamMaskConfig,
    "siamban": SiamBANConfig,
    "siamban_acm": SiamBANACMConfig,
}


def tiny(name: str, seed: int = 0, **options):
    """The published tracker ``name`` on a tiny random network."""
    torch.manual_seed(seed)
    if "config" not in options:
        options.setdefault("preset", PUBLISHED_PRESETS.get(name))
    return create_tracker(name, device="cpu", model_options=TINY[name], **options)


@pytest.fixture(scope="module")
def crossing():
    seq = shared_path("tracking", "Crossing")
    gt = np.loadtxt(seq / "groundtruth_rect.txt", delimiter=",")
    frames = [cv2.imread(str(seq / "img" / f"{i:04d}.jpg")) for i in range(1, 11)]
    box = gt[0].copy()
    box[:2] -= 1
    return frames, box


def assert_valid(box, frame):
    h, w = frame.shape[:2]
    assert np.isfinite(box).all() and box[2] > 0 and box[3] > 0
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    assert -1 <= cx <= w + 1 and -1 <= cy <= h + 1, f"box {box} left the {w}×{h} frame"


def test_every_tracker_is_registered():
    assert set(TINY) <= set(available_trackers())


@pytest.mark.parametrize("name", sorted(TINY))
def test_tracker_runs_on_a_real_clip(name, crossing, caplog):
    frames, box = crossing
    with caplog.at_level(logging.WARNING, logger="siamkit"):
        tracker = tiny(name)
    assert "randomly initialised" in caplog.text
    tracker.init(frames[0], box)
    for frame in frames[1:]:
        r = tracker.track(frame)
        assert_valid(r.box, frame)
        assert np.isfinite(r.score)
        if name == "siammask":
            assert r.mask.shape == frame.shape[:2] and r.mask.min() >= 0 and r.mask.max() <= 1
            assert r.polygon.shape == (4, 2) and np.isfinite(r.polygon).all()


def test_full_size_alexnet_model_runs(crossing):
    frames, box = crossing
    torch.manual_seed(0)
    tracker = create_tracker("siamrpnpp_alexnet", weights="none", device="cpu")
    tracker.init(frames[0], box)
    for frame in frames[1:3]:
        assert_valid(tracker.track(frame).box, frame)


def test_template_is_computed_once(crossing, monkeypatch):
    frames, box = crossing
    tracker = tiny("siamrpnpp_alexnet")
    calls = []
    original = tracker.model.template
    monkeypatch.setattr(tracker.model, "template", lambda *a, **k: calls.append(1) or original(*a, **k))
    tracker.init(frames[0], box)
    for f in frames[1:4]:
        tracker.track(f)
    assert len(calls) == 1


# --------------------------------------------------------------------------- variants


def test_dasiamrpn_adaptive_search_for_small_targets(crossing):
    frames, _ = crossing
    tracker = tiny("dasiamrpn")
    tracker.init(frames[0], [100, 100, 8, 9])  # 72 px² < 0.4 % of 360×240
    assert tracker._state["instance"].tolist() == [287]
    assert_valid(tracker.track(frames[1]).box, frames[1])
    tracker.init(frames[0], [100, 100, 30, 40])
    assert tracker._state["instance"].tolist() == [271]


def test_acm_fast_motion_switches_to_the_large_search(crossing):
    frames, box = crossing
    # A random network's displacement is arbitrary; with the threshold crossed the search becomes 510.
    tracker = tiny("siamban_acm")
    tracker.init(frames[0], box)
    seen = set()
    for f in frames[1:4]:
        r = tracker.track(f)
        seen.add(int(tracker._state["instance"][0]))
        assert_valid(r.box, f)
    assert seen <= {255, 510}
    off = tiny("siamban_acm", fast_motion=False)
    off.init(frames[0], box)
    for f in frames[1:4]:
        off.track(f)
    assert off._state["instance"].tolist() == [255]


def test_mask_polygon_is_the_min_area_rectangle():
    mask = np.zeros((100, 120), np.float32)
    pts = cv2.boxPoints(((60.0, 50.0), (50.0, 20.0), 30.0))
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1.0)
    poly = mask_polygon(mask, 0.5, 100, np.array([0, 0, 1, 1.0]))
    (cx, cy), (w, h), _ = cv2.minAreaRect(poly.astype(np.float32))
    assert (cx, cy) == pytest.approx((60, 50), abs=1.0)
    assert sorted([w, h]) == pytest.approx([20, 50], abs=2.0)
    empty = mask_polygon(np.zeros((10, 10), np.float32), 0.5, 100, np.array([1, 2, 3, 4.0]))
    np.testing.assert_allclose(empty, [[1, 2], [4, 2], [4, 6], [1, 6]])


@pytest.mark.parametrize("name", ["siamfc", "siamrpnpp_r50", "siammask", "siamban", "dasiamrpn"])
def test_target_leaving_the_frame_never_crashes(name):
    frames = []
    for t in range(10):
        f = np.full((120, 160, 3), 40, np.uint8)
        x = 60 + 12 * t  # moves right and out of the frame
        cv2.rectangle(f, (x, 50), (x + 20, 70), (255, 255, 255), -1)
        frames.append(f)
    tracker = tiny(name, long_term=True) if name == "dasiamrpn" else tiny(name)
    if name == "dasiamrpn":  # a lost target is searched at 831 px: keep this one short
        frames = frames[::2]
    tracker.init(frames[0], [60, 50, 21, 21])
    for f in frames[1:]:
        assert_valid(tracker.track(f).box, f)


# --------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_the_right_errors(crossing):
    frames, box = crossing
    tracker = tiny("siamrpnpp_alexnet")
    with pytest.raises(TrackerStateError):
        tracker.track(frames[0])
    for bad in (
        [],
        [1, 2, 3],
        [np.nan, 1, 10, 10],
        [10, 10, 0, 5],
        [10, 10, 5, -1],
        [1000, 10, 5, 5],
        [-50, 0, 10, 10],
    ):
        with pytest.raises(BoxError):
            tracker.init(frames[0], bad)
    with pytest.raises(FrameError):
        tracker.init(frames[0][:, :, 0], box)
    with pytest.raises(FrameError):
        tracker.init(frames[0].astype(np.float32), box)
    with pytest.raises(FrameError):
        tracker.init(np.zeros((0, 10, 3), np.uint8), box)
    tracker.init(frames[0], box)
    with pytest.raises(FrameError):
        tracker.track(frames[1][:100])
    with pytest.raises(FrameError):
        tracker.track(frames[1].astype(np.int32))


def test_unknown_tracker_and_options():
    with pytest.raises(RegistryError, match="Available"):
        create_tracker("siamfoo")
    with pytest.raises(ConfigError, match="penalty_kk"):
        create_tracker("siamrpnpp_alexnet", device="cpu", penalty_kk=0.1)
    with pytest.raises(ConfigError, match="preset"):
        create_tracker("siamrpnpp_r50", device="cpu", preset="nope")
    with pytest.raises(ConfigError):
        create_tracker("siamfc", device="tpu:7")


# --------------------------------------------------------------------------- configs


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_default_preset_equals_dataclass_defaults(name):
    data = yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text())
    cls = CONFIGS[name]
    assert from_dict(cls, data["presets"][PUBLISHED_PRESETS.get(name, data["default"])]) == cls()
    for preset in preset_names(name):  # every preset loads strictly
        assert isinstance(resolve_config(cls, name, preset=preset), cls)


def test_published_values():
    """Spot checks against the reference tables (pysot, siamban, DaSiamRPN, siamfc-pytorch)."""
    r50 = {p: resolve_config(SiamRPNPPR50Config, "siamrpnpp_r50", preset=p) for p in preset_names("siamrpnpp_r50")}
    assert (r50["vot"].penalty_k, r50["vot"].window_influence, r50["vot"].lr) == (0.05, 0.42, 0.38)
    assert (r50["otb"].penalty_k, r50["otb"].window_influence, r50["otb"].lr) == (0.24, 0.5, 0.25)
    assert r50["otb"].model_options == {"weighted": False}
    alex = SiamRPNPPAlexConfig()
    assert (alex.instance_size, alex.base_size, alex.penalty_k) == (287, 0, 0.16)
    ban = SiamBANConfig()
    assert (ban.penalty_k, ban.window_influence, ban.lr) == (0.08514, 0.46325, 0.44418)
    big = DaSiamRPNConfig()
    assert (big.penalty_k, big.window_influence, big.lr, big.adaptive) == (0.055, 0.42, 0.295, True)
    lt = resolve_config(DaSiamRPNConfig, "dasiamrpn", preset="pysot_r50_lt")
    assert (lt.window_influence, lt.lr, lt.confidence_low, lt.confidence_high, lt.lost_instance_size) == (
        0.28,
        0.22,
        0.8,
        0.998,
        831,
    )
    fc = SiamFCConfig()
    assert (fc.scale_step, fc.scale_penalty, fc.scale_lr, fc.window_influence) == (1.0375, 0.9745, 0.59, 0.176)
    mask = SiamMaskConfig()
    assert (mask.penalty_k, mask.window_influence, mask.lr, mask.mask_threshold) == (0.10, 0.41, 0.32, 0.15)


def test_config_from_path_dataclass_and_overrides(tmp_path):
    single = tmp_path / "mine.yaml"
    single.write_text(yaml.safe_dump({"penalty_k": 0.2, "model": "siamrpnpp_alexnet"}))
    cfg = resolve_config(SiamRPNPPAlexConfig, "siamrpnpp_alexnet", str(single))
    assert cfg.penalty_k == 0.2 and cfg.instance_size == 287
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"penalty": 0.2}))
    with pytest.raises(ConfigError, match="penalty"):
        resolve_config(SiamRPNPPAlexConfig, "siamrpnpp_alexnet", str(bad))
    custom = dataclasses.replace(SiamRPNPPAlexConfig(), lr=0.5, model_options=TINY["siamrpnpp_alexnet"])
    tracker = create_tracker("siamrpnpp_alexnet", device="cpu", config=custom)
    assert tracker.config.lr == 0.5
    assert create_tracker("siamrpnpp_alexnet", device="cpu", config=custom, lr=0.1).config.lr == 0.1
    with pytest.raises(ConfigError):
        resolve_config(SiamRPNPPAlexConfig, "siamrpnpp_alexnet", config=123)


# --------------------------------------------------------------------------- weights


def test_zoo_weights_round_trip(crossing, tmp_path):
    from siamkit import zoo

    frames, box = crossing
    a = tiny("siamrpnpp_alexnet", seed=3)
    path = zoo.save_model(a.model, tmp_path / "alex", "siamrpnpp_alexnet", config=TINY["siamrpnpp_alexnet"])
    b = create_tracker("siamrpnpp_alexnet", weights=str(path), device="cpu")
    for t in (a, b):
        t.init(frames[0], box)
    for f in frames[1:4]:
        np.testing.assert_allclose(a.track(f).box, b.track(f).box, atol=1e-6)
    with pytest.raises(WeightsError, match="siamrpnpp_alexnet"):
        create_tracker("siamban", weights=str(path), device="cpu")
    with pytest.raises(WeightsError):
        create_tracker("siamrpnpp_alexnet", weights=str(tmp_path / "missing.pth"), device="cpu")


def test_mask_warp_places_the_cell_window_in_the_image():
    """A mask of ones at the centre cell covers the 127·s square around the search centre (pysot geometry)."""
    from siamkit.trackers.siammask import mask_to_image

    cfg = SiamMaskConfig()
    s_x, centre = 510.0, (300.0, 200.0)
    scale = s_x / cfg.instance_size  # 2 image px per crop px
    origin = (centre[0] - s_x / 2, centre[1] - s_x / 2)
    img = mask_to_image(np.ones((127, 127), np.float32), origin, scale, (12, 12), cfg, (640, 480))
    ys, xs = np.nonzero(img > 0.5)
    half = cfg.exemplar_size * scale / 2  # 127 px
    assert xs.min() == pytest.approx(centre[0] - half, abs=2.5) and xs.max() == pytest.approx(centre[0] + half, abs=2.5)
    assert ys.min() == pytest.approx(centre[1] - half, abs=2.5) and ys.max() == pytest.approx(centre[1] + half, abs=2.5)
    # One cell to the right moves the window by stride · scale = 16 image px.
    right = mask_to_image(np.ones((127, 127), np.float32), origin, scale, (12, 13), cfg, (640, 480))
    assert np.nonzero(right > 0.5)[1].min() - xs.min() == pytest.approx(16, abs=1)


def test_siammask_without_refine_uses_the_63_mask(crossing):
    frames, box = crossing
    torch.manual_seed(0)
    tracker = create_tracker(
        "siammask", device="cpu", refine=False, model_options={**TINY["siammask"], "refine": False},
        preset=PUBLISHED_PRESETS["siammask"],
    )
    tracker.init(frames[0], box)
    r = tracker.track(frames[1])
    assert r.mask.shape == frames[1].shape[:2] and r.polygon.shape == (4, 2)
    assert_valid(r.box, frames[1])


PYSOT_LT_YAML = """
META_ARC: "siamrpn_r50_l234_dwxcorr"
BACKBONE:
    TYPE: "resnet50"
    KWARGS:
        used_layers: [2, 3, 4]
    LAYERS: [2, 3, 4]
ADJUST:
    ADJUST: true
    TYPE: "AdjustAllLayer"
    ADJUST_CHANNEL: [128, 256, 512]
    KWARGS:
        in_channels: [512, 1024, 2048]
        out_channels: [128, 256, 512]
RPN:
    TYPE: 'MultiRPN'
    WEIGHTED: True
    KWARGS:
        anchor_num: 5
        in_channels: [128, 256, 512]
        weighted: true
MASK:
    MASK: False
ANCHOR:
    STRIDE: 8
    RATIOS: [0.33, 0.5, 1, 2, 3]
    SCALES: [8]
    ANCHOR_NUM: 5
TRACK:
    TYPE: 'SiamRPNLTTracker'
    PENALTY_K: 0.05
    WINDOW_INFLUENCE: 0.28
    LR: 0.22
    EXEMPLAR_SIZE: 127
    INSTANCE_SIZE: 255
    BASE_SIZE: 8
    CONTEXT_AMOUNT: 0.5
    CONFIDENCE_LOW: 0.8
    CONFIDENCE_HIGH: 0.998
"""


def test_pysot_experiment_files_load_with_legacy_keys(tmp_path, caplog):
    """pysot's own ``siamrpn_r50_l234_dwxcorr_lt/config.yaml`` (restated) equals the published preset."""
    path = tmp_path / "config.yaml"
    path.write_text(PYSOT_LT_YAML)
    with caplog.at_level(logging.WARNING, logger="siamkit"):
        cfg = resolve_config(DaSiamRPNConfig, "dasiamrpn", str(path))
    assert "BACKBONE.LAYERS" in caplog.text and "ADJUST.ADJUST_CHANNEL" in caplog.text
    published = resolve_config(DaSiamRPNConfig, "dasiamrpn", preset="pysot_r50_lt")
    assert dataclasses.replace(cfg, source="") == dataclasses.replace(published, source="")
    mask = tmp_path / "mask.yaml"
    mask.write_text("TRACK:\n  TYPE: SiamMaskTracker\n  MASK_THERSHOLD: 0.15\n  PENALTY_K: 0.10\n")
    assert resolve_config(SiamMaskConfig, "siammask", str(mask)).mask_threshold == 0.15


def test_torch_frames_give_the_same_boxes(crossing):
    frames, box = crossing
    a, b = tiny("siamban"), tiny("siamban")
    a.init(frames[0], box)
    b.init(torch.from_numpy(frames[0]), box)
    for f in frames[1:3]:
        np.testing.assert_allclose(a.track(f).box, b.track(torch.from_numpy(f)).box, atol=1e-9)


def test_a_tracker_without_trained_weights_is_an_error_unless_random_weights_are_asked_for(caplog):
    from siamkit.errors import WeightsError

    with pytest.raises(WeightsError, match="No trained weights ship for siamrpnpp_r50") as err:
        create_tracker("siamrpnpp_r50", device="cpu")
    assert "--weights none" in err.value.hint and "nanotrack_lite0" in err.value.hint
    with caplog.at_level("WARNING"):
        tracker = create_tracker("siamrpnpp_r50", weights="none", device="cpu")
    assert tracker.name == "siamrpnpp_r50" and "randomly initialised" in caplog.text
