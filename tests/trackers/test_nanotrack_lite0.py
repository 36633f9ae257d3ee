"""The nanotrack_lite0 tracker: a zoo model of that architecture, its sidecar's settings, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from siamkit import create_tracker, zoo
from siamkit.errors import ConfigError
from siamkit.nn.nanotrack_lite0 import NanoTrackLite0


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("zoo") / "lite0.safetensors"
    settings = {"penalty_k": 0.2, "window_influence": 0.3, "lr": 0.5}
    return zoo.save_model(NanoTrackLite0().eval(), path, "nanotrack_lite0", {"width": 96, "depth": 6},
                          {"tracker": "nanotrack_lite0", "tracker_settings": settings, "task": "tracking"})


def test_settings_come_from_the_sidecar_and_options_override_them(weights):
    tracker = create_tracker("nanotrack_lite0", weights=str(weights), device="cpu")
    assert (tracker.config.penalty_k, tracker.config.window_influence, tracker.config.lr) == (0.2, 0.3, 0.5)
    tracker = create_tracker("nanotrack_lite0", weights=str(weights), device="cpu", lr=0.1)
    assert tracker.config.lr == 0.1 and tracker.config.penalty_k == 0.2


def test_tracks_a_moving_square(weights):
    tracker = create_tracker("nanotrack_lite0", weights=str(weights), device="cpu")
    frame = np.full((200, 240, 3), 90, np.uint8)
    frame[80:120, 100:130] = (20, 200, 240)
    tracker.init(frame, (100, 80, 30, 40))
    result = tracker.track(frame)
    assert result.box.shape == (4,) and np.isfinite(result.box).all() and 0 <= result.score <= 1


def test_unknown_option_and_wrong_architecture_are_clear_errors(weights, tmp_path):
    with pytest.raises(ConfigError, match="Unknown option"):
        create_tracker("nanotrack_lite0", weights=str(weights), device="cpu", windw=0.3)
    from siamkit.nn.nanotrack import NanoTrackV2

    other = zoo.save_model(NanoTrackV2().eval(), tmp_path / "v2.safetensors", "nanotrack_v2", {}, {})
    with pytest.raises(ConfigError, match="not 'nanotrack_lite0'"):
        create_tracker("nanotrack_lite0", weights=str(other), device="cpu")


def test_batches_like_the_other_trackers(weights):
    from siamkit.trackers.engine import BatchedTracker

    frames = []
    for k in range(4):
        frame = np.full((200, 240, 3), 90, np.uint8)
        frame[80 + 2 * k : 120 + 2 * k, 100 + 3 * k : 130 + 3 * k] = (20, 200, 240)
        frame[20:50, 150 - k : 190 - k] = (200, 40, 60)
        frames.append(frame)
    boxes = np.array([[100, 80, 30, 40], [150, 20, 40, 30]], np.float64)
    batched = BatchedTracker(create_tracker("nanotrack_lite0", weights=str(weights), device="cpu"))
    batched.add(frames[0], boxes)
    singles = [create_tracker("nanotrack_lite0", weights=str(weights), device="cpu") for _ in boxes]
    for tracker, box in zip(singles, boxes, strict=True):
        tracker.init(frames[0], box)
    for frame in frames[1:]:
        for got, tracker in zip(batched.track(frame), singles, strict=True):
            want = tracker.track(frame)
            np.testing.assert_allclose(got.box, want.box, rtol=0, atol=1e-3)
            assert got.score == pytest.approx(want.score, abs=1e-4)
