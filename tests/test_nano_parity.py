"""siamkit's NanoTrack against the original HonglinChu PyTorch tracker, side by side on every shared clip.

Runs only when the original code sits in ``third_party/SiamTrackers/NanoTrack`` (git-ignored, never
committed) with ``yacs`` importable; see ``benchmarks/nanotrack_parity.py``, which this test reuses.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from conftest import shared_path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "nanotrack_parity.py"


def _bench():
    spec = importlib.util.spec_from_file_location("nanotrack_parity", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_boxes_agree_with_the_original_tracker_on_every_clip():
    clips = shared_path("tracking")
    weights = shared_path("peers", "nanotrack_v2", "nanotrackv2.pth")
    bench = _bench()
    reason = bench.original_available()
    if reason:
        pytest.skip(reason)
    names = sorted(p.name for p in clips.iterdir() if (p / "groundtruth_rect.txt").is_file())
    assert len(names) >= 12
    for name in names:
        record = bench.compare_clip(name, weights, peers=["original"])
        agree = record["original"]["vs_siamkit"]
        assert agree["mean_iou"] >= 0.99, (name, agree)
        assert agree["max_centre_dist"] < 0.5, (name, agree)
