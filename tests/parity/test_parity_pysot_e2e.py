"""siamkit against STVIR/pysot end to end: same weights (pysot's model, imported), same 31 frames, same boxes.

For each tracker pysot's ``ModelBuilder`` is built from its published experiment config (narrowed where
noted in ``peers.PYSOT_CASES``, to keep CI fast: RPN/neck width 64, ResNet-50 with one block per stage,
ResNet-50 SiamRPN++ searched at 191), initialised with a fixed seed, made usable as described in
``peer_setup`` (BatchNorm statistics of the first frame's crops; the last 1×1 conv of each
classification branch refitted on frame 0 so that its map peaks on the target; box deltas scaled by
0.2), saved, and loaded into siamkit with :mod:`siamkit.importers.pysot`. Both trackers then run free
on the same frames; boxes must agree to 0.5 px and SiamMask's masks to IoU 0.99.

Why SiamRPN++ ResNet-50 was once "600 px off": with untrained weights straight from the initialisers
(BatchNorm at mean 0, variance 1) the ResNet-50 heads emit logits of ~1e7; ``exp`` of the box deltas
overflows, the penalties become NaN, pysot's ``np.argmax`` returns the first NaN candidate and clips
its infinite box to the image border, while siamkit refuses non-finite candidates and keeps the
state. Both networks agreed bit for bit (checked on the full published network: cls/loc difference
0.0); the comparison was of two different failure modes, not of the trackers. With calibrated weights
(below) the same ResNet-50 tracker matches pysot to well under 0.5 px.
"""

from __future__ import annotations

import numpy as np
import pytest
from peers import compare_pysot, pysot_env


@pytest.fixture(scope="module")
def pysot():
    with pysot_env() as env:
        yield env


def assert_peaked_and_moving(result) -> None:
    """The comparison is not trivial: the selected candidates score (not 0) and the box travels.

    The planted read-out peaks at +6 logits on frame 0 but generalises unevenly: best scores reach
    0.99 (AlexNet), 0.3 (ResNet-50) and 0.1 (MobileNetV2) in later frames."""
    assert np.median(result.scores_theirs) > 0.01
    assert result.travel_px > 5


@pytest.mark.parametrize("name", ["siamrpnpp_alexnet", "siamrpnpp_mobilev2", "siamrpnpp_r50"])
def test_siamrpnpp_boxes_match_pysot(name, pysot, tmp_path):
    result = compare_pysot(name, pysot, tmp_path)
    assert len(result.ours) == 30
    assert result.max_box_px <= 0.5
    np.testing.assert_allclose(result.scores_ours, result.scores_theirs, atol=1e-4)
    assert_peaked_and_moving(result)


def test_siammask_boxes_masks_and_polygons_match_pysot(pysot, tmp_path):
    result = compare_pysot("siammask", pysot, tmp_path)
    assert result.max_box_px <= 0.5
    assert result.min_mask_iou >= 0.99
    assert min(result.extra["mask_pixels_theirs"]) > 0
    assert result.extra["max_polygon_px"] <= 1.0
    assert_peaked_and_moving(result)
