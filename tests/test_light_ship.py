"""ship_light writes an fp16 zoo entry (≤ 2 MB, meta.tracker: nanotrack) that the nanotrack tracker loads and runs."""

from __future__ import annotations

import cv2
import numpy as np
import torch
import yaml
from conftest import shared_path
from safetensors import safe_open

from siamkit.geometry import is_valid
from siamkit.nn.nanotrack import NanoTrackV2
from siamkit.trackers import create_tracker
from siamkit.train.light import init_loc_bias, ship_light
from siamkit.train.tracking import TrackerExperiment


def test_shipped_entry_loads_by_path_and_tracks(tmp_path):
    torch.manual_seed(0)
    net = NanoTrackV2()
    init_loc_bias(net)
    exp = TrackerExperiment(task="nanotrack_light", name="t", model="nanotrack_v2", meta={"held_out": ["Crossing"]})
    path = ship_light(exp, net, tmp_path, {"steps": 0}, {"success_auc": 0.1}, path=tmp_path / "light.safetensors")
    assert path.stat().st_size <= 2 * 1024 * 1024
    with safe_open(str(path), "pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys() if "num_batches" not in k} == {"torch.float16"}  # noqa: SIM118
    meta = yaml.safe_load(path.with_suffix(".yaml").read_text())["meta"]
    assert meta["tracker"] == "nanotrack" and meta["task"] == "tracking" and meta["metrics"]["success_auc"] == 0.1

    clip = shared_path("tracking", "Crossing")
    gt = np.loadtxt(clip / "groundtruth_rect.txt", delimiter=",").reshape(-1, 4)
    gt[:, :2] -= 1
    frames = sorted((clip / "img").glob("*.jpg"))[:4]
    tracker = create_tracker("nanotrack", weights=str(path), device="cpu")
    first = cv2.imread(str(frames[0]))
    tracker.init(first, gt[0])
    boxes = np.array([tracker.track(cv2.imread(str(f))).box for f in frames[1:]])
    assert is_valid(boxes).all()
    # fp16 round trip: the loaded network equals the saved one to fp16 precision
    loaded = tracker.model.state_dict()
    for key, value in net.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(loaded[key].float(), value.half().float())
