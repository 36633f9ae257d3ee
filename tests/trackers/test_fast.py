"""optimise_tracker: the fast paths must not change the boxes (shared clip, plain path as reference)."""

from __future__ import annotations

import copy

import cv2
import numpy as np
import pytest
import torch
from conftest import shared_path

from siamkit.errors import ConfigError
from siamkit.trackers import create_tracker
from siamkit.trackers.fast import optimise_tracker, reset_tracker

FRAMES = 8
TOL_PX = 1e-3  # float32 rounding of a different conv algorithm; boxes are in pixels


def clip(name: str = "Crossing", n: int = FRAMES):
    seq = shared_path("tracking", name)
    gt = np.loadtxt(seq / "groundtruth_rect.txt", delimiter=",")[0].copy()
    gt[:2] -= 1
    return [cv2.imread(str(seq / "img" / f"{i:04d}.jpg")) for i in range(1, n + 1)], gt


def boxes_of(tracker, frames, box):
    tracker.init(frames[0], box)
    return np.stack([tracker.track(f).box for f in frames[1:]])


@pytest.fixture(scope="module")
def plain():
    torch.manual_seed(1)
    return create_tracker("siamrpnpp_alexnet", device="cpu", model_options={"width_mult": 0.25, "hidden": 32})


def test_channels_last_keeps_boxes(plain):
    frames, box = clip()
    fast = optimise_tracker(copy.deepcopy(plain), channels_last=True)
    conv = next(m for m in fast.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()  # the layout really changed
    ref = boxes_of(plain, frames, box)
    got = boxes_of(fast, frames, box)
    np.testing.assert_allclose(got, ref, atol=TOL_PX)
    assert np.abs(np.diff(ref[:, :2], axis=0)).max() > 0.5  # the boxes move: the check is not trivial


def test_reset_restores_plain_layout(plain):
    fast = optimise_tracker(copy.deepcopy(plain), channels_last=True)
    reset_tracker(fast)
    assert all(p.is_contiguous() for p in fast.model.parameters())
    assert "search" not in fast.model.__dict__


def test_compile_wraps_once_and_reset_unwraps(plain):
    """Wrapping only (no call, so no compile cost): idempotent and reversible."""
    fast = optimise_tracker(copy.deepcopy(plain), compile=True)
    first = fast.model.__dict__["search"]
    optimise_tracker(fast, compile=True)
    assert fast.model.__dict__["search"] is first
    reset_tracker(fast)
    assert "search" not in fast.model.__dict__ and "template" not in fast.model.__dict__


def test_peer_without_model_is_rejected():
    class NoModel:
        pass

    with pytest.raises(ConfigError, match="no PyTorch model"):
        optimise_tracker(NoModel(), channels_last=True)
