"""siamkit's SiamRPN++ AlexNet against STVIR/pysot's own tracker, same random weights, same frames.

pysot is the independent reference, read from ../shared/peers-src/pysot (``conftest.peer_sources``;
skipped only where that folder is absent).
Both networks are narrowed alike (AlexNet width 0.25, RPN 64→32) to keep the test fast.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import benchmark_script, peer_sources, shared_path

REPO = Path(__file__).resolve().parents[2]
FRAMES = 8


def load_bench():
    return benchmark_script("tracking_speed")


def clip(name: str = "Crossing", n: int = FRAMES):
    seq = shared_path("tracking", name)
    gt = np.loadtxt(seq / "groundtruth_rect.txt", delimiter=",")[:n].copy()
    gt[:, :2] -= 1  # 1-based → 0-based
    return [cv2.imread(str(seq / "img" / f"{i:04d}.jpg")) for i in range(1, n + 1)], gt


pytestmark = pytest.mark.parity


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    bench = load_bench()
    with peer_sources("pysot") as folder:
        bench.PYSOT_DIR = folder
        assert bench.load_pysot(bench.PYSOT_CONFIGS["siamrpnpp_alexnet"], "cpu", tiny=True) is not None
        options = {"model_options": dict(bench.TINY_PYSOT)}
        theirs, ours = bench.pysot_pair("siamrpnpp_alexnet", "cpu", 3, tmp_path_factory.mktemp("spd"), options)
        yield bench, theirs, ours


def test_same_network_outputs(pair):
    bench, theirs, ours = pair
    torch.manual_seed(0)
    with torch.no_grad():
        z, x = torch.rand(1, 3, 127, 127) * 255, torch.rand(1, 3, 287, 287) * 255
        theirs.model.template(z)
        a, b = theirs.model.track(x), ours.model.search(x, ours.model.template(z))
    for key in ("cls", "loc"):
        scale = float(b[key].abs().max())
        assert scale > 0
        assert float((a[key] - b[key]).abs().max()) <= 1e-4 * scale, key


def test_one_step_boxes_agree_from_ground_truth(pair):
    """Each frame both trackers start from the ground-truth box of the previous frame."""
    bench, theirs, ours = pair
    frames, gt = clip()
    dist, moved = [], []
    with torch.no_grad():
        theirs.init(frames[0], list(gt[0]))
        ours.init(frames[0], gt[0])
        for i in range(1, FRAMES):
            bench.set_states(theirs, ours, gt[i - 1])
            bp = np.asarray(theirs.track(frames[i])["bbox"], np.float64)
            bench.set_states(theirs, ours, gt[i - 1])
            bs = ours.track(frames[i]).box
            dist.append(bench.centre_distance(bp, bs))
            moved.append(bench.centre_distance(bp, gt[i - 1]))
    assert np.mean(dist) <= 0.5, dist
    assert max(moved) > 1.0, "the step never moved the box: the comparison would be trivial"


def test_pysot_crops_explain_the_rest(pair):
    """With uint8 crops like pysot's (``uint8_crops``), siamkit reproduces pysot's boxes."""
    bench, theirs, ours = pair
    frames, gt = clip()
    float_config = ours.core.config
    ours.core.config = dataclasses.replace(float_config, uint8_crops=True)
    try:
        with torch.no_grad():
            theirs.init(frames[0], list(gt[0]))
            ours.init(frames[0], gt[0])
            for i in range(1, FRAMES):
                bench.set_states(theirs, ours, gt[i - 1])
                bp = np.asarray(theirs.track(frames[i])["bbox"], np.float64)
                bench.set_states(theirs, ours, gt[i - 1])
                bs = ours.track(frames[i]).box
                np.testing.assert_allclose(bs, bp, atol=1e-3)
    finally:
        ours.core.config = float_config
