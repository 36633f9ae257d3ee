"""The imported NanoTrack v2 network reproduces the published ONNX pair run in onnxruntime.

The backbone graph maps a crop to 48-channel features (OpenCV also feeds the 127 px template through
it, so its spatial input size is made dynamic here); the head graph takes template features
(``input1`` 1×48×8×8) and search features (``input2`` 1×48×16×16) and returns the logits
(``output1``) and exp-ed distances (``output2``). Inputs are real crops from the shared clips.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import nanotrack_crops, shared_path

from siamkit.importers.nanotrack import load_nanotrack_v2
from siamkit.utils.onnx import cpu_session

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
onnx = pytest.importorskip("onnx", reason="onnx is not installed")


@pytest.mark.parametrize("clip,frame", [("Biker", 8), ("vot_car1", 20), ("dtb_Gull2", 5)])
def test_network_matches_onnx_graphs(clip, frame):
    folder = shared_path("peers", "nanotrack_v2")
    model = load_nanotrack_v2(folder / "nanotrackv2.pth")
    backbone = cpu_session(folder / "nanotrack_backbone_sim.onnx", dynamic_spatial=True)
    head = cpu_session(folder / "nanotrack_head_sim.onnx")
    z, x = nanotrack_crops(clip, frame)
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
