"""Training NanoTrack v2 from random init (siamkit.train.light): targets on its grid, the task, a tiny overfit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from siamkit.data.pairs import PairConfig, PairDataset
from siamkit.errors import ConfigError
from siamkit.nn.nanotrack import NanoTrackV2
from siamkit.trackers.nanotrack import grid_points
from siamkit.train.light import NanoTrackTask, init_loc_bias, nanotrack_targets
from siamkit.train.tracking import BANTask, SourceConfig, build_source


@pytest.fixture(scope="module")
def model() -> NanoTrackV2:
    torch.manual_seed(0)
    return NanoTrackV2()


def test_targets_points_are_the_trackers_grid(model):
    """The training grid must be the one the tracker decodes on (offsets from the crop centre)."""
    targets = nanotrack_targets(model, 255)
    assert (targets.score_size, targets.stride) == (16, 16)
    px, py = targets.points
    tracker = grid_points(16, 16).numpy()  # offsets from the crop centre, row-major
    np.testing.assert_allclose(px.reshape(-1) - 127, tracker[:, 0])
    np.testing.assert_allclose(py.reshape(-1) - 127, tracker[:, 1])


def test_targets_hand_computed(model):
    """A 64×64 box centred on pixel 127: only the centre point (8, 8) lies inside E(16, 16); its
    distances are 32 px on every side. Points at ±16 px lie on the ellipse, so they are not positive."""
    targets = nanotrack_targets(model, 255)
    out = targets(np.array([95.0, 95.0, 159.0, 159.0]), False, np.random.default_rng(0))
    pos = np.argwhere(out["label_cls"] == 1)
    assert pos.tolist() == [[8, 8]]
    np.testing.assert_allclose(out["label_loc"][:, 8, 8], [32, 32, 32, 32])
    # negatives only outside E(32, 32): the points at ±32 px are on it, the ones at 48 px outside
    neg = np.argwhere(out["label_cls"] == 0)
    dist = np.hypot(*(neg - 8).T.astype(float)) * 16
    assert (dist > 32).all() and len(neg) == 48


def test_targets_reject_other_search_size(model):
    with pytest.raises(ConfigError, match="255"):
        nanotrack_targets(model, 287)


def test_loc_bias_init_gives_target_sized_boxes():
    torch.manual_seed(1)
    net = NanoTrackV2().eval()
    init_loc_bias(net, 32.0)
    with torch.no_grad():
        loc = net(torch.rand(1, 3, 127, 127) * 255, torch.rand(1, 3, 255, 255) * 255)["loc"]
    assert loc.shape == (1, 4, 16, 16)
    assert torch.allclose(loc, torch.full_like(loc, 32.0), rtol=0.2)
    with pytest.raises(ConfigError):
        init_loc_bias(net, 0.0)


def test_bantask_needs_the_adapter(model):
    """BANTask passes a template box NanoTrack's forward does not take; NanoTrackTask does not."""
    z, x = torch.zeros(1, 3, 127, 127), torch.zeros(1, 3, 255, 255)
    batch = {"template": z, "search": x, "label_cls": torch.full((1, 16, 16), -1),
             "label_loc": torch.zeros(1, 4, 16, 16)}
    batch["label_cls"][0, 8, 8] = 1
    batch["label_cls"][0, 0, 0] = 0
    with pytest.raises(TypeError):
        BANTask(model).training_step(batch)
    loss, logs = NanoTrackTask(model).eval().training_step(batch)
    assert torch.isfinite(loss) and set(logs) == {"cls", "loc"}


def test_overfit_a_handful_of_pairs():
    """Four fixed photo pairs, 20 Adam steps: the BAN loss (cls + IoU) must drop well below its start.

    A small NanoTrack (63/127-px crops → 8×8 grid, narrow 2-block towers) keeps this to a few seconds."""
    torch.manual_seed(0)
    net = NanoTrackV2(exemplar_size=63, instance_size=127, width=32, depth=2)
    init_loc_bias(net, 16.0)
    source = build_source(SourceConfig(kind="photos", packages=("matplotlib",), num_use=4), base=None)
    cfg = PairConfig(exemplar_size=63, search_size=127, neg=0.0)
    data = PairDataset([source], cfg, nanotrack_targets(net, 127))
    batch = data.make_batch(list(range(4)), np.random.default_rng(0))
    assert batch["label_cls"].shape == (4, 8, 8) and (batch["label_cls"] == 1).any()
    task = NanoTrackTask(net).train()
    opt = torch.optim.Adam(task.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        loss, _ = task.training_step(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert int(task.step) == 20
    assert np.mean(losses[-3:]) < 0.6 * np.mean(losses[:3]), losses
