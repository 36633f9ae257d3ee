"""Training pairs for Siamese trackers: sampling, context crops, augmentation, negative pairs.

A pair is a template crop (``exemplar_size``², the target with context) and a search crop
(``search_size``²) from a nearby frame of the same track, at most ``frame_range`` frames apart.
Crops follow pysot's two stages: (1) a context square around the target, resized so the target
has its exemplar scale (:func:`siamkit.ops.crop.crop_numpy`, mean padding), onto a canvas just
big enough for the augmentation; (2) the published augmentation — a crop box shifted by up to
``shift`` px and stretched by ``1 ± scale`` per axis, warped to the output size (SiamRPN++'s
spatial-aware sampling is the ±64 px search shift), PCA colour noise, a random line-blur kernel,
a horizontal flip, greyscale for the whole pair. The target box is carried through every step
exactly, so it lands where the labels say.

Sources: tracks from benchmark folders (OTB layout, GOT-10k, LaSOT via
:func:`siamkit.data.benchmarks.open_dataset`), ImageNet-VID-style XML folders, COCO-style JSON
(boxes and polygon masks), mask images, and unlabelled photographs (self-supervised pairs: a
random box, the search image a randomly scaled/shifted copy of the photo).

Every random draw of item ``i`` comes from ``numpy.random.default_rng([seed, epoch, i])``, so a
pair is a function of (seed, epoch, index) whatever the number of DataLoader workers.
Images are BGR float32 0–255, channels first.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from siamkit.errors import ConfigError, DataError
from siamkit.ops.crop import crop_numpy

# pysot's PCA colour basis (rows = RGB eigenvectors × eigenvalues), a published constant
PCA_RGB = np.array(
    [
        [-0.55919361, 0.98062831, -0.41940627],
        [1.72091413, 0.19879334, -1.82968581],
        [4.64467907, 4.73710203, 4.88324118],
    ],
    dtype=np.float64,
)


@dataclass(frozen=True)
class AugmentConfig:
    """One branch's augmentation: max shift (px), max stretch, and probabilities."""

    shift: float = 0.0
    scale: float = 0.0
    blur: float = 0.0
    flip: float = 0.0
    color: float = 0.0


# Published settings (pysot / siamban configs, tracking.md §6, §8)
TEMPLATE_AUG = AugmentConfig(shift=4, scale=0.05, blur=0.0, flip=0.0, color=1.0)
SEARCH_AUG = AugmentConfig(shift=64, scale=0.18, blur=0.2, flip=0.0, color=1.0)


@dataclass(frozen=True)
class PairConfig:
    """How pairs are cut and augmented (``neg``/``gray`` are per-pair probabilities)."""

    exemplar_size: int = 127
    search_size: int = 255
    context: float = 0.5
    template: AugmentConfig = TEMPLATE_AUG
    search: AugmentConfig = SEARCH_AUG
    neg: float = 0.2
    gray: float = 0.0
    pairs_per_epoch: int = 0  # 0 → the sum of the sources' num_use
    seed: int = 0
    masks: bool = False  # also return the search-crop mask (SiamMask)
    rgb: bool = False  # channel order of the crops: BGR (pysot, default) or RGB (siamfc-pytorch)


# =========================================================================== sources


@dataclass
class Track:
    """One object through a video: per-frame image paths and 0-based (x, y, w, h) boxes.

    ``frame_ids`` are the frames' numbers (default 0…N−1) used for the maximum gap; ``masks``
    holds per frame ``None``, a mask-image path, or a list of polygons (flat x, y lists);
    ``mask_id`` selects one object in a palette/label mask image (default: any non-zero pixel).
    """

    name: str
    frames: list[Path]
    boxes: np.ndarray
    frame_ids: np.ndarray | None = None
    masks: list[Any] | None = None
    mask_id: int | None = None

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        if len(self.frames) != len(self.boxes):
            raise DataError(f"Track {self.name}: {len(self.frames)} frames but {len(self.boxes)} boxes.")
        self.frame_ids = np.arange(len(self.frames)) if self.frame_ids is None else np.asarray(self.frame_ids)
        b = self.boxes
        self.valid = np.flatnonzero(np.isfinite(b).all(1) & (b[:, 2] >= 2) & (b[:, 3] >= 2))


