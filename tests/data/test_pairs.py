"""Training pairs: determinism, maximum frame gap, box consistency through augmentation, sources."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from conftest import shared_path

from siamkit.data.pairs import (
    AugmentConfig,
    PairConfig,
    PairDataset,
    PhotoSource,
    Track,
    TrackSource,
    collate,
    crop_pair_image,
    load_mask,
    seed_worker,
    tracks_from_coco,
    tracks_from_dataset,
    tracks_from_vid,
)
from siamkit.errors import DataError
from siamkit.losses.tracking import AnchorTargets, SiamFCTargets

BG = 60


def rect_image(box, size=(320, 240), value=250) -> np.ndarray:
    """Plain background with a bright rectangle covering pixels x…x+w−1, y…y+h−1."""
    w_img, h_img = size
    img = np.full((h_img, w_img, 3), BG, np.uint8)
    x, y, w, h = box
    img[y : y + h, x : x + w] = value
    return img


def extent(crop: np.ndarray) -> tuple[float, float, float, float]:
    """Continuous extent (x1, y1, x2, y2) of the bright region of a crop (half-bright threshold)."""
    on = crop.mean(axis=2) > (BG + 250) / 2
    ys, xs = np.nonzero(on)
    return xs.min() - 0.5, ys.min() - 0.5, xs.max() + 0.5, ys.max() + 0.5


@pytest.fixture
def synthetic_track(tmp_path) -> Track:
    """A 30-frame track of a rectangle moving right, frame ids 10, 12, …, 68."""
    frames, boxes = [], []
    for k in range(30):
        box = (40 + 4 * k, 80, 48, 36)
        path = tmp_path / f"{k:04d}.png"
        cv2.imwrite(str(path), rect_image(box))
        frames.append(path)
        boxes.append(box)
    return Track("moving", frames, np.array(boxes, float), frame_ids=np.arange(10, 70, 2))


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_augmented_search_box_lands_where_the_label_says(seed):
    box = (130, 90, 50, 30)
    img = rect_image(box)
    aug = AugmentConfig(shift=64, scale=0.18, flip=0.5)  # no colour/blur so the rectangle stays crisp
    crop, bx, _ = crop_pair_image(img, np.array(box, float), 255, 127, 0.5, aug, np.random.default_rng(seed))
    np.testing.assert_allclose(extent(crop), bx, atol=1.0)
    # and the SiamFC label's centre cell is the one nearest to the box centre
    label = SiamFCTargets()(bx, False, np.random.default_rng(0))["label"][0]
    i, j = np.unravel_index(np.argmax(_centre_score(bx)), label.shape)
    assert label[i, j] == 1


def _centre_score(bx):
    cx, cy = (bx[0] + bx[2]) / 2, (bx[1] + bx[3]) / 2
    grid = 127 + (np.arange(17) - 8) * 8
    return -((grid[None, :] - cx) ** 2 + (grid[:, None] - cy) ** 2)


def test_unaugmented_crop_matches_tracker_geometry():
    box = (130, 90, 50, 30)
    crop, bx, _ = crop_pair_image(rect_image(box), np.array(box, float), 255, 127, 0.5, AugmentConfig(),
                                  np.random.default_rng(0))
    # target centred on the crop's centre pixel (up to the half source pixel of the crop's floor convention:
    # centre 154.5, crop side 159 → columns 75…233), size × 255/159
    s_z = np.sqrt((50 + 40) * (30 + 40))
    k = 255 / round(s_z * 255 / 127)
    np.testing.assert_allclose([(bx[0] + bx[2]) / 2, (bx[1] + bx[3]) / 2], [127, 127], atol=0.5 * k + 1e-9)
    np.testing.assert_allclose([bx[2] - bx[0], bx[3] - bx[1]], [50 * k, 30 * k], rtol=1e-9)
    np.testing.assert_allclose(extent(crop), bx, atol=1.0)


def test_mask_follows_the_same_warp():
    box = (100, 60, 60, 40)
    img = rect_image(box)
    mask = (img[:, :, 0] > 128).astype(np.float32)
    aug = AugmentConfig(shift=64, scale=0.18, flip=1.0)
    crop, bx, cm = crop_pair_image(img, np.array(box, float), 255, 127, 0.5, aug, np.random.default_rng(7), mask)
    on_img = crop.mean(2) > (BG + 250) / 2
    assert ((cm > 0.5) == on_img).mean() > 0.995


def test_colour_blur_gray_change_pixels_not_geometry():
    box = (130, 90, 50, 30)
    img = rect_image(box)
    plain = AugmentConfig(shift=10, scale=0.1)
    noisy = AugmentConfig(shift=10, scale=0.1, color=1.0, blur=1.0)
    a, ba, _ = crop_pair_image(img, np.array(box, float), 255, 127, 0.5, plain, np.random.default_rng(3))
    b, bb, _ = crop_pair_image(img, np.array(box, float), 255, 127, 0.5, noisy, np.random.default_rng(3))
    np.testing.assert_array_equal(ba, bb)
    assert np.abs(a - b).mean() > 0.5


def test_max_frame_gap_is_respected(synthetic_track):
    src = TrackSource("s", [synthetic_track], frame_range=6)
    rng = np.random.default_rng(0)
    ids = {str(p): i for p, i in zip(synthetic_track.frames, synthetic_track.frame_ids, strict=True)}
    gaps = []
    for _ in range(400):
        z, x = src.positive(0, rng)
        gaps.append(abs(ids[str(x["path"])] - ids[str(z["path"])]))
    assert max(gaps) == 6 and min(gaps) == 0  # the whole range is used, never beyond it
    assert set(gaps) == {0, 2, 4, 6}


def test_dataset_is_deterministic_and_seed_dependent(synthetic_track):
    cfg = PairConfig(neg=0.3, gray=0.3, pairs_per_epoch=6, seed=5)
    targets = AnchorTargets(score_size=25)
    a = PairDataset([TrackSource("s", [synthetic_track], 10)], cfg, targets)
    b = PairDataset([TrackSource("s", [synthetic_track], 10)], cfg, targets)
    for i in range(len(a)):
        x, y = a[i], b[i]
        assert x.keys() == y.keys()
        assert all(np.array_equal(x[k], y[k]) for k in x)
    c = PairDataset([TrackSource("s", [synthetic_track], 10)], PairConfig(seed=6, pairs_per_epoch=6), targets)
    assert not np.array_equal(a[0]["search"], c[0]["search"])
    a.set_epoch(1)
    assert not np.array_equal(a[0]["search"], b[0]["search"])
    # make_batch (the Trainer's StepLoader path) is a function of the generator's seed
    b1 = b.make_batch([0, 1], np.random.default_rng(9))
    b2 = b.make_batch([0, 1], np.random.default_rng(9))
    assert all(torch.equal(b1[k], b2[k]) for k in b1)


def test_workers_give_the_same_pairs(synthetic_track):
    ds = PairDataset([TrackSource("s", [synthetic_track], 10)], PairConfig(pairs_per_epoch=4), SiamFCTargets())
    one = list(torch.utils.data.DataLoader(ds, batch_size=2, num_workers=0, collate_fn=collate))
    two = list(torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate,
                                           worker_init_fn=seed_worker))
    for p, q in zip(one, two, strict=True):
        assert all(torch.equal(p[k], q[k]) for k in p)


def test_negative_pairs_come_from_other_tracks(tmp_path, synthetic_track):
    other = Track("other", [tmp_path / "o.png"], np.array([[10, 10, 30, 30]], float))
    cv2.imwrite(str(other.frames[0]), rect_image((10, 10, 30, 30), value=200))
    cfg = PairConfig(neg=1.0, pairs_per_epoch=4)
    ds = PairDataset([TrackSource("s", [synthetic_track, other], 10)], cfg, AnchorTargets(score_size=25))
    for i in range(4):
        item = ds[i]
        assert item["neg"] == 1
        assert (item["label_cls"] == 1).sum() == 0 and 0 < (item["label_cls"] == 0).sum() <= 16
        # the search crop shows the other track's object (its brightness), never the template's
        bright = item["search"].max()
        tbright = item["template"].max()
        assert bright != pytest.approx(tbright, abs=20)


def test_photo_source_warp_keeps_box_consistent(tmp_path):
    # a coordinate-coded photo: blue = x/2, green = y/2 → the colour at a point tells where it came from
    h, w = 300, 400
    yy, xx = np.mgrid[:h, :w]
    photo = np.stack([xx / 2, yy / 2, np.full_like(xx, 128)], axis=2).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "p.png"), photo)
    src = PhotoSource("p", [tmp_path / "p.png"], warp_scale=0.2, warp_shift=0.1)
    for seed in range(5):
        z, x = src.positive(0, np.random.default_rng(seed))
        zb, xb = z["box"], x["box"]
        for fx, fy in [(0.5, 0.5), (0.1, 0.2), (0.9, 0.8)]:  # same relative point of the box in both images
            pz = zb[:2] + (zb[2:] - 1) * (fx, fy)
            px = xb[:2] + (xb[2:] - 1) * (fx, fy)
            cz = z["image"][int(round(pz[1])), int(round(pz[0]))].astype(float)
            cx = x["image"][int(round(px[1])), int(round(px[0]))].astype(float)
            assert np.abs(cz - cx)[:2].max() <= 2.0
    ds = PairDataset([src], PairConfig(neg=0, pairs_per_epoch=2), SiamFCTargets())
    assert ds[0]["search"].shape == (3, 255, 255)


def test_coco_reader_polygon_mask_and_masks_in_pairs(tmp_path):
    img = rect_image((100, 60, 80, 50))
    cv2.imwrite(str(tmp_path / "a.jpg"), img)
    poly = [100, 60, 179, 60, 179, 109, 100, 109]
    data = {
        "images": [{"id": 1, "file_name": "a.jpg"}],
        "annotations": [
            {"id": 7, "image_id": 1, "bbox": [100, 60, 80, 50], "segmentation": [poly], "iscrowd": 0},
            {"id": 8, "image_id": 1, "bbox": [0, 0, 2, 2], "segmentation": [], "iscrowd": 0},  # too small
            {"id": 9, "image_id": 1, "bbox": [0, 0, 50, 50], "segmentation": {"counts": []}, "iscrowd": 1},
        ],
    }
    (tmp_path / "ann.json").write_text(json.dumps(data))
    tracks = tracks_from_coco(tmp_path / "ann.json", tmp_path)
    assert [t.name for t in tracks] == ["coco/7"]
    m = load_mask(tracks[0].masks[0], None, img.shape[:2])
    assert m.sum() == 80 * 50
    targets = AnchorTargets(score_size=25, with_mask=True, fill_negatives=True, neg_window="centre")
    ds = PairDataset([TrackSource("coco", tracks, 1)], PairConfig(neg=0, masks=True, pairs_per_epoch=2), targets)
    item = ds[0]
    assert item["has_mask"] == 1 and item["label_mask"].shape == (1, 255, 255)
    x1, y1, x2, y2 = item["box"]
    inside = item["label_mask"][0, int(y1) + 3 : int(y2) - 3, int(x1) + 3 : int(x2) - 3]
    assert (inside == 1).all() and (item["label_mask"] == 1).mean() < 0.5
    assert item["label_mask_weight"].sum() >= 1


def test_vid_reader(tmp_path):
    ann = tmp_path / "Annotations" / "VID" / "train" / "a" / "vid1"
    ann.mkdir(parents=True)
    for k in range(3):
        objs = f"<object><trackid>0</trackid><bndbox><xmin>{10 + k}</xmin><ymin>20</ymin><xmax>50</xmax>" \
               f"<ymax>60</ymax></bndbox></object>"
        if k != 1:
            objs += "<object><trackid>1</trackid><bndbox><xmin>0</xmin><ymin>0</ymin><xmax>9</xmax>" \
                    "<ymax>9</ymax></bndbox></object>"
        (ann / f"{k:06d}.xml").write_text(f"<annotation>{objs}</annotation>")
    tracks = tracks_from_vid(tmp_path)
    assert [t.name for t in tracks] == ["a/vid1/0", "a/vid1/1"]
    np.testing.assert_array_equal(tracks[0].boxes[2], [12, 20, 38, 40])
    np.testing.assert_array_equal(tracks[1].frame_ids, [0, 2])
    assert tracks[0].frames[0].name == "000000.JPEG" and "Data" in str(tracks[0].frames[0])
    with pytest.raises(DataError):
        tracks_from_vid(tmp_path / "nothing")


def test_shared_clips_split_into_training_tracks():
    root = shared_path("tracking")
    held_out = ("Crossing", "MountainBike", "vot_bag", "uav_boat1", "uav_person12_1", "dtb_Gull2")
    tracks = tracks_from_dataset(f"otb:{root}", exclude=held_out)
    assert sorted(t.name for t in tracks) == ["Biker", "Human3", "MotorRolling", "Soccer", "Tiger1", "vot_car1"]
    ds = PairDataset([TrackSource("otb", tracks, 100)], PairConfig(pairs_per_epoch=2), SiamFCTargets())
    assert ds[1]["search"].shape == (3, 255, 255)


def test_bad_inputs_raise(tmp_path):
    with pytest.raises(DataError):
        Track("t", [tmp_path / "a.png"], np.zeros((2, 4)))
    with pytest.raises(DataError):
        TrackSource("s", [Track("t", [tmp_path / "a.png"], np.full((1, 4), np.nan))])
    ds = PairDataset([TrackSource("s", [Track("t", [tmp_path / "missing.png"], [[1, 1, 10, 10]])])], PairConfig())
    with pytest.raises(DataError, match="missing.png"):
        ds[0]


def test_rgb_option_reverses_channels(synthetic_track):
    src = TrackSource("s", [synthetic_track], 10)
    bgr = PairDataset([src], PairConfig(pairs_per_epoch=1))[0]
    rgb = PairDataset([src], PairConfig(pairs_per_epoch=1, rgb=True))[0]
    np.testing.assert_array_equal(rgb["search"], bgr["search"][::-1])
    np.testing.assert_array_equal(rgb["box"], bgr["box"])


def test_mask_image_with_object_ids(tmp_path):
    labels = np.zeros((40, 50), np.uint8)
    labels[5:15, 10:30] = 1
    labels[20:35, 5:12] = 2
    cv2.imwrite(str(tmp_path / "m.png"), labels)
    assert load_mask(tmp_path / "m.png", 2, (40, 50)).sum() == 15 * 7
    assert load_mask(tmp_path / "m.png", None, (40, 50)).sum() == 200 + 105
    with pytest.raises(DataError):
        load_mask(tmp_path / "m.png", 1, (41, 50))


def test_got10k_layout_tracks_skip_absent_frames(tmp_path):
    seq = tmp_path / "train" / "GOT-10k_Train_000001"
    seq.mkdir(parents=True)
    (tmp_path / "train" / "list.txt").write_text("GOT-10k_Train_000001\n")
    boxes = [(20 + k, 30, 40, 30) for k in range(5)]
    for k, box in enumerate(boxes):
        cv2.imwrite(str(seq / f"{k + 1:08d}.jpg"), rect_image(box))
    (seq / "groundtruth.txt").write_text("\n".join(",".join(map(str, b)) for b in boxes) + "\n")
    (seq / "absence.label").write_text("0\n0\n1\n0\n0\n")
    tracks = tracks_from_dataset(f"got10k:{tmp_path}?split=train")
    assert len(tracks) == 1 and len(tracks[0].frames) == 5
    assert list(tracks[0].valid) == [0, 1, 3, 4]  # the absent frame is never sampled
    src = TrackSource("got", tracks, frame_range=100)
    rng = np.random.default_rng(0)
    used = {str(f["path"]) for _ in range(50) for f in src.positive(0, rng)}
    assert str(tracks[0].frames[2]) not in used


def test_noisy_frame_filter_by_hand():
    from siamkit.data.pairs import noisy_frames

    size = (640, 480)
    boxes = np.array([
        [10, 10, 100, 80],    # fine
        [10, 10, 19, 80],     # a side < 20 px
        [10, 10, 400, 100],   # w 400 = 62.5 % of the 640 px width > 50 % → drop
        [10, 10, 300, 60],    # aspect 5 > 4 → drop
        [10, 10, 300, 100],   # 46.9 % × 20.8 %, aspect 3 → fine
        [np.nan, 0, 10, 10],  # no box
    ])
    assert list(noisy_frames(boxes, size)) == [False, True, True, True, False, True]
