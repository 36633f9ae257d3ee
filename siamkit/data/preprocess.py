"""Image → tensor conversion shared by training, evaluation and ``siamkit verify``.

A model's sidecar meta stores ``input_size`` (H, W), ``channels`` (1 grey / 3 BGR→RGB) and
``normalize`` (mean, std on the 0–1 scale); :func:`to_tensor` applies exactly those.
Augmentation is a random similarity transform (+ optional horizontal flip) drawn from a
``numpy`` generator, so a batch is a deterministic function of its seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from siamkit.errors import DataError


def fit_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """Greyscale H×W or BGR H×W×3 uint8 → H×W (channels=1) or RGB H×W×3 (channels=3)."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if channels == 1:
        return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def resize(image: np.ndarray, size: Sequence[int]) -> np.ndarray:
    h, w = int(size[0]), int(size[1])
    if image.shape[:2] == (h, w):
        return image
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)


def prepare(images: Sequence[np.ndarray], size: Sequence[int], channels: int) -> np.ndarray:
    """Stack images resized to ``size`` with the right channels: N×H×W(×3) uint8."""
    return np.stack([resize(fit_channels(im, channels), size) for im in images])


def normalise(batch: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """N×H×W(×C) uint8 → N×C×H×W float32, (x/255 − mean)/std."""
    x = torch.from_numpy(np.ascontiguousarray(batch)).float().div_(255.0)
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x - m) / s


def to_tensor(image: np.ndarray, input_size: Sequence[int], channels: int, normalize: dict) -> torch.Tensor:
    """One decoded image → 1×C×H×W model input (the zoo sidecar's preprocessing)."""
    return normalise(prepare([image], input_size, channels), normalize["mean"], normalize["std"])


def read_image(path: str | Path, channels: int) -> np.ndarray:
    """Read an image file (any format OpenCV reads) as grey or BGR uint8."""
    from siamkit.video import read_image as decode

    path = Path(path)
    if not path.is_file():
        raise DataError(f"Image not found: {path}.")
    # the one image reader: a truncated JPEG/PNG is an error, not grey pixels
    return decode(path, cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR)


@dataclass(frozen=True)
class Augment:
    """Random similarity transform: rotation (degrees), scale range, shift (fraction of size), flip."""

    rotation: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    shift: float = 0.0
    hflip: bool = False
    border: str = "replicate"  # or "constant" (fills with ``fill``)
    fill: int = 0

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = image.shape[:2]
        if self.rotation or self.scale != (1.0, 1.0) or self.shift:
            angle = rng.uniform(-self.rotation, self.rotation)
            scale = rng.uniform(*self.scale)
            matrix = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, scale)
            matrix[:, 2] += rng.uniform(-self.shift, self.shift, size=2) * (w, h)
            mode = cv2.BORDER_REPLICATE if self.border == "replicate" else cv2.BORDER_CONSTANT
            image = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=mode,
                                   borderValue=self.fill)
        if self.hflip and rng.random() < 0.5:
            image = image[:, ::-1]
        return np.ascontiguousarray(image)
