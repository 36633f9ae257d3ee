"""Test-wide settings: one thread per worker, and where the shared real data lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# pytest-xdist runs one worker per core: each worker must use one thread, or the OpenMP
# pools of torch, OpenCV and FAISS oversubscribe the machine and everything slows down.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("SIAMKIT_PROGRESS", "0")

import cv2  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)
cv2.setNumThreads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SIAMKIT_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_path(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test (with the reason) when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not found: {path} (set SIAMKIT_SHARED_DATA to its folder)")
    return path


@pytest.fixture
def shared_data() -> Path:
    """The ../shared/data folder (skips when absent)."""
    return shared_path()


@pytest.fixture
def tracking_clips() -> Path:
    """The shared OTB-layout tracking clips (skips when absent)."""
    return shared_path("tracking")
