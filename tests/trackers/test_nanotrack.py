"""NanoTrack tracker: crops, decode and update against independent NumPy/OpenCV re-implementations.

The references here are written from the published description (tracking reference §1, §12): the
original's ``get_subwindow`` (uint8 padding with the truncated mean, ``cv2.resize``), the point grid,
softmax scores, (l, t, r, b) decoding, scale/aspect penalty, Hann window and the learning-rate update,
all in float64 NumPy.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from conftest import shared_path

from siamkit.errors import ConfigError, TrackerStateError, WeightsError
from siamkit.ops.crop import crop_cv2_uint8, crop_like_original
from siamkit.ops.postprocess import decode_ltrb, foreground_scores, select_best
from siamkit.ops.windows import hann_window
from siamkit.trackers import create_tracker
from siamkit.trackers import nanotrack as nt
from siamkit.trackers.engine import BatchedTracker

# --------------------------------------------------------------------------- NumPy references


def np_subwindow(img: np.ndarray, centre, out: int, side: int, avg: np.ndarray) -> np.ndarray:
    """The original crop: pad a uint8 copy with ``avg`` (truncated), cut, ``cv2.resize`` on uint8."""
    h, w, _ = img.shape
    x0 = int(np.floor(centre[0] - (side + 1) / 2 + 0.5))
    y0 = int(np.floor(centre[1] - (side + 1) / 2 + 0.5))
    canvas = np.empty((side, side, 3), np.uint8)
    canvas[:] = avg  # float → uint8 assignment truncates, as in the original
    xs, ys = max(x0, 0), max(y0, 0)
    xe, ye = min(x0 + side, w), min(y0 + side, h)
    if xe > xs and ye > ys:
        canvas[ys - y0 : ye - y0, xs - x0 : xe - x0] = img[ys:ye, xs:xe]
    if side != out:
        canvas = cv2.resize(canvas, (out, out))
    return canvas.transpose(2, 0, 1).astype(np.float32)


def np_decode_and_select(cls, loc, size_in_crop, score_size=16, stride=16, k=0.15, win=0.49):
    """Scores, boxes (cx, cy, w, h), penalty and best index, the paper way, in float64."""
    cls = cls.reshape(2, -1).astype(np.float64)
    e = np.exp(cls - cls.max(0))
    score = e[1] / e.sum(0)
    ori = -(score_size // 2) * stride
    grid = ori + stride * np.arange(score_size)
    px, py = np.meshgrid(grid, grid)
    px, py = px.ravel().astype(np.float64), py.ravel().astype(np.float64)
    l, t, r, b = loc.reshape(4, -1).astype(np.float64)
    x1, y1, x2, y2 = px - l, py - t, px + r, py + b
    boxes = np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], 1)

    def sz(w, h):
        p = (w + h) / 2
        return np.sqrt((w + p) * (h + p))

    w0, h0 = size_in_crop
    s_c = sz(boxes[:, 2], boxes[:, 3]) / sz(w0, h0)
    s_c = np.maximum(s_c, 1 / s_c)
    r_c = (w0 / h0) / (boxes[:, 2] / boxes[:, 3])
    r_c = np.maximum(r_c, 1 / r_c)
    penalty = np.exp(-(r_c * s_c - 1) * k)
    window = np.outer(np.hanning(score_size), np.hanning(score_size)).ravel()
    pscore = penalty * score * (1 - win) + window * win
    return score, boxes, penalty, int(np.argmax(pscore))


# --------------------------------------------------------------------------- unit tests (no data)


def test_grid_and_window_hand_values():
    pts = nt.grid_points(16, 16).numpy()
    assert pts[0].tolist() == [-128, -128] and pts[1].tolist() == [-112, -128]
    assert pts[16].tolist() == [-128, -112] and pts[-1].tolist() == [112, 112]
    np.testing.assert_allclose(hann_window(16).numpy(), np.outer(np.hanning(16), np.hanning(16)))
    assert hann_window(17).max().item() == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_decode_and_penalty_match_numpy(seed):
    """The engine's decode and selection (what NanoCore runs) on NanoTrack's 16×16 grid of stride 16."""
    rng = np.random.default_rng(seed)
    cls = rng.normal(size=(2, 16, 16)).astype(np.float32) * 3
    loc = np.exp(rng.normal(size=(4, 16, 16))).astype(np.float32) * 20
    size = (rng.uniform(10, 80), rng.uniform(10, 80))
    score = foreground_scores(torch.from_numpy(cls)[None], 1)
    boxes = decode_ltrb(torch.from_numpy(loc)[None], nt.grid_points(16, 16))
    sel = select_best(
        score, boxes, torch.tensor([size], dtype=torch.float64), 0.15, hann_window(16).reshape(-1), 0.49
    )
    ref_score, ref_boxes, ref_pen, ref_best = np_decode_and_select(cls, loc, size)
    np.testing.assert_allclose(score[0].numpy(), ref_score, rtol=1e-6)
    np.testing.assert_allclose(boxes[0].numpy(), ref_boxes, rtol=1e-6, atol=1e-4)
    assert int(sel.index[0]) == ref_best
    assert float(sel.penalty[0]) == pytest.approx(ref_pen[ref_best], rel=1e-6)


@pytest.mark.parametrize(
    "hw,centre,side,out",
    [
        ((90, 120), (60.0, 45.0), 31, 127),  # upscale inside
        ((90, 120), (3.2, 85.7), 40, 127),  # padding left/bottom
        ((90, 120), (118.5, 2.5), 77, 255),  # padding right/top, odd side
        ((90, 120), (60.3, 44.6), 255, 255),  # same size: no resize
        ((90, 120), (50.0, 40.0), 300, 255),  # downscale, padding all round
        ((200, 150), (75.0, 100.0), 64, 255),  # portrait frame
    ],
)
def test_crop_is_bit_exact_with_the_original_get_subwindow(hw, centre, side, out):
    rng = np.random.default_rng(side)
    img = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
    avg = img.reshape(-1, 3).mean(0)
    ref = np_subwindow(img, centre, out, side, avg)
    frame = torch.from_numpy(img).permute(2, 0, 1)[None]
    got = crop_like_original(
        frame, torch.tensor(centre, dtype=torch.float64), torch.tensor(float(side)), out, torch.from_numpy(avg)
    )
    assert got.shape == (1, 3, out, out)
    np.testing.assert_array_equal(got[0].numpy(), ref)
    cpu = crop_cv2_uint8(img, centre, side, out, avg)
    np.testing.assert_array_equal(cpu[0].numpy(), ref)


def test_builder_errors(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(nt.WEIGHTS_ENV, raising=False)
    with pytest.raises(WeightsError, match="SIAMKIT_NANOTRACK"):
        create_tracker("nanotrack", device="cpu")
    monkeypatch.setenv(nt.WEIGHTS_ENV, str(tmp_path / "nope.pth"))
    with pytest.raises(WeightsError, match="not a file"):
        create_tracker("nanotrack", device="cpu")
    with pytest.raises(ConfigError, match="window_inflence"):
        create_tracker("nanotrack", weights="x.pth", device="cpu", window_inflence=0.3)


# --------------------------------------------------------------------------- on real data


def _clip(name: str, n: int | None = None):
    folder = shared_path("tracking", name)
    files = sorted((folder / "img").glob("*.jpg"))[:n]
    gt = np.loadtxt(folder / "groundtruth_rect.txt", delimiter=",").reshape(-1, 4)
    gt[:, :2] -= 1
    return [cv2.imread(str(f)) for f in files], gt


def _tracker(**options):
    weights = shared_path("peers", "nanotrack_v2", "nanotrackv2.pth")
    return create_tracker("nanotrack", weights=str(weights), device="cpu", **options)


@pytest.mark.parametrize("clip", ["MotorRolling", "uav_boat1"])
def test_every_update_matches_a_numpy_reimplementation(clip):
    """Record the network outputs frame by frame and redo crop size, decode, penalty and update in NumPy."""
    frames, gt = _clip(clip, 15)
    tracker = _tracker()
    captured = {}
    search = tracker.model.search

    def spy(x, zf):
        out = search(x, zf)
        captured["x"], captured["cls"], captured["loc"] = x, out["cls"][0].numpy(), out["loc"][0].numpy()
        return out

    tracker.model.search = spy
    tracker.init(frames[0], gt[0])
    cx, cy = gt[0][0] + (gt[0][2] - 1) / 2, gt[0][1] + (gt[0][3] - 1) / 2
    w, h = gt[0][2], gt[0][3]
    height, width = frames[0].shape[:2]
    avg = frames[0].reshape(-1, 3).mean(0)
    for frame in frames[1:]:
        result = tracker.track(frame)
        p = 0.5 * (w + h)
        s_z = np.sqrt((w + p) * (h + p))
        scale_z = 127 / s_z
        s_x = round(s_z * 255 / 127)
        np.testing.assert_array_equal(captured["x"][0].numpy(), np_subwindow(frame, (cx, cy), 255, s_x, avg))
        score, boxes, penalty, best = np_decode_and_select(captured["cls"], captured["loc"], (w * scale_z, h * scale_z))
        box = boxes[best] / scale_z
        lr = penalty[best] * score[best] * 0.385
        cx = min(max(cx + box[0], 0), width)
        cy = min(max(cy + box[1], 0), height)
        w = min(max(w * (1 - lr) + box[2] * lr, 10), width)
        h = min(max(h * (1 - lr) + box[3] * lr, 10), height)
        np.testing.assert_allclose(result.box, [cx - w / 2, cy - h / 2, w, h], rtol=0, atol=1e-6)
        assert result.score == pytest.approx(score[best], abs=1e-6)


def test_tracker_follows_the_target_and_checks_order():
    frames, gt = _clip("Crossing", 30)
    tracker = _tracker()
    with pytest.raises(TrackerStateError):
        tracker.track(frames[0])
    tracker.init(frames[0], gt[0])
    from siamkit.geometry import iou

    boxes = np.stack([tracker.track(f).box for f in frames[1:]])
    overlaps = np.asarray(iou(boxes, gt[1 : len(frames)]))
    assert overlaps.mean() > 0.6, overlaps.mean()


def test_torch_frames_take_the_torch_crop_and_give_identical_boxes():
    frames, gt = _clip("vot_car1", 8)
    a, b = _tracker(), _tracker()
    a.init(frames[0], gt[0])
    b.init(torch.from_numpy(frames[0]), gt[0])
    for frame in frames[1:]:
        ra, rb = a.track(frame), b.track(torch.from_numpy(frame))
        np.testing.assert_array_equal(ra.box, rb.box)


def test_float_crops_option_stays_close():
    frames, gt = _clip("Tiger1", 10)
    exact, smooth = _tracker(), _tracker(uint8_crops=False)
    exact.init(frames[0], gt[0])
    smooth.init(frames[0], gt[0])
    from siamkit.geometry import centre_error

    errs = [float(centre_error(exact.track(f).box, smooth.track(f).box)) for f in frames[1:]]
    assert max(errs) < 3.0


def test_weights_from_env_or_a_zoo_name_never_a_path_outside_the_package(monkeypatch, tmp_path):
    from siamkit.importers.nanotrack import convert_to_zoo

    weights = shared_path("peers", "nanotrack_v2", "nanotrackv2.pth")
    monkeypatch.setenv(nt.WEIGHTS_ENV, str(weights))
    assert create_tracker("nanotrack", device="cpu").model.score_size == 16
    monkeypatch.delenv(nt.WEIGHTS_ENV)
    assert not hasattr(nt, "DEFAULT_WEIGHTS")
    # A zoo entry converted from the checkpoint is found by its name when nothing else is given.
    convert_to_zoo(weights, tmp_path / "nanotrack_v2")
    monkeypatch.setenv("SIAMKIT_ZOO", str(tmp_path))
    assert nt.resolve_weights(None) == "nanotrack_v2"
    tracker = create_tracker("nanotrack", device="cpu")
    assert tracker.model.version == 2 and tracker.config.window_influence == pytest.approx(0.49)


# --------------------------------------------------------------------------- cv2.TrackerNano's procedure


def test_opencv_window_is_the_square_root_of_the_hann_window():
    hann = hann_window(16).reshape(-1).numpy()
    window = nt.opencv_window(16).numpy()
    np.testing.assert_allclose(window, np.sqrt(hann), atol=1e-7)
    assert window.reshape(16, 16)[4, 4] > hann.reshape(16, 16)[4, 4] + 0.1  # flatter away from the centre


def test_opencv_preset_gives_cv2_tracker_nanos_boxes():
    """Preset ``opencv`` reproduces cv2.TrackerNano (same v2 weights, its ONNX graphs) box for box."""
    if not hasattr(cv2, "TrackerNano_create"):
        pytest.skip("this OpenCV build has no TrackerNano")
    folder = shared_path("peers", "nanotrack_v2")
    for clip in ("Biker", "dtb_Gull2"):
        frames, gt = _clip(clip, 25)
        ours = _tracker(opencv=True)
        assert ours.config.opencv == nt.OPENCV_STEPS and ours.config.penalty_k == pytest.approx(0.055)
        theirs = create_tracker("opencv:nano", weights=str(folder))
        ours.init(frames[0], gt[0])
        theirs.init(frames[0], gt[0])
        original = _tracker()
        original.init(frames[0], gt[0])
        gap = []
        for frame in frames[1:]:
            a, b, c = ours.track(frame).box, theirs.track(frame).box, original.track(frame).box
            np.testing.assert_allclose(a, b, atol=1e-3)
            assert np.all(a == np.trunc(a))  # cv::Rect
            gap.append(np.abs(a - c).max())
        assert max(gap) > 1.0  # the original tracker really is a different one


def test_single_opencv_steps_change_the_boxes_and_the_default_is_untouched():
    frames, gt = _clip("Soccer", 12)
    runs = {}
    for key, options in {"original": {}, "rgb": {"opencv": ["rgb"]}, "scale": {"opencv": "scale_penalty"}}.items():
        tracker = _tracker(**options)
        tracker.init(frames[0], gt[0])
        runs[key] = np.stack([tracker.track(f).box for f in frames[1:]])
    assert _tracker().config.opencv == ()
    assert not np.allclose(runs["original"], runs["rgb"], atol=0.1)
    assert not np.allclose(runs["original"], runs["scale"], atol=0.1)
    with pytest.raises(ConfigError, match="Unknown OpenCV step"):
        _tracker(opencv=["rgb", "bgr"])


def test_opencv_rect_matches_the_opencv_nano_wrapper():
    from siamkit.trackers.peers import _int_rect

    rng = np.random.default_rng(3)
    for _ in range(200):
        box = np.concatenate([rng.uniform(-20, 300, 2), rng.uniform(1, 120, 2)])
        assert nt.opencv_rect(box, (320, 240)) == _int_rect(box, (320, 240))


@pytest.mark.parametrize("options", [{}, {"opencv": True}], ids=["original", "opencv"])
def test_batched_equals_one_tracker_per_target(options):
    """NanoTrack batches like the engine's other cores: two clips (frames of two sizes) in one BatchedTracker."""
    clips = [_clip(name, 10) for name in ("Crossing", "vot_bag")]
    batched = BatchedTracker(_tracker(**options))
    batched.add([frames[0] for frames, _ in clips], np.stack([gt[0] for _, gt in clips]))
    singles = []
    for frames, gt in clips:
        tracker = _tracker(**options)
        tracker.init(frames[0], gt[0])
        singles.append(tracker)
    for k in range(1, 10):
        results = batched.track([frames[k] for frames, _ in clips])
        for tracker, (frames, _), got in zip(singles, clips, results, strict=True):
            want = tracker.track(frames[k])
            np.testing.assert_allclose(got.box, want.box, rtol=0, atol=1e-3)
            assert got.score == pytest.approx(want.score, abs=1e-4)
            assert got.extra["pscore"] == pytest.approx(want.extra["pscore"], abs=1e-4)
