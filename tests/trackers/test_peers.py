"""OpenCV peers behind the Tracker protocol, on the first frames of a shared clip."""

import numpy as np
import pytest
from conftest import shared_path

from siamkit.data.benchmarks import open_dataset
from siamkit.errors import ConfigError, NotAvailableError
from siamkit.eval.tracking.ope import box_iou
from siamkit.trackers import available_trackers, create_tracker
from siamkit.trackers.base import Tracker


@pytest.fixture(scope="module")
def biker():
    return open_dataset(f"otb:{shared_path('tracking')}")["Biker"]


@pytest.mark.parametrize("name", ["opencv:csrt", "opencv:kcf", "opencv:mil", "opencv:nano"])
def test_peer_tracks_first_frames(name, biker, monkeypatch):
    if name == "opencv:nano":
        monkeypatch.setenv("SIAMKIT_NANOTRACK_DIR", str(shared_path("peers", "nanotrack_v2")))
    assert name in available_trackers()
    tracker = create_tracker(name)
    assert isinstance(tracker, Tracker)
    frames = list(biker.frames(0, 6))
    tracker.init(frames[0], biker.gt[0])
    boxes = np.array([tracker.track(f).box for f in frames[1:]])
    assert boxes.shape == (5, 4) and np.isfinite(boxes).all()
    # the biker barely moves in the first frames: every peer stays on it
    assert box_iou(boxes, biker.gt[1:6]).min() > 0.3


def test_nano_needs_its_onnx_files(tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMKIT_NANOTRACK_DIR", str(tmp_path))
    with pytest.raises(NotAvailableError, match="SIAMKIT_NANOTRACK_DIR"):
        create_tracker("opencv:nano")


def test_peers_reject_weights_and_unknown_options():
    with pytest.raises(ConfigError, match="takes no weights"):
        create_tracker("opencv:csrt", weights="x.safetensors")
    with pytest.raises(ConfigError, match="Unknown options"):
        create_tracker("opencv:mil", colour=True)


def test_default_kcf_failure_is_sticky_and_thr0_keeps_going(biker):
    frames = list(biker.frames(0, 30))
    results = {}
    for name in ("opencv:kcf-sticky", "opencv:kcf"):
        tracker = create_tracker(name)
        tracker.init(frames[0], biker.gt[0])
        results[name] = [tracker.track(f).extra["ok"] for f in frames[1:]]
    sticky = results["opencv:kcf-sticky"]
    first = sticky.index(False)
    assert not any(sticky[first:])  # once failed, it never reports success again on this clip
    assert all(results["opencv:kcf"])
