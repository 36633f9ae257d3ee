"""SiamMask: the anchor core plus a segmentation mask and a rotated box (reference §7).

The box state is updated exactly as SiamRPN++ does. Then, at the chosen score-map cell, the
mask branch gives 63×63 logits (or 127×127 with the refine module) over that cell's 127×127
window of the search crop (its "RoW"); the sigmoid mask is warped into the image, thresholded,
and the largest external contour of more than ``min_contour_area`` pixels becomes the
minimum-area rotated rectangle (the polygon VOT scores). Without such a contour the polygon is
the axis-aligned box. ``cv2.findContours`` is unpacked in a version-safe way (OpenCV 3, 4, 5).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from siamkit.config import PUBLISHED, TRACKERS
from siamkit.ops.postprocess import clip_state, state_to_xywh
from siamkit.trackers.base import TrackResult
from siamkit.trackers.build import make_tracker, pysot_importer
from siamkit.trackers.engine import AnchorCore, SiameseTracker, SiamRPNConfig


@dataclass(frozen=True)
class SiamMaskConfig(SiamRPNConfig):
    """pysot ``siammask_r50_l3`` (SiamMask-LD, VOT2018): preset ``pysot_vot18`` of ``configs/siammask.yaml``."""

    TRACKER = "siammask"
    PRESET = "pysot_vot18"

    mask_threshold: float = PUBLISHED  # mask probability above which a pixel belongs to the target
    refine: bool = PUBLISHED  # 127×127 masks from the refine module (else the 63×63 mask head)
    min_contour_area: float = PUBLISHED  # smaller contours give the axis-aligned box instead of a polygon


def mask_to_image(
    mask: np.ndarray,
    crop_origin: tuple[float, float],
    crop_scale: float,
    cell: tuple[int, int],
    config: SiamMaskConfig,
    image_size: tuple[int, int],
) -> np.ndarray:
    """Warp an M×M mask of one cell's window into an H×W image (pysot's ``_crop_back``).

    ``crop_origin`` is the search crop's top-left corner in the image (centre − s_x/2),
    ``crop_scale`` = s_x / instance_size, ``cell`` = (row, col) in the score map.
    """
    width, height = image_size
    out = mask.shape[0]
    row, col = cell
    half = config.base_size / 2
    x0 = crop_origin[0] + (col - half) * config.stride * crop_scale
    y0 = crop_origin[1] + (row - half) * config.stride * crop_scale
    side = crop_scale * config.exemplar_size
    s = out / side
    back = (-x0 * s, -y0 * s, width * s, height * s)
    a = (width - 1) / back[2]
    b = (height - 1) / back[3]
    mapping = np.array([[a, 0, -a * back[0]], [0, b, -b * back[1]]], dtype=np.float64)
    return cv2.warpAffine(
        mask.astype(np.float32),
        mapping,
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def mask_polygon(mask: np.ndarray, threshold: float, min_area: float, fallback_box: np.ndarray) -> np.ndarray:
    """Rotated rectangle (4×2 corners) around the largest mask contour, else the box's corners."""
    binary = (mask > threshold).astype(np.uint8)
    found = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contours = found[-2]  # OpenCV 3 returns (image, contours, hierarchy); 4 and 5 (contours, hierarchy)
    if contours:
        areas = [cv2.contourArea(c) for c in contours]
        best = int(np.argmax(areas))
        if areas[best] > min_area:
            return cv2.boxPoints(cv2.minAreaRect(contours[best].reshape(-1, 2))).astype(np.float64)
    x, y, w, h = fallback_box
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float64)


class SiamMaskCore(AnchorCore):
    """Anchor core + mask at the chosen cell, warped to the image, + rotated polygon."""

    name = "siammask"

    def finish(self, frames, frame_index, sub, instance, out, sel, scale_z, s_x, new_centre, new_size):
        c = self.config
        size_s = self.score_size(instance)
        cell = sel.index % (size_s * size_s)
        pos = torch.stack([cell // size_s, cell % size_s], dim=1)
        if c.refine:
            logits = self.model.refine_mask(out, pos)
        else:
            rows_idx = torch.arange(pos.shape[0], device=pos.device)
            m = out["mask"][rows_idx, :, pos[:, 0], pos[:, 1]]
            side = int(round(m.shape[1] ** 0.5))
            logits = m.reshape(-1, side, side)
        probs = torch.sigmoid(logits.to(torch.float64)).reshape(logits.shape[0], -1)
        centre, size = clip_state(new_centre, new_size, sub["frame_size"], c.min_size)
        origin = sub["centre"] - s_x[:, None] / 2
        packed = (
            torch.cat(
                [state_to_xywh(centre, size), sel.score[:, None], origin, s_x[:, None], pos.to(torch.float64), probs],
                dim=1,
            )
            .cpu()
            .numpy()
        )
        results = []
        m_side = logits.shape[-1]
        for row, fsize in zip(packed, sub["frame_size"].cpu().numpy(), strict=True):
            box = row[:4].copy()
            mask = row[10:].reshape(m_side, m_side)
            image_mask = mask_to_image(
                mask,
                (row[5], row[6]),
                row[7] / instance,
                (int(row[8]), int(row[9])),
                c,
                (int(fsize[0]), int(fsize[1])),
            )
            polygon = mask_polygon(image_mask, c.mask_threshold, c.min_contour_area, box)
            results.append(TrackResult(box=box, score=float(row[4]), mask=image_mask, polygon=polygon))
        return {"centre": centre, "size": size}, results


@TRACKERS.register("siammask")
def build_siammask(weights=None, device=None, **options) -> SiameseTracker:
    """SiamMask (ResNet-50 to layer3, depth-wise RPN, mask branch + refine; pysot ``siammask_r50_l3``)."""
    return make_tracker("siammask", SiamMaskConfig, SiamMaskCore, weights, device, importer=pysot_importer, **options)
