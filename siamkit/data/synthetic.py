"""A tracking clip built from real photographs that installed packages ship, with exact ground truth.

The scene is a photograph (scikit-learn's ``china.jpg`` or ``flower.jpg``, else matplotlib's
``grace_hopper.jpg``); a virtual camera pans and zooms slowly across it, and an object cut from
another photograph moves along a smooth path, changing size, with a soft-edged paste. Every
frame's box is known exactly because the object was placed there. The imagery is real; only
the motion is synthetic — which is what makes the ground truth exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from siamkit.errors import DataError


@dataclass(frozen=True)
class Clip:
    """Frames (list of H×W×3 uint8 BGR) and ground-truth boxes (N×4 xywh, 0-based)."""

    name: str
    frames: list[np.ndarray]
    boxes: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)


def _package_file(package: str, *parts: str) -> Path | None:
    try:
        root = resources.files(package)
    except ModuleNotFoundError:
        return None
    path = Path(str(root.joinpath(*parts)))
    return path if path.is_file() else None


def sample_photographs() -> dict[str, Path]:
    """Photographs shipped by installed packages, by short name."""
    candidates = {
        "china": ("sklearn", "datasets", "images", "china.jpg"),
        "flower": ("sklearn", "datasets", "images", "flower.jpg"),
        "grace_hopper": ("matplotlib", "mpl-data", "sample_data", "grace_hopper.jpg"),
    }
    found = {}
    for name, (package, *parts) in candidates.items():
        path = _package_file(package, *parts)
        if path is not None:
            found[name] = path
    return found


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"Cannot read the photograph {path}.")
    return image


def make_demo_clip(num_frames: int = 90, size: tuple[int, int] = (480, 320), seed: int = 0) -> Clip:
    """Build the demo clip: ``num_frames`` frames of ``size`` = (width, height)."""
    photos = sample_photographs()
    if "grace_hopper" not in photos:
        raise DataError(
            "No sample photograph found (matplotlib's grace_hopper.jpg).", hint="Reinstall matplotlib."
        )
    scene_name = "china" if "china" in photos else "grace_hopper"
    scene = _read(photos[scene_name])
    portrait = _read(photos["grace_hopper"])
    rng = np.random.default_rng(seed)
    width, height = size

    # The object: Grace Hopper's face and cap (a distinctive, textured target).
    obj = portrait[40:330, 120:390]
    obj_h0, obj_w0 = 72.0, 67.0  # size in the first frame
    alpha = _soft_mask(obj.shape[1], obj.shape[0])

    # Scene larger than the view so the camera can pan and zoom.
    big = cv2.resize(scene, (int(width * 1.6), int(height * 1.6)), interpolation=cv2.INTER_CUBIC)
    t = np.linspace(0.0, 1.0, num_frames)
    phase = rng.uniform(0, 2 * np.pi, 4)
    # camera: view origin in the big scene and a zoom factor
    cam_x = (big.shape[1] - width) * (0.5 + 0.35 * np.sin(2 * np.pi * 0.6 * t + phase[0]))
    cam_y = (big.shape[0] - height) * (0.5 + 0.3 * np.sin(2 * np.pi * 0.4 * t + phase[1]))
    zoom = 1.0 + 0.12 * np.sin(2 * np.pi * 0.5 * t)
    # object: centre path in view coordinates and a scale factor
    obj_cx = width * (0.5 + 0.3 * np.sin(2 * np.pi * 0.8 * t + phase[2]))
    obj_cy = height * (0.5 + 0.25 * np.sin(2 * np.pi * 1.1 * t + phase[3]))
    obj_scale = 1.0 + 0.35 * np.sin(np.pi * t) ** 2
    brightness = 1.0 + 0.15 * np.sin(2 * np.pi * 0.7 * t)

    frames, boxes = [], []
    for i in range(num_frames):
        view_w, view_h = width / zoom[i], height / zoom[i]
        x0 = cam_x[i] + (width - view_w) / 2
        y0 = cam_y[i] + (height - view_h) / 2
        affine = np.array([[zoom[i], 0, -x0 * zoom[i]], [0, zoom[i], -y0 * zoom[i]]], np.float64)
        frame = cv2.warpAffine(big, affine, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        w, h = obj_w0 * obj_scale[i], obj_h0 * obj_scale[i]
        box = np.array([obj_cx[i] - w / 2, obj_cy[i] - h / 2, w, h])
        _paste(frame, obj, alpha, box)
        frame = np.clip(frame.astype(np.float32) * brightness[i], 0, 255).astype(np.uint8)
        frames.append(frame)
        boxes.append(box)
    return Clip(name=f"demo_{scene_name}", frames=frames, boxes=np.asarray(boxes))


def _soft_mask(width: int, height: int, border: float = 0.08) -> np.ndarray:
    """An alpha mask that is 1 inside and fades to 0 over the last ``border`` of each side."""
    ramp_x = np.clip(np.minimum(np.arange(width) + 0.5, width - np.arange(width) - 0.5) / (border * width), 0, 1)
    ramp_y = np.clip(np.minimum(np.arange(height) + 0.5, height - np.arange(height) - 0.5) / (border * height), 0, 1)
    return np.outer(ramp_y, ramp_x).astype(np.float32)


def _paste(frame: np.ndarray, obj: np.ndarray, alpha: np.ndarray, box: np.ndarray) -> None:
    """Warp ``obj`` onto ``box`` (sub-pixel exact) and blend it with ``alpha``."""
    x, y, w, h = box
    sx, sy = w / obj.shape[1], h / obj.shape[0]
    affine = np.array([[sx, 0, x + 0.5 * sx - 0.5], [0, sy, y + 0.5 * sy - 0.5]], np.float64)
    size = (frame.shape[1], frame.shape[0])
    warped = cv2.warpAffine(obj, affine, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    weight = cv2.warpAffine(alpha, affine, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)[..., None]
    blended = frame.astype(np.float32) * (1 - weight) + warped.astype(np.float32) * weight
    frame[:] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
