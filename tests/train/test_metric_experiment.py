"""The metric-learning runner's helpers (siamkit.train.metric): batches, threshold calibration, random erasing."""

from __future__ import annotations

import numpy as np
import torch

from siamkit.train.metric import calibrate_threshold, make_batcher, random_erasing


def test_make_batch_shapes_and_labels():
    from siamkit.train.metric import DataConfig

    cfg = DataConfig(kind="image_folder", root=".", input_size=(6, 5), mean=(0.0,), std=(1.0,))
    images = np.random.default_rng(0).integers(0, 255, (7, 6, 5), dtype=np.uint8)
    labels = np.arange(7) % 3
    x, y = make_batcher(images, labels, cfg)([4, 1], np.random.default_rng(0))
    assert x.shape == (2, 1, 6, 5) and y.tolist() == [1, 1]
    torch.testing.assert_close(x[0, 0], torch.from_numpy(images[4]).float() / 255)


def test_calibrated_threshold_separates_clean_clusters():
    emb = np.array([[0.0, 0], [0.1, 0], [5, 5], [5.1, 5], [10, 0], [10, 0.1]])
    t = calibrate_threshold(emb, np.array([0, 0, 1, 1, 2, 2]))
    assert 0.1 <= t < 5.0  # between the largest genuine (0.1) and smallest impostor (~7.07 / 5.0) distances


def test_calibrated_threshold_with_forgeries_uses_only_same_writer_pairs():
    # writer 0: genuine near 0, forgeries at 1; writer 1 far away. Cross-writer pairs must not count.
    emb = np.array([[0.0, 0], [0.05, 0], [1.0, 0], [1.05, 0], [50, 50], [50.05, 50], [51, 50]])
    labels = np.array([0, 0, 0, 0, 1, 1, 1])
    genuine = np.array([True, True, False, False, True, True, False])
    t = calibrate_threshold(emb, labels, genuine)
    assert 0.05 <= t < 0.9  # between genuine (0.05) and skilled-forgery (>= 0.95) distances


def test_random_erasing_changes_a_rectangle_only_when_drawn():
    img = np.full((40, 20), 7, np.uint8)
    assert np.array_equal(random_erasing(img, np.random.default_rng(0), p=0.0), img)
    out = random_erasing(img, np.random.default_rng(0), p=1.0)
    changed = np.argwhere(out != 7)
    assert changed.size and out.shape == img.shape and np.array_equal(img, np.full((40, 20), 7, np.uint8))
    ys, xs = changed[:, 0], changed[:, 1]
    box = out[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    assert (box != 7).mean() > 0.9  # one filled rectangle, not scattered pixels
