"""Functional check: with a hand-built template-matching network the trackers follow a moving object.

The network pools zero-mean grey levels into stride-8 cells and cross-correlates template and
search cells, so its score map peaks where the object is — a tiny, exactly understood
"trained" model. If any sign or offset in the tracking loop were wrong (displacement
direction, crop origin, map centre, scale), the box would drift away from the object.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from siamkit.ops.anchors import anchor_shapes
from siamkit.trackers.build import resolve_config
from siamkit.trackers.engine import SiameseTracker
from siamkit.trackers.siamban import BANCore, SiamBANConfig
from siamkit.trackers.siamfc import SiamFCConfig, SiamFCCore
from siamkit.trackers.siamrpn import AnchorCore, SiamRPNPPR50Config


class Matcher(nn.Module):
    """Zero-mean grey cells (8×8 average pooling) + plain cross-correlation."""

    def __init__(self, kind: str, box_side_crop: float = 0.0):
        super().__init__()
        self.kind, self.box_side_crop = kind, box_side_crop
        self.stride, self.anchor_num = 8, 0

    def features(self, img: torch.Tensor) -> torch.Tensor:
        grey = img.mean(dim=1, keepdim=True) - 127.5
        return F.avg_pool2d(grey, 8) / 128.0

    def template(self, z, box=None):
        return self.features(z)

    def search(self, x, zf):
        xf = self.features(x)
        if self.kind in ("ban", "anchor"):  # 4 cells of padding per side: 17 + 8 = 25 cells, as padded backbones give
            xf = F.pad(xf, (4, 4, 4, 4))
        b = xf.shape[0]
        corr = F.conv2d(xf.reshape(1, b, *xf.shape[2:]), zf, groups=b)
        corr = corr.reshape(b, 1, corr.shape[-2], corr.shape[-1])
        if self.kind == "siamfc":
            return {"cls": corr}
        flat = corr.reshape(b, -1)
        top, mean = flat.max(1, keepdim=True).values, flat.mean(1, keepdim=True)
        z = (10 * (flat - top) / (top - mean)).reshape(corr.shape)  # sharp logits: 0 at the peak
        if self.kind == "anchor":  # every anchor predicts the same box: dx = dy = 0, size = the target's
            shapes = torch.tensor(anchor_shapes(), dtype=corr.dtype)
            a = len(shapes)
            cls = torch.cat([-z.expand(b, a, -1, -1), z.expand(b, a, -1, -1)], dim=1)
            loc = torch.zeros(b, 4, a, *corr.shape[-2:], dtype=corr.dtype)
            loc[:, 2] = torch.log(self.box_side_crop / shapes[:, 0])[None, :, None, None]
            loc[:, 3] = torch.log(self.box_side_crop / shapes[:, 1])[None, :, None, None]
            return {"cls": cls, "loc": loc.reshape(b, 4 * a, *corr.shape[-2:])}
        cls = torch.cat([-z, z], dim=1)
        loc = torch.full((b, 4, *corr.shape[-2:]), self.box_side_crop / 2, dtype=corr.dtype)
        return {"cls": cls, "loc": loc}


def moving_square(steps: int, velocity: tuple[float, float], start=(100, 70), side=21, size=(200, 260)):
    frames, truth = [], []
    for t in range(steps):
        f = np.full((*size, 3), 40, np.uint8)
        x, y = int(round(start[0] + velocity[0] * t)), int(round(start[1] + velocity[1] * t))
        f[y : y + side, x : x + side] = 230
        frames.append(f)
        truth.append((x, y, side, side))
    return frames, np.array(truth, dtype=np.float64)


def run(tracker, frames, truth):
    tracker.init(frames[0], truth[0])
    errors = []
    for f, gt in zip(frames[1:], truth[1:], strict=True):
        box = tracker.track(f).box
        errors.append(np.hypot(*(box[:2] + box[2:] / 2 - gt[:2] - gt[2:] / 2)))
    return np.array(errors)


@pytest.mark.parametrize("velocity", [(4, 2), (-3, -4)])
def test_siamfc_follows_the_object(velocity):
    frames, truth = moving_square(12, velocity)
    cfg = resolve_config(SiamFCConfig, "siamfc", preset="siamfc_pytorch", overrides={"rgb": False})
    tracker = SiameseTracker(SiamFCCore(Matcher("siamfc"), cfg, torch.device("cpu")))
    errors = run(tracker, frames, truth)
    assert errors.max() < 4.0, errors


@pytest.mark.parametrize("velocity", [(4, 2), (-3, -4)])
@pytest.mark.parametrize("kind", ["ban", "anchor"])
def test_siamban_and_siamrpnpp_follow_the_object(kind, velocity):
    frames, truth = moving_square(12, velocity)
    side = 21.0
    s_z = np.sqrt((side + side) * (side + side))  # context square of a 21 px target
    net = Matcher(kind, side * 127 / s_z)
    core = BANCore(net, SiamBANConfig(), torch.device("cpu")) if kind == "ban" else None
    if kind == "anchor":
        net.anchor_num = 5
        core = AnchorCore(net, SiamRPNPPR50Config(), torch.device("cpu"))
    tracker = SiameseTracker(core)
    errors = run(tracker, frames, truth)
    assert errors.max() < 4.0, errors
    assert tracker.track(frames[-1]).box[2] == pytest.approx(side, abs=0.5)
