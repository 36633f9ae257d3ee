"""Image → tensor preprocessing (the zoo sidecar's), the image reader's errors, deterministic augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from siamkit.data.preprocess import Augment, Preprocessing, read_image, to_tensor
from siamkit.errors import ConfigError, DataError


def test_to_tensor_resizes_and_normalises_by_hand():
    img = np.full((20, 10), 200, np.uint8)
    x = to_tensor(img, (8, 4), 1, {"mean": [0.5], "std": [0.25]})
    assert x.shape == (1, 1, 8, 4)
    torch.testing.assert_close(x, torch.full((1, 1, 8, 4), (200 / 255 - 0.5) / 0.25))
    bgr = np.zeros((4, 4, 3), np.uint8)
    bgr[..., 0] = 255  # pure blue in BGR -> channel 2 in RGB
    y = to_tensor(bgr, (4, 4), 3, {"mean": [0, 0, 0], "std": [1, 1, 1]})
    assert y[0, 2].min() == 1.0 and y[0, 0].max() == 0.0
    grey_from_colour = to_tensor(bgr, (4, 4), 1, {"mean": [0], "std": [1]})
    assert grey_from_colour.shape == (1, 1, 4, 4)


def test_model_options_by_hand_in_training_order():
    """invert after the area resize, colour order, scale and normalize as the sidecar says."""
    import cv2

    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (13, 11, 3), dtype=np.uint8)
    small = cv2.resize(bgr, (5, 7), interpolation=cv2.INTER_AREA)  # (W, H)
    mean, std = np.float32([0.1, 0.2, 0.3]), np.float32([0.5, 0.4, 0.3])
    norm = {"mean": mean.tolist(), "std": std.tolist()}
    meta = {"input_size": [7, 5], "channels": 3, "invert": True, "normalize": norm}
    by_hand = ((255 - small[:, :, ::-1]).astype(np.float32) / 255 - mean) / std
    torch.testing.assert_close(Preprocessing.from_meta(meta)([bgr])[0], torch.from_numpy(by_hand.transpose(2, 0, 1)))
    raw = {"input_size": [7, 5], "channels": 3, "color": "bgr", "scale": 1.0, "normalize": "none"}
    torch.testing.assert_close(Preprocessing.from_meta(raw)([bgr])[0],
                               torch.from_numpy(small.astype(np.float32).transpose(2, 0, 1)))
    grey = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), (5, 7), interpolation=cv2.INTER_AREA)
    one = to_tensor(bgr, (7, 5), 1, None, invert=True)
    torch.testing.assert_close(one[0, 0], torch.from_numpy((255 - grey).astype(np.float32) / 255))


@pytest.mark.parametrize("meta,match", [
    ({"channels": 3}, "input_size"),
    ({"input_size": [4, 4], "channels": 2}, "channels"),
    ({"input_size": [4, 4], "color": "hsv"}, "color"),
    ({"input_size": [4, 4], "channels": 3, "normalize": {"mean": [0, 0], "std": [1]}}, "1 or 3"),
    ({"input_size": [4, 4], "normalize": "imagenet"}, "normalize"),
    (None, "zoo entry"),
])
def test_preprocessing_meta_errors(meta, match):
    with pytest.raises(ConfigError, match=match):
        Preprocessing.from_meta(meta)


def test_read_image_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_image(tmp_path / "none.png", 1)
    (tmp_path / "x.png").write_text("no image")
    with pytest.raises(DataError, match="Cannot read"):
        read_image(tmp_path / "x.png", 1)


def test_augment_is_a_function_of_the_generator():
    img = (np.arange(30 * 20) % 251).astype(np.uint8).reshape(30, 20)
    aug = Augment(rotation=10, scale=(0.9, 1.1), shift=0.1, hflip=True)
    a = aug(img, np.random.default_rng([1, 2, 3]))
    b = aug(img, np.random.default_rng([1, 2, 3]))
    c = aug(img, np.random.default_rng([1, 2, 4]))
    assert np.array_equal(a, b) and not np.array_equal(a, c) and a.shape == img.shape
    assert np.array_equal(Augment()(img, np.random.default_rng(0)), img)  # identity when nothing is asked
