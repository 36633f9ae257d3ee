"""Options of the §1 core shared by SiamRPN/SiamRPN++/SiamBAN: kept aspect ratio and RGB crops."""

from __future__ import annotations

import numpy as np
import torch

from siamkit.cli.eval import parse_options
from siamkit.data.synthetic import make_demo_clip
from siamkit.trackers import create_tracker

TINY = {"model_options": {"width_mult": 0.25, "hidden": 32}}


def _boxes(**options):
    torch.manual_seed(0)
    clip = make_demo_clip(8)
    # lr 1 without the size penalty: the box takes the network's size at once, so updates are visible
    tracker = create_tracker("siamrpnpp_alexnet", device="cpu", lr=1.0, penalty_k=0.0, **TINY, **options)
    tracker.init(clip.frames[0], clip.boxes[0])
    return clip.boxes[0], np.array([tracker.track(f).box for f in clip.frames[1:]])


def test_keep_aspect_changes_scale_only():
    first, free = _boxes()
    _, kept = _boxes(keep_aspect=True)
    ratio = first[2] / first[3]
    np.testing.assert_allclose(kept[:, 2] / kept[:, 3], ratio, rtol=1e-9)
    assert np.abs(kept[:, 2] - first[2]).max() > 1e-3  # the scale still follows the network
    assert np.abs(free[:, 2] / free[:, 3] - ratio).max() > 1e-6  # without it the aspect ratio drifts


def test_rgb_feeds_reversed_channels():
    seen = []
    tracker = create_tracker("siamrpnpp_alexnet", device="cpu", rgb=True, **TINY)
    original = tracker.model.template
    tracker.model.template = lambda z: seen.append(z) or original(z)
    frame = np.zeros((120, 160, 3), np.uint8)
    frame[..., 0] = 200  # blue in BGR
    tracker.init(frame, (60, 40, 30, 30))
    assert seen[0][0, 2].mean() > 150 and seen[0][0, 0].mean() < 1  # blue arrives as the last (RGB) channel


def test_cli_options_parse_numbers_and_booleans():
    assert parse_options(["lr=0.3", "n=2", "keep_aspect=true", "rgb=False", "preset=otb"]) == {
        "lr": 0.3, "n": 2, "keep_aspect": True, "rgb": False, "preset": "otb"}
