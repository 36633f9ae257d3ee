"""SiamMask-Lite0 training: mask targets of the coarse and refined branches agree, and the box branch stays fixed."""

from __future__ import annotations

import pytest
import torch
import yaml
from conftest import REPO, SHARED_DATA, shared_path
from safetensors.torch import load_file
from torch.nn import functional as F

import siamkit.nn  # noqa: F401  (registers the models)
from siamkit.config import MODELS
from siamkit.errors import ConfigError
from siamkit.losses.tracking import mask_window_targets, refine_mask_loss
from siamkit.train.tracking import RPNTask


def test_refine_targets_are_the_coarse_loss_windows():
    """The refined mask's target at a cell is the window mask_loss unfolds for that cell (stride 16, pad 16)."""
    torch.manual_seed(0)
    mask = torch.where(torch.rand(3, 1, 255, 255) > 0.5, 1.0, -1.0)
    windows = F.unfold(mask, (127, 127), padding=16, stride=16).reshape(3, 127, 127, 11, 11)
    cells = torch.tensor([[0, 0], [5, 7], [10, 10]])
    got = mask_window_targets(mask, cells, 127, 16, 16)
    for b, (r, c) in enumerate(cells.tolist()):
        assert torch.equal(got[b], windows[b, :, :, r, c])


def test_refine_loss_is_the_soft_margin_in_float64():
    torch.manual_seed(1)
    logits = torch.randn(2, 127, 127, dtype=torch.float64)
    mask = torch.where(torch.rand(2, 1, 255, 255) > 0.3, 1.0, -1.0).double()
    cells = torch.tensor([[3, 4], [6, 2]])
    target = torch.stack([F.pad(mask[b, 0], [16] * 4)[16 * r : 16 * r + 127, 16 * c : 16 * c + 127]
                          for b, (r, c) in enumerate(cells.tolist())])
    want = torch.log1p(torch.exp(-target * logits)).mean()
    assert refine_mask_loss(logits, mask, cells, 16, 16).item() == pytest.approx(want.item(), rel=1e-12)


def test_freeze_refuses_unknown_prefixes():
    task = RPNTask(MODELS.build("siammask_lite0"), {"mask": 1.0})
    with pytest.raises(ConfigError, match="No model parameter"):
        task.freeze(["nothing."])


def test_recipe_trains_the_mask_branch_only(tmp_path):
    """Three steps of configs/siammask_lite0_train.yaml: the box branch is the one the recipe starts from (the
    one-level SiamRPN++-Lite0 box branch kept in the shipped SiamMask), unchanged (batch-norm statistics included);
    the mask branch and refine moved; both mask terms were computed."""
    shared_path("tracking_train", "davis_camel")
    from siamkit.train.tracking import run_tracker_training

    data = yaml.safe_load((REPO / "siamkit" / "configs" / "siammask_lite0_train.yaml").read_text()
                          .replace("../shared/data", str(SHARED_DATA)))
    data["sources"][0].update(names=["davis_camel"], num_use=8)
    data.update(batch_size=2, ship=None)
    data["train"].update(steps=3, warmup_steps=0, checkpoint_every=1)
    result = run_tracker_training(data, tmp_path / "run")
    trained = load_file(result["weights"])
    torch.manual_seed(0)
    fresh = MODELS.build("siammask_lite0").state_dict()
    shipped = load_file(str(REPO / "siamkit" / "zoo_weights" / "siammask_lite0.safetensors"))
    box = {k: v for k, v in shipped.items() if k.startswith(tuple(data["init_prefixes"]))}
    assert len(box) > 100 and all(torch.equal(trained[k], box[k]) for k in box)
    moved = [k for k in trained if k.startswith(("mask_head.", "refine_head.")) and "weight" in k
             and not torch.equal(trained[k].float(), fresh[k].half().float())]
    assert len(moved) > 10
    header = (tmp_path / "run" / "log.csv").read_text().splitlines()[0].split(",")
    assert {"mask", "refine"} <= set(header)
