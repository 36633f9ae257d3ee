"""NanoTrack v1 and v3 (and v2 beside them): networks, checkpoint import, ONNX parity, presets from the yaml.

The ONNX graphs are the authors' exports (``../shared/data/peers/nanotrack_v*/``), run in onnxruntime on
real crops; siamkit's torch network must give the same backbone features and head outputs to 1e-4.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import yaml
from conftest import nanotrack_crops, shared_path

from siamkit.config import MODELS
from siamkit.errors import ConfigError, WeightsError
from siamkit.importers import nanotrack as imp
from siamkit.nn.nanotrack import NanoTrackV1, NanoTrackV2, NanoTrackV3, depthwise_xcorr
from siamkit.trackers import create_tracker
from siamkit.trackers.nanotrack import NanoTrackConfig, NanoTrackTracker
from siamkit.utils.onnx import cpu_session

ONNX = {
    1: ("nanotrack_backbone_sim.onnx", "nanotrack_head_sim.onnx"),
    2: ("nanotrack_backbone_sim.onnx", "nanotrack_head_sim.onnx"),
    3: ("nanotrack_backbone.onnx", "nanotrack_head.onnx"),
}


def _pth(version: int):
    return shared_path("peers", f"nanotrack_v{version}", f"nanotrackv{version}.pth")


def test_v1_v3_shapes_and_published_parameter_counts():
    # The authors' README: 287.9K (v1), 334.1K (v2), 541.4K (v3) parameters, the unused adjust layer excluded.
    counts = {1: 287_966, 2: 334_078, 3: 541_446}
    for version, cls in ((1, NanoTrackV1), (2, NanoTrackV2), (3, NanoTrackV3)):
        model = MODELS.build(f"nanotrack_v{version}").eval()
        assert isinstance(model, cls) and model.version == version
        assert sum(p.numel() for p in model.parameters()) == counts[version]
        side = 15 if version == 3 else 16
        assert (model.stride, model.score_size) == (16, side)
        with torch.no_grad():
            zf = model.template(torch.rand(2, 3, 127, 127) * 255)
            out = model.search(torch.rand(2, 3, 255, 255) * 255, zf)
        assert zf.shape == (2, 96 if version == 3 else 48, 8, 8)
        assert out["cls"].shape == (2, 2, side, side) and out["loc"].shape == (2, 4, side, side)
        assert (out["loc"] > 0).all()


def test_depthwise_xcorr_matches_loops():
    gen = torch.Generator().manual_seed(1)
    z, x = torch.randn(2, 3, 4, 4, generator=gen), torch.randn(2, 3, 6, 7, generator=gen)
    out = depthwise_xcorr(z, x, padding=1).double().numpy()
    xp = np.pad(x.double().numpy(), ((0, 0), (0, 0), (1, 1), (1, 1)))
    zn = z.double().numpy()
    assert out.shape == (2, 3, 5, 6)
    for b in range(2):
        for c in range(3):
            for i in range(5):
                for j in range(6):
                    assert out[b, c, i, j] == pytest.approx(float((xp[b, c, i : i + 4, j : j + 4] * zn[b, c]).sum()),
                                                            abs=1e-5)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_checkpoints_detected_mapped_and_loaded_strictly(version):
    raw = imp.read_checkpoint(_pth(version))["state_dict"]
    assert imp.detect_version(raw) == version
    mapped = imp.map_state_dict(raw, version)
    dropped = [k for k in raw if imp.map_key(k, version) is None]
    assert dropped and all(k.startswith("neck.downsample.") for k in dropped)
    model = imp.build_network(version)
    assert set(mapped) == set(model.state_dict())  # every key mapped, nothing missing
    loaded = imp.load_nanotrack(_pth(version))
    assert loaded.version == version and not loaded.training
    for key, value in mapped.items():
        assert torch.equal(loaded.state_dict()[key], value.to(loaded.state_dict()[key].dtype)), key


def test_wrong_version_is_refused_by_name():
    with pytest.raises(WeightsError, match="v3 weights, not v1"):
        imp.load_nanotrack(_pth(3), version=1)
    raw = imp.read_checkpoint(_pth(1))["state_dict"]
    with pytest.raises(WeightsError, match="missing"):  # v1 weights into the v2 network: named failures
        from siamkit.zoo import check_state_dict

        check_state_dict(NanoTrackV2().state_dict(), imp.map_state_dict(raw, 2), source="v1 into v2")


@pytest.mark.parametrize("version", [1, 3])
@pytest.mark.parametrize("clip,frame", [("Biker", 8), ("dtb_Gull2", 5)])
def test_v1_v3_match_the_authors_onnx_graphs(version, clip, frame):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    pytest.importorskip("onnx", reason="onnx is not installed")
    folder = shared_path("peers", f"nanotrack_v{version}")
    model = imp.load_nanotrack(folder / f"nanotrackv{version}.pth")
    backbone = cpu_session(folder / ONNX[version][0], dynamic_spatial=True)
    head = cpu_session(folder / ONNX[version][1])
    z, x = nanotrack_crops(clip, frame)
    onnx_zf = backbone.run(None, {"input": z})[0]
    onnx_xf = backbone.run(None, {"input": x})[0]
    logits, dists = head.run(None, {"input1": onnx_zf, "input2": onnx_xf})
    with torch.no_grad():
        zf, xf = model.template(torch.from_numpy(z)), model.backbone(torch.from_numpy(x))
        cls, loc = model.head(torch.from_numpy(onnx_zf), torch.from_numpy(onnx_xf))
    side = model.score_size
    assert logits.shape == (1, 2, side, side) and dists.shape == (1, 4, side, side)
    assert np.abs(onnx_xf).max() > 5 and np.ptp(logits) > 1  # real activations, not a degenerate comparison
    # Logits and the raw regression (log of the distances) to 1e-4 absolute; the distances themselves
    # are exp() of it (up to ~1000 px far from the target), so they agree to 1e-4 relative; features
    # (peaks 10-80) to 1e-5 of their peak. Float32 rounding of the two runtimes is all that remains.
    np.testing.assert_allclose(cls.numpy(), logits, rtol=0, atol=1e-4)
    np.testing.assert_allclose(np.log(loc.numpy()), np.log(dists), rtol=0, atol=1e-4)
    np.testing.assert_allclose(loc.numpy(), dists, rtol=1e-4, atol=0)
    for ours, theirs in ((zf, onnx_zf), (xf, onnx_xf)):
        assert np.abs(ours.numpy() - theirs).max() <= 1e-5 * np.abs(theirs).max()


def _authors_track(version: int) -> dict:
    text = shared_path("peers", f"nanotrack_v{version}", f"configv{version}.yaml").read_text()
    return yaml.safe_load(text)["TRACK"]


@pytest.mark.parametrize("version", [1, 2, 3])
def test_presets_follow_the_authors_yaml_and_are_picked_by_version(version):
    track = _authors_track(version)
    tracker = create_tracker("nanotrack", weights=str(_pth(version)), device="cpu")
    cfg = tracker.config
    assert isinstance(tracker, NanoTrackTracker) and tracker.model.version == version
    assert cfg.window_influence == pytest.approx(track["WINDOW_INFLUENCE"])
    assert cfg.penalty_k == pytest.approx(track["PENALTY_K"])
    assert cfg.lr == pytest.approx(track["LR"])
    assert (cfg.exemplar_size, cfg.instance_size, cfg.context_amount) == (
        track["EXEMPLAR_SIZE"], track["INSTANCE_SIZE"], track["CONTEXT_AMOUNT"])
    assert cfg.output_size == track.get("OUTPUT_SIZE", 16) == tracker.model.score_size
    assert cfg.opencv == ()


def test_output_size_mismatch_and_unknown_step_are_refused():
    with pytest.raises(ConfigError, match="15×15"):
        NanoTrackTracker(NanoTrackV2(), NanoTrackConfig(output_size=15), device="cpu")
    with pytest.raises(ConfigError, match="sepia"):
        NanoTrackConfig(opencv=("rgb", "sepia"))


@pytest.mark.parametrize("version", [1, 3])
def test_v1_v3_trackers_follow_a_real_target(version):
    from siamkit.geometry import iou

    folder = shared_path("tracking", "Crossing")
    files = sorted((folder / "img").glob("*.jpg"))[:30]
    gt = np.loadtxt(folder / "groundtruth_rect.txt", delimiter=",").reshape(-1, 4)[:30]
    gt[:, :2] -= 1
    frames = [cv2.imread(str(f)) for f in files]
    tracker = create_tracker("nanotrack", weights=str(_pth(version)), device="cpu")
    tracker.init(frames[0], gt[0])
    boxes = np.stack([tracker.track(f).box for f in frames[1:]])
    assert np.asarray(iou(boxes, gt[1:])).mean() > 0.6
