"""Every tracker gives the boxes (and scores) recorded in tests/data/reference_boxes.json, to 1e-3.

The record was made by ``tests/trackers/reference_boxes.py`` before the tracker code was
reorganised; a difference here means a change of behaviour, not of layout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference_boxes as ref  # noqa: E402

RECORD = Path(__file__).resolve().parents[1] / "data" / "reference_boxes.json"
DATA = json.loads(RECORD.read_text())
TOL = 1e-3


def _skip_without_shared() -> None:
    if not (ref.SHARED_DATA / "tracking").is_dir():
        pytest.skip(f"shared data not found: {ref.SHARED_DATA} (set SIAMKIT_SHARED_DATA to its folder)")


def _close(got: list, want: list, where: str) -> None:
    got_a = np.array([[np.nan if v is None else v for v in r] for r in got], dtype=np.float64)
    want_a = np.array([[np.nan if v is None else v for v in r] for r in want], dtype=np.float64)
    assert got_a.shape == want_a.shape, where
    np.testing.assert_allclose(got_a, want_a, rtol=0, atol=TOL, equal_nan=True, err_msg=where)


def test_record_is_complete():
    assert DATA["clips"] == list(ref.CLIPS) and DATA["frames"] == ref.FRAMES and DATA["seed"] == ref.SEED
    for name in ref.RANDOM + ref.SHIPPED:
        assert name in DATA["trackers"]


@pytest.mark.shared_data
@pytest.mark.parametrize("case", sorted(DATA["trackers"]))
def test_same_boxes(case):
    _skip_without_shared()
    args = dict(DATA["trackers"][case]["args"])
    if "weights" in args:
        weights = ref.SHARED_DATA / args["weights"]
        if not weights.exists():
            pytest.skip(f"weights not found: {weights}")
        args["weights"] = str(weights)
    for clip in ref.CLIPS:
        _close(ref.run_case(args, clip), DATA["trackers"][case]["boxes"][clip], f"{case} on {clip}")


@pytest.mark.shared_data
@pytest.mark.parametrize("name", sorted(DATA["batched"]))
def test_same_boxes_batched(name):
    _skip_without_shared()
    got = ref.run_batched(name)
    want = DATA["batched"][name]
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        _close(g, w, f"batched {name}, frame {k + 1}")
