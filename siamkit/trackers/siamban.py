"""SiamBAN and SiamBAN-ACM: the shared core with anchor-free points (reference §1, §8, §9).

Each score-map cell predicts a target probability and the distances (l, t, r, b) from the
cell centre to the box sides. SiamBAN-ACM replaces the correlation by an asymmetric
convolution that also sees the initial box size, and optionally (``fast_motion``) doubles the
search size for the rest of a sequence once a large right/down displacement is seen — the
published behaviour, never reset and triggered by positive displacement only.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from siamkit.config import PUBLISHED, TRACKERS
from siamkit.ops.postprocess import clip_state, exemplar_box_prior, state_to_xywh
from siamkit.trackers.build import make_tracker
from siamkit.trackers.engine import CoreConfig, PointCore, SiameseTracker, result_from_row


def siamban_importer(path, model):
    from siamkit.importers.siamban import import_checkpoint

    return import_checkpoint(path, model)


@dataclass(frozen=True)
class SiamBANConfig(CoreConfig):
    """hqucv/siamban ``siamban_r50_l234`` (VOT2018, Optuna-tuned values): preset ``vot2018`` of
    ``configs/siamban.yaml``."""

    TRACKER = "siamban"
    PRESET = "vot2018"


@dataclass(frozen=True)
class SiamBANACMConfig(CoreConfig):
    """wencheng256/SiamBAN-ACM (siamban's code defaults): preset ``defaults`` of ``configs/siamban_acm.yaml``.

    ``fast_motion`` doubles the search size (to ``fast_instance_size``) once a large right/down move is seen.
    """

    TRACKER = "siamban_acm"
    PRESET = "defaults"

    fast_motion: bool = PUBLISHED
    fast_instance_size: int = PUBLISHED


class BANCore(PointCore):
    """SiamBAN: §1 with points."""

    name = "siamban"


class ACMCore(PointCore):
    """SiamBAN-ACM: the template branch also sees the box size; optional fast-motion search."""

    name = "siamban_acm"

    def template(self, z: torch.Tensor, size: torch.Tensor, s_z: torch.Tensor) -> Any:
        """Template with the box prior (cx, cy, w, h) in exemplar-crop pixels, as ACM does."""
        try:
            takes_box = len(inspect.signature(self.model.template).parameters) >= 2
        except (TypeError, ValueError):
            takes_box = False
        if not takes_box:
            return self.model.template(z)
        return self.model.template(z, exemplar_box_prior(size, self.config.exemplar_size, s_z).to(torch.float32))

    def finish(self, frames, frame_index, sub, instance, out, sel, scale_z, s_x, new_centre, new_size):
        c = self.config
        centre, size = clip_state(new_centre, new_size, sub["frame_size"], c.min_size)
        s_z = c.exemplar_size / scale_z
        shift = sel.box[:, :2] / scale_z[:, None]
        fast = (shift[:, 0] > s_z / 2) | (shift[:, 1] > s_z / 2)
        rows = torch.cat([state_to_xywh(centre, size), sel.score[:, None], fast[:, None].to(centre)], dim=1)
        rows = rows.cpu().numpy()
        updates = {"centre": centre, "size": size}
        if c.fast_motion:
            updates["instance"] = np.where(rows[:, 5] > 0, c.fast_instance_size, instance).astype(np.int64)
        results = [
            result_from_row(r, extra={"fast_motion": bool(r[5] > 0 or instance != c.instance_size)}) for r in rows
        ]
        return updates, results


@TRACKERS.register("siamban")
def build_siamban(weights=None, device=None, **options) -> SiameseTracker:
    """SiamBAN with ResNet-50 and three fused box-adaptive heads (hqucv/siamban)."""
    return make_tracker("siamban", SiamBANConfig, BANCore, weights, device, importer=siamban_importer, **options)


@TRACKERS.register("siamban_acm")
def build_siamban_acm(weights=None, device=None, **options) -> SiameseTracker:
    """SiamBAN-ACM: asymmetric convolution heads with a box prior (wencheng256/SiamBAN-ACM)."""
    return make_tracker("siamban_acm", SiamBANACMConfig, ACMCore, weights, device, importer=siamban_importer, **options)

