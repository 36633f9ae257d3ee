"""Fuzzing the CLI's argument parsing and the Python API's box/frame inputs (issue 17, "a fuzz test").

Whatever the values: no traceback (a SiamkitError or a usage error, exit code 2), and no
allocation beyond a stated bound — a box is at most the frame's size, so a tracker on a 64×48
frame never needs more than ``ALLOCATION_BOUND`` bytes at once.
"""

from __future__ import annotations

import math
import tracemalloc

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siamkit.errors import SiamkitError

ALLOCATION_BOUND = 64 << 20  # bytes, for one init + track on a 64×48 frame

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, -1, 1e-300, 1e5, 1e300, 3000, 64, 48, 65, 49]),
)
texts = st.one_of(st.text(max_size=12), st.sampled_from(["", "nan", "inf", "-0", "1e999", "0x10", "1,2,3", " "]))


@pytest.fixture(scope="module")
def tracker():
    import siamkit

    return siamkit.create_tracker("siamfc", device="cpu")


FRAME = np.full((48, 64, 3), 60, np.uint8)
FRAME[10:30, 20:40] = 220


corners = st.one_of(st.floats(-80, 80), numbers)
boxes = st.one_of(
    st.tuples(corners, corners, numbers, numbers).map(list),  # plausible corner, any size: the crop grows with it
    st.lists(numbers, min_size=0, max_size=6),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(box=boxes)
def test_any_box_is_tracked_or_refused_within_the_bound(tracker, box):
    tracemalloc.start()
    try:
        tracker.init(FRAME, box)
        result = tracker.track(FRAME)
        assert all(math.isfinite(v) for v in np.asarray(result.box, dtype=float))
    except SiamkitError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < ALLOCATION_BOUND, f"{box}: peak {peak / 1e6:.0f} MB"


frames = st.one_of(
    st.builds(lambda h, w, c: np.zeros((h, w, c), np.uint8), st.integers(0, 40), st.integers(0, 40),
              st.integers(0, 5)),
    st.builds(lambda dtype: np.zeros((48, 64, 3), dtype), st.sampled_from([np.float32, np.int64, np.bool_])),
    st.sampled_from([None, 3, "frame", [[1, 2, 3]], np.zeros(5, np.uint8), np.zeros((48, 64), np.uint8)]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=frames)
def test_any_frame_is_tracked_or_refused(tracker, frame):
    try:
        tracker.init(frame, [1, 1, 4, 4])
        tracker.track(frame)
    except SiamkitError:
        pass


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    (root / "frames").mkdir()
    for i in range(2):
        cv2.imwrite(str(root / "frames" / f"{i}.png"), FRAME)
    return root


box_texts = st.one_of(texts, st.tuples(corners, corners, numbers, numbers).map(lambda b: ",".join(map(str, b))))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(box=box_texts, extra=st.lists(st.sampled_from(
    ["--max-frames", "--tracker", "--box", "--out", "--save", "--preset", "--device", "--backend", "--precision",
     "0", "-1", "opencv:kcf"]
) | texts, max_size=4))
def test_track_arguments_never_raise_a_traceback(folder, cli, box, extra):
    args = ["track", str(folder / "frames"), "--box", box, *extra]
    code, _, err = cli(*args)
    assert code in (0, 2), (args, code, err)
    assert "Traceback" not in err


command_args = st.lists(st.one_of(texts, st.sampled_from(
    ["--workers", "-j", "--max-frames", "--batch-size", "-k", "--threshold", "--steps", "--kind", "--metric",
     "--protocol", "--port", "0", "-1", "nan", "1e300", "--help"])), max_size=5)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(["eval", "verify", "search", "index", "train", "report", "export", "demo", "nope"]),
       args=command_args)
def test_other_commands_never_raise_a_traceback(folder, cli, command, args):
    if command == "demo" and "--check" not in args:
        args = [*args, "--out", str(folder / "frames" / "0.png")]  # a file: fails before any work
    code, _, err = cli(command, *args)
    assert code in (0, 2), ([command, *args], code, err)
    assert "Traceback" not in err
