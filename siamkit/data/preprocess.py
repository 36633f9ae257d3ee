"""Image → tensor conversion: the one used by training, evaluation, ``siamkit verify`` and gallery search.

A model's sidecar meta stores ``input_size`` (H, W), ``channels`` (1 grey / 3 colour), optional
``invert`` (255 − pixel, for dark-on-light scans), optional ``color`` (``"rgb"``, the default, or
``"bgr"``), optional ``scale`` (pixel multiplier, default 1/255) and ``normalize`` (mean, std
applied after scaling, or none). :class:`Preprocessing` holds exactly those and applies them in
one order — channels, area resize, invert, scale, normalise — the order training uses;
:func:`to_tensor` is the same conversion for one image.
Augmentation is a random similarity transform (+ optional horizontal flip) drawn from a
``numpy`` generator, so a batch is a deterministic function of its seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from siamkit.errors import ConfigError, DataError

_SCALE = 1.0 / 255.0


def fit_channels(image: np.ndarray, channels: int, color: str = "rgb") -> np.ndarray:
    """Greyscale H×W or BGR H×W×3 uint8 → H×W (channels=1) or RGB (``color="bgr"``: BGR) H×W×3."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if channels == 1:
        return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    return image if color == "bgr" else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def resize(image: np.ndarray, size: Sequence[int]) -> np.ndarray:
    h, w = int(size[0]), int(size[1])
    if image.shape[:2] == (h, w):
        return image
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)


def prepare(images: Sequence[np.ndarray], size: Sequence[int], channels: int, invert: bool = False,
            color: str = "rgb") -> np.ndarray:
    """Stack images resized to ``size`` with the right channels (inverted after resizing): N×H×W(×3) uint8."""
    batch = np.stack([resize(fit_channels(im, channels, color), size) for im in images])
    return 255 - batch if invert else batch


def normalise(batch: np.ndarray, mean: Sequence[float] | None, std: Sequence[float] | None,
              scale: float = _SCALE) -> torch.Tensor:
    """N×H×W(×C) uint8 → N×C×H×W float32, (x·scale − mean)/std (x/255 by default; no mean/std: x·scale)."""
    x = torch.from_numpy(np.ascontiguousarray(batch)).float()
    x = x.div_(255.0) if scale == _SCALE else x.mul_(float(scale))
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    if mean is None:
        return x
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x - m) / s


@dataclass(frozen=True)
class Preprocessing:
    """A model's input conversion (its sidecar meta): decoded uint8 images → N×C×H×W float32."""

    input_size: tuple[int, int]
    channels: int
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    invert: bool = False
    color: str = "rgb"
    scale: float = _SCALE

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any] | Any) -> Preprocessing:
        """From a zoo entry or its ``meta`` dict, with a ConfigError naming what is missing or malformed."""
        if meta is None:
            raise ConfigError("An embedding model needs its zoo entry (or meta dict) to know the input size "
                              "and normalisation.")
        meta = dict(getattr(meta, "meta", meta) or {})
        try:
            h, w = (int(v) for v in meta["input_size"])
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"Model meta needs input_size [H, W]; got {meta.get('input_size')!r}.") from None
        channels = int(meta.get("channels", 3))
        if channels not in (1, 3):
            raise ConfigError(f"Model meta 'channels' must be 1 or 3; got {channels}.")
        color = str(meta.get("color", "rgb")).lower()
        if color not in ("rgb", "bgr"):
            raise ConfigError(f"Model meta 'color' must be 'rgb' or 'bgr'; got {meta.get('color')!r}.")
        norm, mean, std = meta.get("normalize"), None, None
        if isinstance(norm, Mapping):
            mean = tuple(float(v) for v in np.asarray(norm.get("mean", 0.0), np.float32).reshape(-1))
            std = tuple(float(v) for v in np.asarray(norm.get("std", 1.0), np.float32).reshape(-1))
            if len(mean) not in (1, channels) or len(std) not in (1, channels):
                raise ConfigError(f"normalize mean/std must have 1 or {channels} values; got {norm}.")
        elif norm not in (None, "none", False):
            raise ConfigError(f"Model meta 'normalize' must be a mean/std mapping or none; got {norm!r}.")
        return cls((h, w), channels, mean, std, bool(meta.get("invert", False)), color,
                   float(meta.get("scale", _SCALE)))

    def prepare(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """N×H×W(×3) uint8 at the input size, channels fitted, inverted if the model wants it."""
        return prepare(images, self.input_size, self.channels, self.invert, self.color)

    def __call__(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """Decoded images (grey H×W or BGR H×W×3 uint8) → N×C×H×W float32 model input."""
        return normalise(self.prepare(images), self.mean, self.std, self.scale)

    def read(self, path: str | Path) -> np.ndarray:
        """An image file decoded as this model reads it (grey or BGR uint8)."""
        return read_image(path, self.channels)

    def load(self, path: str | Path) -> torch.Tensor:
        """An image file → the C×H×W float32 tensor the model expects."""
        return self([self.read(path)])[0]


def to_tensor(image: np.ndarray, input_size: Sequence[int], channels: int, normalize: dict | None,
              invert: bool = False, color: str = "rgb", scale: float = _SCALE) -> torch.Tensor:
    """One decoded image → 1×C×H×W model input (the zoo sidecar's preprocessing, see :class:`Preprocessing`)."""
    return Preprocessing.from_meta({"input_size": input_size, "channels": channels, "normalize": normalize,
                                    "invert": invert, "color": color, "scale": scale})([image])


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