@dataclass
class TrackSource:
    """Tracks with one maximum frame gap and a per-epoch quota (``num_use``, −1 = one per track).

    ``filter_noisy`` drops the frames siamfc-pytorch's recipe rejects (:func:`noisy_frames`; reads
    each track's first frame for the image size).
    """

    name: str
    tracks: list[Track]
    frame_range: int = 100
    num_use: int = -1
    filter_noisy: bool = False

    def __post_init__(self) -> None:
        if self.filter_noisy:
            for t in self.tracks:
                image = read_image(t.frames[0])
                keep = ~noisy_frames(t.boxes, (image.shape[1], image.shape[0]))
                t.valid = t.valid[keep[t.valid]]
        self.tracks = [t for t in self.tracks if t.valid.size]
        if not self.tracks:
            raise DataError(f"Source {self.name} has no track with a valid box.", hint="Check its annotations.")

    def __len__(self) -> int:
        return len(self.tracks)

    def positive(self, index: int, rng: np.random.Generator) -> tuple[dict, dict]:
        """Template and search frames of one track, at most ``frame_range`` frames apart."""
        track = self.tracks[index]
        ids = track.frame_ids[track.valid]
        t = int(rng.integers(len(ids)))
        near = np.flatnonzero(np.abs(ids - ids[t]) <= self.frame_range)
        s = int(near[rng.integers(len(near))])
        return _frame(track, int(track.valid[t])), _frame(track, int(track.valid[s]))

    def random_target(self, rng: np.random.Generator, exclude: int | None = None) -> dict:
        """A random frame of a random track (another track than ``exclude`` when possible)."""
        choices = [i for i in range(len(self.tracks)) if i != exclude] or [0]
        track = self.tracks[choices[int(rng.integers(len(choices)))]]
        return _frame(track, int(track.valid[rng.integers(len(track.valid))]))


