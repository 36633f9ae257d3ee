"""The imported NanoTrack v2 network reproduces the published ONNX pair run in onnxruntime.

The backbone graph maps a crop to 48-channel features (OpenCV also feeds the 127 px template through
it, so its spatial input size is made dynamic here); the head graph takes template features
(``input1`` 1×48×8×8) and search features (``input2`` 1×48×16×16) and returns the logits
(``output1``) and exp-ed distances (``output2``). Inputs are real crops from the shared clips.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from conftest import shared_path

from siamkit.importers.nanotrack import load_nanotrack_v2
from siamkit.ops.crop import crop_numpy

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
onnx = pytest.importorskip("onnx", reason="onnx is not installed")


def _session(path, dynamic: bool):
    model = onnx.load(str(path))
    if dynamic:
        for value in (model.graph.input[0], model.graph.output[0]):
            for i, dim in enumerate(value.type.tensor_type.shape.dim[2:]):
                dim.dim_param = f"side{i}_{value.name}"
        del model.graph.value_info[:]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _crops(clip: str, frame: int):
    folder = shared_path("tracking", clip)
    gt = np.loadtxt(folder / "groundtruth_rect.txt", delimiter=",")
    x, y, w, h = gt[0]
    x, y = x - 1, y - 1
    centre = (x + (w - 1) / 2, y + (h - 1) / 2)
    p = (w + h) / 2
    s_z = round(float(np.sqrt((w + p) * (h + p))))
    first = cv2.imread(str(folder / "img" / "0001.jpg"))
    later = cv2.imread(str(folder / "img" / f"{frame:04d}.jpg"))
    z = crop_numpy(first, centre, s_z, 127).transpose(2, 0, 1)[None]
    xs = crop_numpy(later, centre, s_z * 255 / 127, 255).transpose(2, 0, 1)[None]
    return np.ascontiguousarray(z, np.float32), np.ascontiguousarray(xs, np.float32)


@pytest.mark.parametrize("clip,frame", [("Biker", 8), ("vot_car1", 20), ("dtb_Gull2", 5)])
def test_network_matches_onnx_graphs(clip, frame):
    folder = shared_path("peers", "nanotrack_v2")
    model = load_nanotrack_v2(folder / "nanotrackv2.pth")
    backbone = _session(folder / "nanotrack_backbone_sim.onnx", dynamic=True)
    head = _session(folder / "nanotrack_head_sim.onnx", dynamic=False)
    z, x = _crops(clip, frame)
    with torch.no_grad():
        zf = model.template(torch.from_numpy(z))
        xf = model.backbone(torch.from_numpy(x))
        out = model.search(torch.from_numpy(x), zf)
    onnx_zf = backbone.run(None, {"input": z})[0]
    onnx_xf = backbone.run(None, {"input": x})[0]
    assert onnx_zf.shape == (1, 48, 8, 8) and onnx_xf.shape == (1, 48, 16, 16)
    assert np.abs(onnx_xf).max() > 5  # real activations, not a degenerate all-zero comparison
    np.testing.assert_allclose(zf.numpy(), onnx_zf, rtol=0, atol=1e-4)
    np.testing.assert_allclose(xf.numpy(), onnx_xf, rtol=0, atol=1e-4)
    # Head graph on the ONNX features, compared with our head on the same inputs and end to end.
    logits, dists = head.run(None, {"input1": onnx_zf, "input2": onnx_xf})
    with torch.no_grad():
        cls, loc = model.head(torch.from_numpy(onnx_zf), torch.from_numpy(onnx_xf))
    np.testing.assert_allclose(cls.numpy(), logits, rtol=0, atol=1e-4)
    np.testing.assert_allclose(loc.numpy(), dists, rtol=0, atol=1e-4)
    np.testing.assert_allclose(out["cls"].numpy(), logits, rtol=0, atol=1e-3)
    assert np.argmax(out["cls"].numpy()[0, 1] - out["cls"].numpy()[0, 0]) == np.argmax(logits[0, 1] - logits[0, 0])
