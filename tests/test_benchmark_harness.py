"""benchmarks/harness.py: the machine record, the partial file that keeps finished work, the final write."""

from __future__ import annotations

import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import harness  # noqa: E402


def test_machine_records_threads_and_load_average():
    record = harness.machine(3, load_at_start=1.5)
    assert record["threads"] == 3 and record["load_average_1m_at_start"] == 1.5
    for key in ("processor", "platform", "python", "torch", "cpus", "load_average_1m_at_end"):
        assert key in record, key
    assert "load_average_1m_at_start" not in harness.machine(1)


def test_partial_results_are_kept_until_the_final_write(tmp_path):
    out = tmp_path / "bench.json"
    harness.save_partial(out, {"runs": [1]}, "the second half still running")
    partial = json.loads(harness.partial_path(out).read_text())
    assert partial == {"runs": [1], "partial": "the second half still running"} and not out.exists()
    harness.save(out, {"runs": [1, 2]})
    assert json.loads(out.read_text()) == {"runs": [1, 2]} and not harness.partial_path(out).exists()
