"""DaSiamRPN: SiamRPN inference with the adaptive search size and an optional long-term mode (§5).

* **Adaptive search** (foolwood/DaSiamRPN, ``adaptive: True`` for ``SiamRPNBIG``): a target
  covering less than 0.4 % of the first frame is searched at 287 instead of 271 px for the
  whole sequence.
* **Long-term mode** (pysot ``SiamRPNLTTracker``): when the best score drops below
  ``confidence_low`` the previous box is reported unchanged and the target is *lost*; a lost
  target is searched in a much larger square (831 px) with an almost flat window
  (``lost_window_influence``) until the best score exceeds ``confidence_high``. As in pysot,
  the stored state is not clipped to the image in this mode; only the reported box is.

* **Distractor-aware re-scoring** (``distractor_aware: true``, off by default). The paper's
  Eq. 3 ranks proposals by ``f(z, p) − α̂ Σᵢ αᵢ f(dᵢ, p) / Σᵢ αᵢ``: the similarity to the target
  minus the weighted similarity to distractors ``dᵢ``. Here the distractors of a frame are the
  proposals (after greedy NMS) whose raw score exceeds ``distractor_threshold`` and that do not
  overlap the chosen box; their exemplar crops are templated and, in the next frame, their score
  maps (one extra batched forward) are subtracted with weights αᵢ = their scores and
  α̂ = ``distractor_weight``. The re-scored map only ranks candidates; the size update and the
  reported score use the raw score. **There is no public reference implementation** (pysot#324,
  #336; the paper's incremental accumulation over frames is not reproduced, only the last frame's
  distractors are used) and the thresholds are siamkit choices, not published values; the extra
  host transfer for the NMS makes this mode slower.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from siamkit.config import PUBLISHED, TRACKERS
from siamkit.geometry import iou as geom_iou
from siamkit.ops.postprocess import clip_state, exemplar_side, foreground_scores, state_to_xywh
from siamkit.trackers.build import dasiamrpn_importer, make_tracker
from siamkit.trackers.engine import AnchorCore, SiameseTracker, SiamRPNConfig, result_from_row


@dataclass(frozen=True)
class DaSiamRPNConfig(SiamRPNConfig):
    """foolwood/DaSiamRPN ``SiamRPNBIG`` (VOT2018, EAO 0.383) plus pysot's long-term settings (off):
    preset ``vot18_big`` of ``configs/dasiamrpn.yaml``."""

    TRACKER = "dasiamrpn"
    PRESET = "vot18_big"

    adaptive: bool = PUBLISHED  # search small targets at small_instance_size for the whole sequence
    small_target_ratio: float = PUBLISHED  # "small": box area below this fraction of the first frame
    small_instance_size: int = PUBLISHED
    long_term: bool = PUBLISHED  # pysot's SiamRPNLTTracker: lost/found with a larger search when lost
    lost_instance_size: int = PUBLISHED
    lost_window_influence: float = PUBLISHED
    confidence_low: float = PUBLISHED  # best score below it: the target is lost
    confidence_high: float = PUBLISHED  # best score above it: found again
    distractor_aware: bool = PUBLISHED  # Eq. 3 re-scoring (siamkit's reading, see the module docs)
    distractor_weight: float = PUBLISHED  # α̂
    distractor_threshold: float = PUBLISHED  # raw score above which a proposal is a distractor
    distractor_nms_iou: float = PUBLISHED
    max_distractors: int = PUBLISHED


def distractor_rescore(
    scores: torch.Tensor, d_scores: torch.Tensor, d_weight: torch.Tensor, target: torch.Tensor, alpha_hat: float
) -> torch.Tensor:
    """Eq. 3: ``scores − α̂ Σᵢ αᵢ sᵢ / Σᵢ αᵢ`` per target.

    ``scores`` B×N (target template), ``d_scores`` M×N (one row per distractor), ``d_weight`` M
    (αᵢ), ``target`` M (which target each distractor belongs to). Targets without distractors
    keep their scores.
    """
    num = torch.zeros_like(scores).index_add_(0, target, d_scores * d_weight[:, None])
    den = torch.zeros(scores.shape[0], dtype=scores.dtype, device=scores.device).index_add_(0, target, d_weight)
    return scores - alpha_hat * num / den.clamp_min(1e-12)[:, None]


def select_distractors(
    boxes: np.ndarray, scores: np.ndarray, chosen: np.ndarray, threshold: float, iou: float, k: int
) -> list[int]:
    """Greedy NMS over candidates (cx, cy, w, h) scoring above ``threshold``, excluding the chosen box.

    Returns up to ``k`` indices, best first; a candidate overlapping the chosen box or a kept one
    by more than ``iou`` is dropped.
    """
    xywh = np.concatenate([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, 2:]], axis=1)
    chosen_xywh = np.concatenate([chosen[:2] - chosen[2:] / 2, chosen[2:]])
    keep: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        if scores[i] <= threshold or len(keep) == k:
            break
        if geom_iou(xywh[i], chosen_xywh) > iou:
            continue
        if any(geom_iou(xywh[i], xywh[j]) > iou for j in keep):
            continue
        keep.append(int(i))
    return keep


class DaSiamRPNCore(AnchorCore):
    """Anchor core with the adaptive search size, the long-term lost/found switch and the optional
    distractor-aware re-scoring (state ``dz``/``dw``: up to ``max_distractors`` templates per target)."""

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

    def start(self, frames, frame_index, boxes):
        state = super().start(frames, frame_index, boxes)
        if self.config.distractor_aware:
            k = self.config.max_distractors
            state["dz"] = _map(
                lambda t: torch.zeros((t.shape[0], k, *t.shape[1:]), dtype=t.dtype, device=t.device), state["zf"]
            )
            state["dw"] = np.zeros((len(boxes), k), np.float64)
        return state

    def rescore(self, sub, x, scores):
        if not self.config.distractor_aware or not (sub["dw"] > 0).any():
            return scores
        b_idx, k_idx = np.nonzero(sub["dw"] > 0)
        bt = torch.as_tensor(b_idx, device=self.device)
        kt = torch.as_tensor(k_idx, device=self.device)
        dz = _map(lambda t: t[bt, kt], sub["dz"])
        out = self.model.search(x[bt], dz)
        d_scores = foreground_scores(out["cls"], self.anchor_num)
        weight = torch.as_tensor(sub["dw"][b_idx, k_idx], dtype=scores.dtype, device=self.device)
        return distractor_rescore(scores, d_scores, weight, bt, self.config.distractor_weight)

    def find_distractors(self, frames, frame_index, sub, instance, out, sel, scale_z) -> dict[str, Any]:
        """Template the strongest non-target proposals of this frame for the next one."""
        c = self.config
        scores, boxes = self.decode(out, instance)
        top = min(50, scores.shape[1])
        ts, ti = scores.topk(top, dim=1)
        tb = torch.gather(boxes, 1, ti[:, :, None].expand(-1, -1, 4))
        host = torch.cat([ts[:, :, None], tb, sel.box[:, None, :].expand(-1, top, -1)], dim=2).cpu().numpy()
        dw = np.zeros_like(sub["dw"])
        picks = []
        for b in range(host.shape[0]):
            keep = select_distractors(
                host[b, :, 1:5],
                host[b, :, 0],
                host[b, 0, 5:9],
                c.distractor_threshold,
                c.distractor_nms_iou,
                c.max_distractors,
            )
            for k, j in enumerate(keep):
                dw[b, k] = host[b, j, 0]
                picks.append((b, k, j))
        dz = _map(torch.zeros_like, sub["dz"])
        if picks:
            b_idx = torch.as_tensor([p[0] for p in picks], device=self.device)
            k_idx = torch.as_tensor([p[1] for p in picks], device=self.device)
            j_idx = torch.as_tensor([p[2] for p in picks], device=self.device)
            centres = sub["centre"][b_idx] + tb[b_idx, j_idx, :2] / scale_z[b_idx, None]
            s_z = torch.round(exemplar_side(sub["size"][b_idx], c.context_amount))
            fidx = np.asarray(frame_index)[[p[0] for p in picks]]
            z = self._crop(frames, fidx, centres, s_z, c.exemplar_size, sub["avg"][b_idx])
            feats = self.model.template(z)
            dz = _map2(lambda buf, f: buf.index_put((b_idx, k_idx), f.to(buf.dtype)), dz, feats)
        return {"dz": dz, "dw": dw}

    def window_influence(self, sub, instance):
        c = self.config
        lost = torch.as_tensor(sub["lost"], device=self.device)
        return torch.where(lost, c.lost_window_influence, c.window_influence).to(torch.float64)

    def finish(self, frames, frame_index, sub, instance, out, sel, scale_z, s_x, new_centre, new_size):
        c = self.config
        updates, results = self._finish(
            frames, frame_index, sub, instance, out, sel, scale_z, s_x, new_centre, new_size
        )
        if c.distractor_aware:
            updates.update(self.find_distractors(frames, frame_index, sub, instance, out, sel, scale_z))
        return updates, results

    def _finish(self, frames, frame_index, sub, instance, out, sel, scale_z, s_x, new_centre, new_size):
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


def _map(fn, tree):
    if isinstance(tree, torch.Tensor):
        return fn(tree)
    return type(tree)(_map(fn, t) for t in tree)


def _map2(fn, a, b):
    if isinstance(a, torch.Tensor):
        return fn(a, b)
    return type(a)(_map2(fn, x, y) for x, y in zip(a, b, strict=True))


@TRACKERS.register("dasiamrpn")
def build_dasiamrpn(weights=None, device=None, **options) -> SiameseTracker:
    """DaSiamRPN (``SiamRPNBIG`` settings; ``preset="vot"``/``"otb"`` for the small models, ``long_term=True``)."""
    return make_tracker(
        "dasiamrpn", DaSiamRPNConfig, DaSiamRPNCore, weights, device, importer=dasiamrpn_importer, **options
    )
