"""Helpers of the parity tests: the clip, untrained weights that keep maps finite and peaked, box differences.

Untrained networks straight from their initialisers diverge: with BatchNorm statistics at (0, 1)
every ResNet stage multiplies the activations, the heads emit logits of 1e6–1e7, ``exp`` of the
box deltas overflows and every score is 0 or 1. Two steps make such weights usable for parity:

* :func:`calibrate_batchnorm` sets every BatchNorm's running statistics to those of the first
  frame's template and search crops, so activations stay O(1);
* :func:`plant_readout` refits the last 1×1 conv of each classification branch (a ridge regression on
  the first frame) so that its score map has a clear maximum on the target; in later frames the same
  read-out of the template/search correlation follows the target.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import cv2
import numpy as np
import torch
from conftest import shared_path
from torch import nn

#: Frames per clip: the first initialises, the other 30 are tracked.
FRAMES = 31
CLIP = "Crossing"  # 360×240, a walking person (17×50 px) crossing a street


def load_clip(name: str = CLIP, n: int = FRAMES, scale: float = 1.0):
    """(BGR frames, first box as 0-based x, y, w, h, ground truth 0-based) of a shared OTB-layout clip."""
    seq = shared_path("tracking", name)
    gt = np.loadtxt(seq / "groundtruth_rect.txt", delimiter=",")[:n].copy()
    gt[:, :2] -= 1
    frames = [cv2.imread(str(seq / "img" / f"{i:04d}.jpg")) for i in range(1, n + 1)]
    if scale != 1.0:
        frames = [cv2.resize(f, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) for f in frames]
        gt = gt * scale
    return frames, gt[0].copy(), gt


def batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def calibrate_batchnorm(model: nn.Module, calls: Iterable[Callable[[], object]]) -> None:
    """Running statistics of every BatchNorm := the average batch statistics over ``calls``."""
    for bn in batchnorms(model):
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average
    model.train()
    for call in calls:
        call()
    model.eval()
    for bn in batchnorms(model):
        bn.momentum = 0.1


def target_logits(size: int, sigma: float = 1.5, low: float = -4.0, high: float = 6.0) -> torch.Tensor:
    """The planted score: ``high`` at the centre cell of a size×size map (where the target is in the
    first frame's search crop), falling to ``low`` away from it (a Gaussian of ``sigma`` cells)."""
    r = torch.arange(size, dtype=torch.float64) - size // 2
    d2 = r[:, None] ** 2 + r[None, :] ** 2
    return low + (high - low) * torch.exp(-d2 / (2 * sigma**2))


@torch.no_grad()
def plant_readout(features: torch.Tensor, conv: nn.Conv2d, fg: Iterable[int], ridge: float = 1e-2) -> None:
    """Refit the last 1×1 conv of a score branch so that, on ``features`` (1×C×S×S, its input on the
    first frame's search crop), its ``fg`` outputs are :func:`target_logits` and the others 0.

    A ridge regression of the target map on the branch's own correlation channels: in later frames the
    same read-out of the correlation peaks where the target's features are.
    """
    x = features[0].to(torch.float64).flatten(1).T  # (S·S)×C
    x = torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype)], dim=1)
    y = target_logits(features.shape[-1]).reshape(-1, 1)
    w = torch.linalg.solve(x.T @ x + ridge * torch.eye(x.shape[1], dtype=x.dtype), x.T @ y)[:, 0]
    conv.weight.zero_()
    conv.bias.zero_()
    for c in fg:
        conv.weight[c, :, 0, 0] = w[:-1].to(conv.weight)
        conv.bias[c] = float(w[-1])


def head_input(head: nn.Sequential, run: Callable[[], object]) -> torch.Tensor:
    """The input of ``head``'s last layer during ``run()`` (the last call's)."""
    seen = []
    handle = head[-1].register_forward_hook(lambda m, i, o: seen.append(i[0].detach()))
    try:
        run()
    finally:
        handle.remove()
    return seen[-1]


@torch.no_grad()
def shrink(conv: nn.Conv2d, factor: float) -> None:
    """Scale a conv's output (e.g. box deltas near 0, so boxes stay near their anchors)."""
    conv.weight.mul_(factor)
    if conv.bias is not None:
        conv.bias.mul_(factor)


def xywh_corners(box) -> np.ndarray:
    x, y, w, h = box
    return np.array([x, y, x + w, y + h], np.float64)


def max_box_difference(a: list, b: list) -> float:
    """Largest corner difference (px) between two lists of x, y, w, h boxes."""
    return float(max(np.abs(xywh_corners(p) - xywh_corners(q)).max() for p, q in zip(a, b, strict=True)))


def mean_iou(boxes: list, gt: np.ndarray) -> float:
    from siamkit.geometry import iou

    return float(np.mean([float(iou(np.asarray(b, np.float64), g)) for b, g in zip(boxes, gt, strict=True)]))


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)
