"""DaSiamRPN: SiamRPN inference with the adaptive search size and an optional long-term mode (§5).

* **Adaptive search** (foolwood/DaSiamRPN, ``adaptive: True`` for ``SiamRPNBIG``): a target
  covering less than 0.4 % of the first frame is searched at 287 instead of 271 px for the
  whole sequence.
* **Long-term mode** (pysot ``SiamRPNLTTracker``): when the best score drops below
  ``confidence_low`` the previous box is reported unchanged and the target is *lost*; a lost
  target is searched in a much larger square (831 px) with an almost flat window
  (``lost_window_influence``) until the best score exceeds ``confidence_high``. As in pysot,
  the stored state is not clipped to the image in this mode; only the reported box is.

The paper's distractor-aware incremental learning has no public reference implementation
(pysot#324, #336) and is not provided.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from siamkit.config import TRACKERS
from siamkit.ops.postprocess import clip_state, state_to_xywh
from siamkit.trackers.batched import SiameseTracker, result_from_row
from siamkit.trackers.siamrpn import AnchorCore, SiamRPNConfig, dasiamrpn_importer, make_tracker


@dataclass(frozen=True)
class DaSiamRPNConfig(SiamRPNConfig):
    """foolwood/DaSiamRPN ``SiamRPNBIG`` (VOT2018, EAO 0.383) plus pysot's long-term settings (off)."""

    model: str = "siamrpn_alexnet"
    model_options: dict[str, Any] = field(default_factory=lambda: {"width_mult": 2.0, "hidden": 512})
    instance_size: int = 271
    base_size: int = 0
    penalty_k: float = 0.055
    window_influence: float = 0.42
    lr: float = 0.295
    adaptive: bool = True
    small_target_ratio: float = 0.004
    small_instance_size: int = 287
    long_term: bool = False
    lost_instance_size: int = 831
    lost_window_influence: float = 0.001
    confidence_low: float = 0.8
    confidence_high: float = 0.998
    source: str = "foolwood/DaSiamRPN code/net.py SiamRPNBIG, code/run_SiamRPN.py"


class DaSiamRPNCore(AnchorCore):
    """Anchor core with the adaptive search size and the long-term lost/found switch."""

    name = "dasiamrpn"

    def initial_instance(self, boxes: np.ndarray, frame_sizes: np.ndarray) -> np.ndarray:
        c = self.config
        inst = np.full(len(boxes), c.instance_size, np.int64)
        if c.adaptive:
            area = boxes[:, 2] * boxes[:, 3] / (frame_sizes[:, 0] * frame_sizes[:, 1]).astype(np.float64)
            inst[area < c.small_target_ratio] = c.small_instance_size
        return inst

    def extra_state(self, boxes: np.ndarray, frame_sizes: np.ndarray) -> dict[str, Any]:
        inst = self.initial_instance(boxes, frame_sizes)
        return {"normal_instance": inst.copy(), "lost": np.zeros(len(boxes), bool)}

    def window_influence(self, sub, instance):
        c = self.config
        lost = torch.as_tensor(sub["lost"], device=self.device)
        return torch.where(lost, c.lost_window_influence, c.window_influence).to(torch.float64)

    def finish(self, frames, frame_index, sub, instance, out, sel, scale_z, s_x, new_centre, new_size):
        c = self.config
        if not c.long_term:
            return super().finish(frames, frame_index, sub, instance, out, sel, scale_z, s_x, new_centre, new_size)
        confident = (sel.score >= c.confidence_low)[:, None]
        stored_c = torch.where(confident, new_centre, sub["centre"])
        stored_s = torch.where(confident, new_size, sub["size"])
        centre, size = clip_state(stored_c, stored_s, sub["frame_size"], c.min_size)
        rows = torch.cat([state_to_xywh(centre, size), sel.score[:, None]], dim=1).cpu().numpy()
        lost = sub["lost"].copy()
        lost[rows[:, 4] < c.confidence_low] = True
        lost[rows[:, 4] > c.confidence_high] = False
        inst = np.where(lost, c.lost_instance_size, sub["normal_instance"]).astype(np.int64)
        updates = {"centre": stored_c, "size": stored_s, "lost": lost, "instance": inst}
        return updates, [result_from_row(r, extra={"lost": bool(k)}) for r, k in zip(rows, lost, strict=True)]


@TRACKERS.register("dasiamrpn")
def build_dasiamrpn(weights=None, device=None, **options) -> SiameseTracker:
    """DaSiamRPN (``SiamRPNBIG`` settings; ``preset="vot"``/``"otb"`` for the small models, ``long_term=True``)."""
    return make_tracker(
        "dasiamrpn", DaSiamRPNConfig, DaSiamRPNCore, weights, device, importer=dasiamrpn_importer, **options
    )