def noisy_frames(boxes: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Frames siamfc-pytorch's training filter rejects (True = drop): area < 20, a side < 20 or > 500 px,
    a side < 1 % or > 50 % of the image side, aspect ratio w/h outside [0.25, 4], or no valid box.
    (Its extra GOT-10k visibility rule, cover > 30 % of the maximum, is not applied.)"""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    size = np.asarray(image_size, dtype=np.float64)[None]
    with np.errstate(invalid="ignore"):
        wh = b[:, 2:]
        ok = np.isfinite(b).all(1)
        ok &= wh[:, 0] * wh[:, 1] >= 20
        ok &= (wh >= 20).all(1) & (wh <= 500).all(1)
        ok &= (wh / size >= 0.01).all(1) & (wh / size <= 0.5).all(1)
        aspect = wh[:, 0] / np.maximum(1, wh[:, 1])
        ok &= (aspect >= 0.25) & (aspect <= 4)
    return ~ok


def _frame(track: Track, i: int) -> dict:
    mask = track.masks[i] if track.masks is not None else None
    return {"path": track.frames[i], "box": track.boxes[i], "mask": mask, "mask_id": track.mask_id}


@dataclass
class PhotoSource:
    """Self-supervised pairs from unlabelled photographs.

    A random box (``area`` fraction of the photo, aspect ratio in ``aspect``) is the target;
    the search image is the photo warped by a random per-axis scale ``exp(±warp_scale)`` and a
    shift of up to ``warp_shift`` × the photo size, the box transformed with it.
    """

    name: str
    paths: list[Path]
    num_use: int = -1
    area: tuple[float, float] = (0.02, 0.2)
    aspect: tuple[float, float] = (0.5, 2.0)
    warp_scale: float = 0.15
    warp_shift: float = 0.1

    def __post_init__(self) -> None:
        self.paths = [Path(p) for p in self.paths]
        if not self.paths:
            raise DataError(f"Photo source {self.name} has no images.")

    def __len__(self) -> int:
        return len(self.paths)

    def random_box(self, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        w_img, h_img = size
        area = rng.uniform(*self.area) * w_img * h_img
        aspect = math.exp(rng.uniform(math.log(self.aspect[0]), math.log(self.aspect[1])))
        w = min(math.sqrt(area * aspect), w_img * 0.9)
        h = min(math.sqrt(area / aspect), h_img * 0.9)
        x = rng.uniform(0, w_img - w)
        y = rng.uniform(0, h_img - h)
        return np.array([x, y, w, h])

    def positive(self, index: int, rng: np.random.Generator) -> tuple[dict, dict]:
        image = read_image(self.paths[index])
        h_img, w_img = image.shape[:2]
        box = self.random_box((w_img, h_img), rng)
        s = np.exp(rng.uniform(-self.warp_scale, self.warp_scale, 2))
        t = rng.uniform(-self.warp_shift, self.warp_shift, 2) * (w_img, h_img)
        # scale about the photo centre, then shift: u' = s·(u − c) + c + t (pixel-index coordinates);
        # the shift is reduced where needed so the warped box stays inside the photo
        c_img = np.array([(w_img - 1) / 2, (h_img - 1) / 2])
        lo = (box[:2] - 0.5 - c_img) * s + c_img + t
        hi = lo + box[2:] * s
        limit = np.array([w_img, h_img]) - 0.5
        t += np.maximum(0, -0.5 - lo) - np.maximum(0, hi - limit)
        sx, sy = s
        m = np.array([[sx, 0, c_img[0] - sx * c_img[0] + t[0]], [0, sy, c_img[1] - sy * c_img[1] + t[1]]])
        avg = mean_colour(image)
        warped = cv2.warpAffine(
            image, m, (w_img, h_img), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=avg.tolist()
        )
        centre = box[:2] + (box[2:] - 1) / 2
        new_c = centre * (sx, sy) + m[:, 2]
        new_wh = box[2:] * (sx, sy)
        search_box = np.concatenate([new_c - (new_wh - 1) / 2, new_wh])
        return {"image": image, "box": box, "mask": None}, {"image": warped, "box": search_box, "mask": None}

    def random_target(self, rng: np.random.Generator, exclude: int | None = None) -> dict:
        choices = [i for i in range(len(self.paths)) if i != exclude] or [0]
        image = read_image(self.paths[choices[int(rng.integers(len(choices)))]])
        return {"image": image, "box": self.random_box((image.shape[1], image.shape[0]), rng), "mask": None}


@dataclass
class PasteSource(PhotoSource):
    """Synthetic pairs: an object image pasted on a background photo, moved, rescaled and stretched.

    Unlike :class:`PhotoSource`, whose box is an arbitrary region with nothing marking its edges, the
    pasted object has visible borders, so the exact box can be learnt from the pixels (box regression
    needs that). The template shows the object on one random view of a background; the search image
    shows it at another place and size (``scale_jitter``, ``aspect_jitter`` as log-ranges) on a
    shifted view of the same background, beside up to ``distractors`` other pasted objects.
    ``objects`` are the object images (default: patches of the background photos themselves).
    """

    objects: list[Path] = field(default_factory=list)
    object_area: tuple[float, float] = (0.01, 0.08)  # object area / background area in the template
    scale_jitter: float = 0.2
    aspect_jitter: float = 0.15
    distractors: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        self.objects = [Path(p) for p in self.objects]

    def _object(self, rng: np.random.Generator) -> np.ndarray:
        if self.objects:
            return read_image(self.objects[int(rng.integers(len(self.objects)))])
        photo = read_image(self.paths[int(rng.integers(len(self.paths)))])
        x, y, w, h = self.random_box((photo.shape[1], photo.shape[0]), rng).round().astype(int)
        return photo[y : y + max(h, 2), x : x + max(w, 2)]

    @staticmethod
    def _paste(canvas: np.ndarray, obj: np.ndarray, w: float, h: float, rng: np.random.Generator) -> np.ndarray:
        """Paste ``obj`` resized to about w×h at a random place; returns the exact box (x, y, w, h)."""
        h_img, w_img = canvas.shape[:2]
        wi, hi = max(2, min(int(round(w)), w_img - 2)), max(2, min(int(round(h)), h_img - 2))
        x, y = int(rng.integers(0, w_img - wi + 1)), int(rng.integers(0, h_img - hi + 1))
        canvas[y : y + hi, x : x + wi] = cv2.resize(obj, (wi, hi), interpolation=cv2.INTER_AREA)
        return np.array([x, y, wi, hi], np.float64)

    def positive(self, index: int, rng: np.random.Generator) -> tuple[dict, dict]:
        background = read_image(self.paths[index])
        h_img, w_img = background.shape[:2]
        obj = self._object(rng)
        area = rng.uniform(*self.object_area) * w_img * h_img
        aspect = obj.shape[1] / obj.shape[0]
        w, h = math.sqrt(area * aspect), math.sqrt(area / aspect)
        template = background.copy()
        z_box = self._paste(template, obj, w, h, rng)
        # a shifted view of the same background
        x_img = cv2.warpAffine(background, np.float64([[1, 0, rng.uniform(-0.1, 0.1) * w_img],
                                                      [0, 1, rng.uniform(-0.1, 0.1) * h_img]]),
                               (w_img, h_img), borderMode=cv2.BORDER_REFLECT)
        for _ in range(int(rng.integers(0, self.distractors + 1))):
            other = self._object(rng)
            s = rng.uniform(0.5, 1.5) * math.sqrt(area)
            r = other.shape[1] / other.shape[0]
            self._paste(x_img, other, s * math.sqrt(r), s / math.sqrt(r), rng)
        scale = math.exp(rng.uniform(-self.scale_jitter, self.scale_jitter))
        stretch = math.exp(rng.uniform(-self.aspect_jitter, self.aspect_jitter))
        x_box = self._paste(x_img, obj, w * scale * stretch, h * scale / stretch, rng)
        return {"image": template, "box": z_box, "mask": None}, {"image": x_img, "box": x_box, "mask": None}


Source = TrackSource | PhotoSource


# =========================================================================== readers


def read_image(path: str | Path) -> np.ndarray:
    """H×W×3 uint8 BGR image, or :class:`DataError` naming the file."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"Cannot read image {path}.", hint="Check that the file exists and is an image.")
    return image


def tracks_from_dataset(spec: str, names: Sequence[str] | None = None, exclude: Sequence[str] = ()) -> list[Track]:
    """Tracks of a benchmark opened with ``open_dataset(spec)`` (e.g. ``"otb:../shared/data/tracking"``,
    ``"got10k:ROOT?split=train"``, ``"lasot:ROOT"``); absent/NaN frames are skipped."""
    from siamkit.data.benchmarks import open_dataset

    dataset = open_dataset(spec)
    if names is not None:
        dataset = dataset.select(list(names))
    tracks = []
    for seq in dataset:
        if seq.name in exclude:
            continue
        if seq.frame_paths is None:
            raise DataError(f"Sequence {seq.name} is a video file; training pairs need image folders.")
        boxes = np.array(seq.gt, dtype=np.float64)
        if seq.absent is not None:
            boxes[np.asarray(seq.absent, bool)] = np.nan
        tracks.append(Track(seq.name, list(seq.frame_paths), boxes, masks=mask_paths(seq.frame_paths)))
    return tracks


def mask_paths(frames: Sequence[str | Path]) -> list[Path | None] | None:
    """Per-frame object masks of a ``<seq>/img/NNNN.jpg`` sequence that has ``<seq>/mask/NNNN.png`` (the DAVIS
    sequences of ``tracking_train``); frames without their mask file get ``None``, sequences without the folder
    ``None``."""
    if not frames:
        return None
    folder = Path(frames[0]).parent.parent / "mask"
    if not folder.is_dir():
        return None
    found = [folder / (Path(f).stem + ".png") for f in frames]
    return [m if m.is_file() else None for m in found]


def tracks_from_vid(root: str | Path, split: str = "train") -> list[Track]:
    """ImageNet-VID layout: ``Annotations/VID/<split>/…/<video>/NNNNNN.xml`` beside
    ``Data/VID/<split>/…/<video>/NNNNNN.JPEG``; one track per (video, ``trackid``)."""
    root = Path(root)
    ann_root = root / "Annotations" / "VID" / split
    if not ann_root.is_dir():
        raise DataError(
            f"No ImageNet-VID annotations at {ann_root}.", hint="Pass the folder holding Annotations/ and Data/."
        )
    per_track: dict[tuple[str, str], list[tuple[int, Path, list[float]]]] = {}
    for xml in sorted(ann_root.rglob("*.xml")):
        rel = xml.relative_to(ann_root)
        video = str(rel.parent)
        image = root / "Data" / "VID" / split / rel.with_suffix(".JPEG")
        try:
            tree = ET.parse(xml).getroot()
        except ET.ParseError as exc:
            raise DataError(f"Malformed annotation {xml}: {exc}.") from None
        for obj in tree.iter("object"):
            tid = obj.findtext("trackid", "0")
            bb = obj.find("bndbox")
            if bb is None:
                continue
            x1, y1, x2, y2 = (float(bb.findtext(k, "nan")) for k in ("xmin", "ymin", "xmax", "ymax"))
            per_track.setdefault((video, tid), []).append((int(xml.stem), image, [x1, y1, x2 - x1, y2 - y1]))
    tracks = []
    for (video, tid), rows in sorted(per_track.items()):
        rows.sort(key=lambda r: r[0])
        frames, boxes, ids = [r[1] for r in rows], np.array([r[2] for r in rows]), np.array([r[0] for r in rows])
        tracks.append(Track(f"{video}/{tid}", frames, boxes, ids))
    return tracks


def tracks_from_coco(annotations: str | Path, images: str | Path, min_size: float = 4.0) -> list[Track]:
    """COCO-style JSON: one single-frame track per non-crowd annotation (template and search come
    from the same image, as pysot's COCO/DET); polygon segmentations become masks."""
    annotations, images = Path(annotations), Path(images)
    try:
        data = json.loads(annotations.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"Cannot read COCO annotations {annotations}: {exc}.") from None
    files = {img["id"]: images / img["file_name"] for img in data.get("images", [])}
    tracks = []
    for ann in data.get("annotations", []):
        x, y, w, h = (float(v) for v in ann["bbox"])
        if ann.get("iscrowd", 0) or w < min_size or h < min_size or ann["image_id"] not in files:
            continue
        seg = ann.get("segmentation")
        polys = [list(map(float, p)) for p in seg] if isinstance(seg, list) and seg else None
        name = f"coco/{ann.get('id', len(tracks))}"
        tracks.append(Track(name, [files[ann["image_id"]]], [[x, y, w, h]], masks=[polys]))
    return tracks


def image_paths(folders: Sequence[str | Path], patterns: Sequence[str] = ("*.jpg", "*.jpeg", "*.png")) -> list[Path]:
    """Image files in ``folders`` (sorted), e.g. photographs for :class:`PhotoSource`."""
    out: list[Path] = []
    for folder in folders:
        for pattern in patterns:
            out += sorted(Path(folder).glob(pattern))
    return sorted(set(out))


def load_mask(spec: Any, mask_id: int | None, shape: tuple[int, int]) -> np.ndarray | None:
    """Binary float32 H×W mask from a mask-image path or a list of polygons (None → no mask)."""
    if spec is None:
        return None
    if isinstance(spec, (str, Path)):
        m = cv2.imread(str(spec), cv2.IMREAD_UNCHANGED)
        if m is None:
            raise DataError(f"Cannot read mask image {spec}.")
        if m.ndim == 3:
            m = m.max(axis=2)
        if m.shape[:2] != shape:
            raise DataError(f"Mask {spec} is {m.shape[:2]} but its frame is {shape}.")
        return ((m == mask_id) if mask_id is not None else (m > 0)).astype(np.float32)
    mask = np.zeros(shape, np.uint8)
    for poly in spec:
        pts = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    return mask.astype(np.float32)


# =========================================================================== crops + augmentation


def mean_colour(image: np.ndarray) -> np.ndarray:
    """Per-channel mean of an H×W×C image (the padding colour); cv2.mean is ~20× faster than NumPy on uint8."""
    return np.asarray(cv2.mean(image)[: image.shape[2]], dtype=np.float64)


def context_size(w: float, h: float, context: float = 0.5) -> float:
    """Side of the exemplar context square: √((w + p)(h + p)), p = context·(w + h)."""
    p = context * (w + h)
    return math.sqrt((w + p) * (h + p))


def _canvas(out: int, aug: AugmentConfig) -> int:
    """Odd canvas side that holds any shifted/stretched crop box of an ``out``-pixel crop."""
    margin = math.ceil((out - 1) * aug.scale / 2 + aug.shift) + 2 if (aug.scale or aug.shift) else 0
    side = out + 2 * margin
    return side if side % 2 else side + 1


def blur_kernel(rng: np.random.Generator) -> np.ndarray:
    """pysot's random blur: odd size 5…45, a centre column weighted wx/size plus a centre row (1−wx)/size."""
    size = int(rng.choice(np.arange(5, 46, 2)))
    kernel = np.zeros((size, size))
    c = size // 2
    wx = rng.random()
    kernel[:, c] += wx / size
    kernel[c, :] += (1 - wx) / size
    return kernel


def crop_pair_image(
    image: np.ndarray,
    box: np.ndarray,
    out: int,
    exemplar_size: int,
    context: float,
    aug: AugmentConfig,
    rng: np.random.Generator,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Crop ``out``² around ``box`` (x, y, w, h) at exemplar scale, with ``aug``.

    Returns the float32 H×W×3 crop, the target box in crop pixels as (x1, y1, x2, y2) (pixel-index
    coordinates: the centre pixel of the crop is ``out // 2``; a box covering pixels x…x+w−1 spans
    x − 0.5 … x + w − 0.5), and the cropped mask (or None).
    """
    x, y, w, h = (float(v) for v in box)
    cx, cy = x + (w - 1) / 2, y + (h - 1) / 2
    scale_z = exemplar_size / context_size(w, h, context)
    side = _canvas(out, aug)
    src = max(int(round(side / scale_z)), 1)
    avg = mean_colour(image)
    canvas = crop_numpy(image, (cx, cy), src, side, avg)
    # stage-1 map (crop_numpy: x0 = floor(c − (s+1)/2 + 0.5), half-pixel-centred resize)
    x0 = math.floor(cx - (src + 1) / 2 + 0.5)
    y0 = math.floor(cy - (src + 1) / 2 + 0.5)
    k = side / src
    ex1 = (x - 0.5 - x0 + 0.5) * k - 0.5
    ey1 = (y - 0.5 - y0 + 0.5) * k - 0.5
    bx = np.array([ex1, ey1, ex1 + w * k, ey1 + h * k])
    cmask = None
    if mask is not None:
        cmask = crop_numpy(mask[:, :, None], (cx, cy), src, side, (0.0,))[:, :, 0]
    # stage 2: shifted / stretched crop box on the canvas, warped to out×out
    c0 = (side - 1) / 2
    sx = 1 + rng.uniform(-1, 1) * aug.scale if aug.scale else 1.0
    sy = 1 + rng.uniform(-1, 1) * aug.scale if aug.scale else 1.0
    half_w, half_h = (out - 1) * sx / 2, (out - 1) * sy / 2
    dx = rng.uniform(-1, 1) * aug.shift if aug.shift else 0.0
    dy = rng.uniform(-1, 1) * aug.shift if aug.shift else 0.0
    dx = max(-(c0 - half_w), min(side - 1 - (c0 + half_w), dx))
    dy = max(-(c0 - half_h), min(side - 1 - (c0 + half_h), dy))
    x1, y1 = c0 - half_w + dx, c0 - half_h + dy
    a, b = (out - 1) / (2 * half_w), (out - 1) / (2 * half_h)
    m = np.array([[a, 0, -a * x1], [0, b, -b * y1]])
    if side != out or not np.allclose(m, [[1, 0, 0], [0, 1, 0]]):
        crop = cv2.warpAffine(
            canvas, m, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=avg.tolist()
        )
        if cmask is not None:
            cmask = cv2.warpAffine(cmask, m, (out, out), flags=cv2.INTER_LINEAR, borderValue=0.0)
    else:
        crop = canvas
    bx = np.array([a * (bx[0] - x1), b * (bx[1] - y1), a * (bx[2] - x1), b * (bx[3] - y1)])
    crop = crop.astype(np.float32, copy=False)
    if aug.color and rng.random() < aug.color:
        offset = (PCA_RGB @ rng.standard_normal(3))[::-1]  # RGB basis → BGR order
        crop = crop - offset.astype(np.float32)
    if aug.blur and rng.random() < aug.blur:
        crop = cv2.filter2D(crop, -1, blur_kernel(rng))
    if aug.flip and rng.random() < aug.flip:
        crop = np.ascontiguousarray(crop[:, ::-1])
        bx = np.array([out - 1 - bx[2], bx[1], out - 1 - bx[0], bx[3]])
        if cmask is not None:
            cmask = np.ascontiguousarray(cmask[:, ::-1])
    return crop, bx, cmask


def to_gray(image: np.ndarray) -> np.ndarray:
    """Greyscale copy with three identical channels (pysot's gray augmentation)."""
    g = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return cv2.cvtColor(g, cv2.COLOR_GRAY2BGR)


# =========================================================================== dataset


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: one OpenCV/torch thread per worker, global RNGs seeded per worker.

    Pairs do not depend on it (each item draws from its own (seed, epoch, index) generator); it
    keeps library code that uses the global RNGs reproducible and avoids thread oversubscription.
    OpenCV's thread pool does not survive ``fork``: call ``cv2.setNumThreads(1)`` in the parent
    before its first crop, or use a ``spawn`` DataLoader context, or forked workers may deadlock.
    """
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    seed = torch.initial_seed() % 2**32
    np.random.seed((seed + worker_id) % 2**32)
    import random

    random.seed(seed + worker_id)


@dataclass
class PairDataset(Dataset):
    """Torch dataset of training pairs from several sources, deterministic under ``cfg.seed``.

    ``targets`` (e.g. :class:`siamkit.losses.tracking.SiamFCTargets`) turns the search-crop box
    into label maps: ``targets(box_xyxy, neg, rng) -> dict``. Items are dicts of numpy arrays:
    ``template`` 3×E×E, ``search`` 3×X×X (BGR float32), ``box`` (x1, y1, x2, y2 in the search crop;
    for a negative pair, the unrelated object's box), ``neg`` (0/1), the targets, and with
    ``cfg.masks`` ``label_mask`` (1×X×X, ±1) and ``has_mask``. Call :meth:`set_epoch` to draw new
    pairs each epoch.
    """

    sources: list[Any]
    cfg: PairConfig = field(default_factory=PairConfig)
    targets: Callable[..., dict[str, np.ndarray]] | None = None

    def __post_init__(self) -> None:
        super().__init__()
        if not self.sources:
            raise ConfigError("PairDataset needs at least one source.")
        self.epoch = 0
        self._picks: np.ndarray | None = None

    def __len__(self) -> int:
        if self.cfg.pairs_per_epoch > 0:
            return self.cfg.pairs_per_epoch
        return sum(len(s) if s.num_use < 0 else s.num_use for s in self.sources)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self._picks = None

    def picks(self) -> np.ndarray:
        """This epoch's N×2 (source, item) table: each source's quota of shuffled items, then shuffled."""
        if self._picks is None:
            rng = np.random.default_rng([self.cfg.seed, self.epoch, 1])
            parts = []
            for si, src in enumerate(self.sources):
                n = len(src) if src.num_use < 0 else src.num_use
                reps = -(-n // len(src))  # ceil: enough shuffled passes over the source
                items = np.concatenate([rng.permutation(len(src)) for _ in range(reps)])[:n]
                parts.append(np.stack([np.full(n, si), items], axis=1))
            table = np.concatenate(parts)
            table = table[rng.permutation(len(table))]
            self._picks = table[np.arange(len(self)) % len(table)]
        return self._picks

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self.sample(index, np.random.default_rng([self.cfg.seed, self.epoch, 0, index]))

    def sample(self, index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Build pair ``index`` of this epoch with the random generator ``rng``."""
        source_index, item = (int(v) for v in self.picks()[index % len(self)])
        source = self.sources[source_index]
        cfg = self.cfg
        gray = bool(cfg.gray and rng.random() < cfg.gray)
        neg = bool(cfg.neg and rng.random() < cfg.neg)
        if neg:
            template = source.random_target(rng) if isinstance(source, PhotoSource) else _first(source, item, rng)
            other = self.sources[int(rng.integers(len(self.sources)))]
            search = other.random_target(rng, exclude=item if other is source else None)
        else:
            template, search = source.positive(item, rng)
        z_img, x_img = _image(template), _image(search)
        if gray:
            z_img, x_img = to_gray(z_img), to_gray(x_img)
        x_mask = None
        if cfg.masks and not neg:
            x_mask = load_mask(search.get("mask"), search.get("mask_id"), x_img.shape[:2])
        z, zbox, _ = crop_pair_image(z_img, template["box"], cfg.exemplar_size, cfg.exemplar_size, cfg.context,
                                  cfg.template, rng)
        x, box, mask = crop_pair_image(x_img, search["box"], cfg.search_size, cfg.exemplar_size, cfg.context,
                                       cfg.search, rng, x_mask)
        if cfg.rgb:
            z, x = z[:, :, ::-1], x[:, :, ::-1]
        item: dict[str, Any] = {
            "template": np.ascontiguousarray(z.transpose(2, 0, 1)),
            "search": np.ascontiguousarray(x.transpose(2, 0, 1)),
            "box": box.astype(np.float32),
            "template_wh": np.array([zbox[2] - zbox[0], zbox[3] - zbox[1]], np.float32),
            "neg": np.float32(neg),
        }
        if self.targets is not None:
            item.update(self.targets(box, neg, rng))
        if cfg.masks:
            has = mask is not None
            label = (mask > 0.5) if has else np.zeros((cfg.search_size, cfg.search_size), bool)
            item["label_mask"] = (label.astype(np.float32) * 2 - 1)[None]
            item["has_mask"] = np.float32(has)
            if not has and "label_mask_weight" in item:
                item["label_mask_weight"] = np.zeros_like(item["label_mask_weight"])
        return item

    def make_batch(self, indices: Sequence[int], rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """Collate pairs ``indices`` drawn with child generators of ``rng`` (for the Trainer's StepLoader)."""
        seeds = rng.integers(0, 2**63 - 1, size=len(indices))
        items = [self.sample(int(i), np.random.default_rng(int(s))) for i, s in zip(indices, seeds, strict=True)]
        return collate(items)


def _first(source: TrackSource, index: int, rng: np.random.Generator) -> dict:
    track = source.tracks[index]
    return _frame(track, int(track.valid[rng.integers(len(track.valid))]))


def _image(frame: dict) -> np.ndarray:
    return frame["image"] if "image" in frame else read_image(frame["path"])


def collate(items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack a list of pair dicts into a dict of tensors."""
    return {k: torch.from_numpy(np.stack([np.asarray(it[k]) for it in items])) for k in items[0]}
