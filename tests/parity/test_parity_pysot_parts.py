"""siamkit's tracking parts against pysot's own code, on inputs where a wrong order, sign or offset shows.

* crops: siamkit's ``quantize`` crop vs pysot's ``get_subwindow``, bit for bit, for centres inside,
  at and beyond every border (padding), crop sizes below and above the output size;
* anchors (values and order) and the cosine window vs ``SiamRPNTracker.generate_anchor`` / ``window``;
* one whole post-processing step (softmax, box decoding, scale and aspect penalties, window, arg-max,
  size smoothing, clipping) driven by **peaked** score maps: a single sharp maximum at a known anchor
  and cell, placed near each border and in the centre, plus a weaker second maximum elsewhere.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import peer_sources
from peers import peaked_outputs

from siamkit.ops.anchors import anchor_grid
from siamkit.ops.crop import crop_numpy
from siamkit.ops.postprocess import decode_deltas, foreground_scores, select_best, smooth_update
from siamkit.ops.windows import anchor_window

STRIDE, RATIOS, SCALES, A = 8, (0.33, 0.5, 1.0, 2.0, 3.0), (8.0,), 5


@pytest.fixture(scope="module")
def tracker_cls():
    with peer_sources("pysot") as folder:
        from pysot.core.config import cfg
        from pysot.tracker.siamrpn_tracker import SiamRPNTracker

        saved = cfg.clone()
        cfg.defrost()
        cfg.merge_from_file(str(folder / "experiments" / "siamrpn_r50_l234_dwxcorr" / "config.yaml"))
        cfg.CUDA = False
        yield SiamRPNTracker, cfg
        cfg.clear()
        cfg.update(saved)


def make_tracker(tracker_cls):
    cls, _ = tracker_cls
    return cls(torch.nn.Identity())


@pytest.mark.parametrize(
    "centre",
    [(60.3, 40.7), (0.0, 0.0), (-20.5, 50.2), (119.9, 79.6), (150.0, -30.0), (5.5, 78.4)],
)
@pytest.mark.parametrize(("side", "out"), [(37, 127), (127, 127), (301, 255)])
def test_uint8_crop_is_pysot_get_subwindow(tracker_cls, centre, side, out):
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (80, 120, 3), dtype=np.uint8)
    avg = image.reshape(-1, 3).mean(0) + 0.7  # a fractional colour: truncation matters
    theirs = make_tracker(tracker_cls).get_subwindow(image, np.array(centre), out, side, avg)[0].numpy()
    ours = crop_numpy(image, centre, side, out, avg, quantize=True).transpose(2, 0, 1)
    np.testing.assert_array_equal(ours, theirs)
    if side != out:  # the float crop is the one that differs (truncated padding + rounding: < 2 grey levels)
        assert np.abs(crop_numpy(image, centre, side, out, avg) - ours.transpose(1, 2, 0)).max() < 2.0


@pytest.mark.parametrize("size", [17, 21, 25])
def test_anchors_and_window_in_pysot_order(tracker_cls, size):
    theirs = make_tracker(tracker_cls)
    pysot_anchors = theirs.generate_anchor(size)
    ours = anchor_grid(size, STRIDE, RATIOS, SCALES).numpy()
    np.testing.assert_array_equal(ours, pysot_anchors)
    hanning = np.hanning(size)
    np.testing.assert_allclose(anchor_window(size, A).numpy(), np.tile(np.outer(hanning, hanning).flatten(), A))


@pytest.mark.parametrize(("anchor", "row", "col"), [(0, 0, 0), (4, 24, 1), (2, 12, 12), (1, 3, 23), (3, 22, 20)])
def test_one_step_of_post_processing_matches_pysot(tracker_cls, anchor, row, col):
    cls_, cfg = tracker_cls
    theirs = make_tracker(tracker_cls)
    size = theirs.score_size
    rng = np.random.default_rng(anchor * 100 + row * 10 + col)
    cls, loc = peaked_outputs(size, anchor, row, col, rng)
    centre, tsize, frame = np.array([150.0, 90.0]), np.array([30.0, 60.0]), np.zeros((180, 320, 3), np.uint8)
    theirs.center_pos, theirs.size, theirs.channel_average = centre.copy(), tsize.copy(), np.zeros(3)
    # pysot decodes the deltas in place (a batch-1 permute is already contiguous): hand it copies.
    theirs.model = type("Model", (), {"track": staticmethod(lambda x: {"cls": cls.clone(), "loc": loc.clone()})})()
    want = theirs.track(frame)

    s_z = np.sqrt(np.prod(tsize + cfg.TRACK.CONTEXT_AMOUNT * tsize.sum()))
    scale_z = torch.tensor([cfg.TRACK.EXEMPLAR_SIZE / s_z], dtype=torch.float64)
    grid = anchor_grid(size, STRIDE, RATIOS, SCALES)
    scores, boxes = foreground_scores(cls, A), decode_deltas(loc, grid)
    t_size = torch.from_numpy(tsize[None].copy())
    sel = select_best(
        scores, boxes, t_size * scale_z, cfg.TRACK.PENALTY_K, anchor_window(size, A), cfg.TRACK.WINDOW_INFLUENCE
    )
    new_c, new_s = smooth_update(torch.from_numpy(centre[None].copy()), t_size, sel, scale_z, cfg.TRACK.LR)
    cx, cy = np.clip(new_c[0].numpy(), 0, [320, 180])
    w, h = np.clip(new_s[0].numpy(), 10, [320, 180])
    np.testing.assert_allclose([cx - w / 2, cy - h / 2, w, h], want["bbox"], atol=1e-6)
    assert float(sel.score) == pytest.approx(float(want["best_score"]), abs=1e-6)

