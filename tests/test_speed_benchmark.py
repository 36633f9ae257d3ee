"""benchmarks/tracking_speed.py in its --quick mode: tiny models, a few frames, well-formed JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from conftest import benchmark_script

REPO = Path(__file__).resolve().parents[1]


def load_bench():
    return benchmark_script("tracking_speed")


def test_quick_run_writes_expected_json(tmp_path):
    bench = load_bench()
    out = tmp_path / "speed.json"
    bench.main(["--quick", "--threads", "1", "--no-pysot", "--no-fast", "--device", "cpu", "--out", str(out)])
    data = json.loads(out.read_text())
    for key in ("frame_size", "threads", "batch_targets", "torch", "load_average_start", "load_average_end", "models"):
        assert key in data, key
    assert data["quick"] is True and data["threads"] == 1
    assert [row["tracker"] for row in data["models"]] == list(bench.QUICK_MODELS)
    batch = f"e2e_b{data['batch_targets']}"
    for row in data["models"]:
        assert "skipped" not in row, row
        assert row["device"] == "cpu" and row["dtype"] == "fp32"
        for section in ("e2e_b1", "network_b1", batch):
            stats = row[section]
            assert stats["timed"] >= 2
            assert 0 < stats["median_ms"] <= stats["p90_ms"] + 1e-9
            # per_s follows from the median: items per call × 1000 / ms
            per_call = data["batch_targets"] if section == batch else 1
            np.testing.assert_allclose(stats["per_s"], per_call * 1e3 / stats["median_ms"], rtol=1e-3)
        assert row["e2e_b1"]["peak_mem_mb"] >= 0
    assert set(data["peers"]) == {"opencv:csrt", "opencv:nano"}
    for name, stats in data["peers"].items():
        assert "skipped" in stats or stats["per_s"] > 0, name


def test_target_boxes_are_inside_the_frame():
    bench = load_bench()
    first = np.array([100.0, 50.0, 40.0, 30.0])
    boxes = bench.target_boxes(first, 8, (1280, 720))
    assert boxes.shape == (8, 4)
    np.testing.assert_array_equal(boxes[0], first)
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 0] + boxes[:, 2] <= 1280).all()
    assert (boxes[:, 1] + boxes[:, 3] <= 720).all()
    assert len({tuple(b[:2]) for b in boxes}) == 8  # all distinct


def test_summary_medians_by_hand():
    bench = load_bench()
    s = bench.summary([10.0, 30.0, 20.0], [5.0, 6.0, 7.0], per_call=4)
    assert s["median_ms"] == 20.0 and s["cpu_median_ms"] == 6.0 and s["per_s"] == 200.0 and s["timed"] == 3
