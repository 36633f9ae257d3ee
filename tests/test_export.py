"""Export: ONNX graphs agree with PyTorch, and an onnxruntime + NumPy SiamFC reproduces the PyTorch boxes."""

import json
from dataclasses import asdict

import cv2
import numpy as np
import pytest
import torch
from conftest import shared_path

from siamkit.export import export_model, export_tracker
from siamkit.geometry import iou
from siamkit.trackers import create_tracker

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install '.[export]')")


@pytest.fixture(scope="module")
def siamfc_export(tmp_path_factory):
    torch.manual_seed(0)
    tracker = create_tracker("siamfc", device="cpu")
    out = tmp_path_factory.mktemp("siamfc")
    meta = {"tracker": "siamfc", "tracker_config": asdict(tracker.config)}
    description = export_model(tracker.model, out, meta=meta)
    return tracker, out, description


def test_onnx_matches_pytorch(siamfc_export):
    _, out, d = siamfc_export
    assert {"template.onnx", "search.onnx", "template.pt", "search.pt", "model.json"} <= {p.name for p in out.iterdir()}
    diff = d["onnx_max_abs_diff"]
    # float32 agreement relative to the size of the outputs (random weights give large activations)
    assert diff["template_max_abs_diff"] <= 1e-5 * max(1.0, diff["template_max_abs"])
    assert diff["search_max_abs_diff"] <= 1e-5 * max(1.0, diff["search_max_abs"])
    assert json.loads((out / "model.json").read_text())["search_inputs"] == ["x", "zf0"]


def test_torchscript_branches_match(siamfc_export):
    tracker, out, _ = siamfc_export
    template, search = torch.jit.load(str(out / "template.pt")), torch.jit.load(str(out / "search.pt"))
    z, x = torch.rand(1, 3, 127, 127) * 255, torch.rand(1, 3, 255, 255) * 255
    with torch.no_grad():
        zf = tracker.model.template(z)
        torch.testing.assert_close(template(z)[0], zf)
        torch.testing.assert_close(search(x, zf)[0], tracker.model.search(x, zf)["cls"])


def test_onnx_tracker_reproduces_pytorch_boxes(siamfc_export):
    from siamkit.onnx_tracker import OnnxSiamFCTracker

    tracker, out, _ = siamfc_export
    clip = shared_path("tracking", "Crossing")
    frames = [cv2.imread(str(p)) for p in sorted((clip / "img").glob("*.jpg"))[:12]]
    box = np.loadtxt(clip / "groundtruth_rect.txt", delimiter=",")[0]
    box[:2] -= 1
    runtime = OnnxSiamFCTracker(out)
    tracker.init(frames[0], box)
    runtime.init(frames[0], box)
    overlaps = [float(iou(tracker.track(f).box, runtime.track(f).box)) for f in frames[1:]]
    assert np.mean(overlaps) >= 0.99


def test_real_weights_export_within_1e_4():
    """NanoTrack's real weights have moderate activations: absolute agreement ≤ 1e-4."""
    pth = shared_path("peers", "nanotrack_v2", "nanotrackv2.pth")
    d = export_tracker("nanotrack", pytest.importorskip("tempfile").mkdtemp(), weights=str(pth), torchscript=False)
    assert d["onnx_max_abs_diff"]["template_max_abs_diff"] <= 1e-4
    assert d["onnx_max_abs_diff"]["search_max_abs_diff"] <= 1e-4


def test_export_cli(tmp_path):
    from typer.testing import CliRunner

    from siamkit.cli import _register_commands, app

    _register_commands()
    result = CliRunner().invoke(app, ["export", "siamrpnpp_alexnet", "--weights", "none", "--onnx", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "search.onnx").exists() and "onnxruntime vs PyTorch" in result.output
