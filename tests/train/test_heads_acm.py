"""SiamBAN-ACM on the Lite0 trunk: the trunk split with the box prior, the prior of training equal to the
tracker's, the tracker running the model, and exact resume of its head training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from siamkit.config import MODELS
from siamkit.data.pairs import PairConfig
from siamkit.ops.postprocess import exemplar_box_prior
from siamkit.train import heads

FRAME = (np.random.default_rng(1).uniform(0, 255, (200, 260, 3))).astype(np.uint8)


@pytest.fixture(scope="module", autouse=True)
def _registered():
    from siamkit import zoo

    zoo._ensure_registered()


def _tracker():
    from siamkit.trackers import create_tracker

    torch.manual_seed(0)
    return create_tracker("siamban_acm", weights="none", preset="lite0", device="cpu")


def _tracker_prior(box) -> torch.Tensor:
    """The box prior the tracker gives the model at its first frame."""
    tracker = _tracker()
    seen, template = [], tracker.model.template

    def spy(z, box=None):
        seen.append(box.clone())
        return template(z, box)

    tracker.model.template = spy
    tracker.init(FRAME, box)
    assert len(seen) == 1
    return seen[0]


def test_trunk_split_is_the_whole_network_with_the_box_prior():
    torch.manual_seed(0)
    model = MODELS.build("siamban_acm_lite0").eval()
    assert model.needs_box_prior and model.stride == 16 and model.base_size == 2
    z = torch.rand(2, 3, 127, 127) * 255
    x = torch.rand(2, 3, 255, 255) * 255
    box = exemplar_box_prior(torch.tensor([[40.0, 50.0], [90.0, 20.0]]), 127).float()
    whole = model(z, x, box)
    split = model.search_from_trunk(model.backbone(x), model.template_from_trunk(model.backbone(z), box))
    assert whole.keys() == split.keys() == {"cls", "loc"}
    for key in whole:
        torch.testing.assert_close(whole[key], split[key])
        assert whole[key].shape[-2:] == (11, 11) and model.score_size == 11
    other = model(z, x, box.flip(0))  # the prior reaches the maps
    assert not torch.allclose(other["cls"], whole["cls"])
    with pytest.raises(heads.ConfigError, match="box prior"):
        model.template(z)


@pytest.mark.parametrize("w, h", [(22, 78), (78, 22), (40, 40)])  # exemplar sides 96, 96, 80: no rounding
def test_training_box_prior_is_the_trackers(w, h):
    expected = _tracker_prior((100, 70, w, h))
    # the cached search box: the same object, in search-crop pixels (any scale), somewhere in the crop
    for scale, x1, y1 in [(1.0, 100.0, 90.0), (127 / 96 * 1.1, 30.0, 60.5)]:
        box = np.array([[x1, y1, x1 + w * scale, y1 + h * scale]])
        got = heads.template_box_priors(box, np.array([False]), PairConfig(), torch.Generator())
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-5)


def test_training_box_prior_matches_the_tracker_up_to_its_rounded_crop_side():
    expected = _tracker_prior((100, 70, 40, 50))  # exemplar side √(85·95) = 89.86 → 90 px in the tracker
    got = heads.template_box_priors(np.array([[0.0, 0.0, 40.0, 50.0]]), np.array([False]), PairConfig(),
                                    torch.Generator())
    torch.testing.assert_close(got, expected, rtol=0.01, atol=0.0)


def test_negative_pairs_take_a_positive_pairs_prior_and_distractor_templates_carry_theirs():
    boxes = np.array([[0, 0, 20, 60], [0, 0, 50, 50], [0, 0, 30, 10], [0, 0, 64, 64]], np.float64)
    negative = np.array([False, False, False, True])
    g = torch.Generator().manual_seed(0)
    priors = heads.template_box_priors(boxes, negative, PairConfig(), g)
    assert any(torch.equal(priors[3], priors[i]) for i in range(3))
    batch = {"zf": torch.arange(4.0).reshape(4, 1, 1, 1), "z_box": priors.clone()}
    flags = heads.make_distractor_pairs(batch, negative, 0.75, g)
    owner = batch["zf"][:, 0, 0, 0].long()
    assert (owner != torch.arange(4)).sum() == 3 and flags.all()
    torch.testing.assert_close(batch["z_box"], priors[owner])  # each prior moved with its template


def test_the_lite0_preset_tracks_a_frame():
    tracker = _tracker()
    assert tracker.model.__class__.__name__ == "SiamBANACMLite0"
    tracker.init(FRAME, (100, 70, 40, 50))
    result = tracker.track(FRAME)
    assert np.isfinite(result.box).all() and result.box[2] > 0 and result.box[3] > 0
    assert result.extra["fast_motion"] is False



def test_the_search_branch_runs_in_onnxruntime_with_the_same_boxes():
    from siamkit.trackers import create_tracker

    boxes = []
    for backend in ("torch", "onnxruntime"):  # the exported example template gets a box prior too
        torch.manual_seed(0)
        tracker = create_tracker("siamban_acm", weights="none", preset="lite0", device="cpu", backend=backend)
        tracker.init(FRAME, (100, 70, 40, 50))
        boxes.append(tracker.track(FRAME).box)
    np.testing.assert_allclose(boxes[1], boxes[0], atol=1e-3)
