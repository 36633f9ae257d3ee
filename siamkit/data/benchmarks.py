"""Readers for tracking benchmarks: OTB, VOT, GOT-10k, LaSOT, UAV123, NfS, TrackingNet, and
``open_dataset("kind:PATH")`` that picks the reader.

Every reader returns a lazy :class:`~siamkit.data.sequences.Dataset` of
:class:`~siamkit.data.sequences.Sequence` objects with 0-based ``(x, y, w, h)`` ground truth.
Benchmarks annotated in MATLAB's 1-based pixel convention (OTB, UAV123, LaSOT) are shifted by
−1 here and nowhere else; VOT, GOT-10k, NfS and TrackingNet files are read as they are.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import numpy as np

from siamkit.data.sequences import (
    Dataset,
    Sequence,
    image_files,
    polygon_to_box,
    read_flags,
    read_numbers,
    single_box_sequence,
)
from siamkit.errors import DataError

# OTB: frames that are scored when the image folder holds more frames than the ground truth
# (start, end), 1-based inclusive, as in the OTB toolkit's configSeqs / pytracking's otbdataset.
OTB_FRAME_RANGES = {
    "David": (300, 770),
    "Football1": (1, 74),
    "Freeman3": (1, 460),
    "Freeman4": (1, 283),
    "BlurCar1": (247, 988),
    "BlurCar3": (3, 359),
    "BlurCar4": (18, 397),
}
# OTB-100 protocol: frames skipped at the start (tracker initialised on frame 1 + skip).
OTB100_INIT_OMIT = {"Tiger1": 5}
# The 51 targets of OTB-2013 (CVPR'13 benchmark; OTB-100 adds 49 more).
OTB2013_SEQUENCES = frozenset(
    [
        "Basketball",
        "Bolt",
        "Boy",
        "Car4",
        "CarDark",
        "CarScale",
        "Coke",
        "Couple",
        "Crossing",
        "David",
        "David2",
        "David3",
        "Deer",
        "Dog1",
        "Doll",
        "Dudek",
        "FaceOcc1",
        "FaceOcc2",
        "Fish",
        "FleetFace",
        "Football",
        "Football1",
        "Freeman1",
        "Freeman3",
        "Freeman4",
        "Girl",
        "Ironman",
        "Jogging-1",
        "Jogging-2",
        "Jumping",
        "Lemming",
        "Liquor",
        "Matrix",
        "Mhyang",
        "MotorRolling",
        "MountainBike",
        "Shaking",
        "Singer1",
        "Singer2",
        "Skating1",
        "Skiing",
        "Soccer",
        "Subway",
        "Suv",
        "Sylvester",
        "Tiger1",
        "Tiger2",
        "Trellis",
        "Walking",
        "Walking2",
        "Woman",
    ]
)
OTB_ATTRIBUTES = ("IV", "SV", "OCC", "DEF", "MB", "FM", "IPR", "OPR", "OV", "BC", "LR")
VOT_TAGS = ("camera_motion", "illum_change", "motion_change", "size_change", "occlusion")


def _root(path: str | Path, what: str) -> Path:
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"{what} root {root} does not exist or is not a folder.", hint="Check the path after KIND:.")
    return root


def _bool(value: Any) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


# --------------------------------------------------------------------------- OTB
def _manifest_attributes(root: Path) -> dict[str, tuple[str, ...]]:
    """Attributes from a ``MANIFEST.tsv`` (shared clips) — OTB codes when present, else phrases."""
    path = root / "MANIFEST.tsv"
    if not path.is_file():
        return {}
    out: dict[str, tuple[str, ...]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            text = (row.get("attributes") or "").strip()
            name = (row.get("name") or "").strip()
            if not name:
                continue
            codes = [t for t in re.findall(r"[A-Z]{2,3}", text.split("(")[0]) if t in OTB_ATTRIBUTES]
            out[name] = tuple(codes) if codes else tuple(p.strip() for p in text.split(",") if p.strip())
    return out


def _otb_gt_files(folder: Path) -> list[tuple[str, Path]]:
    """(sequence name, GT file) pairs: ``groundtruth_rect.txt`` or the two-target ``.1``/``.2`` files."""
    single = folder / "groundtruth_rect.txt"
    numbered = sorted(folder.glob("groundtruth_rect.*.txt"))
    if numbered:
        return [(f"{folder.name}-{p.name.split('.')[1]}", p) for p in numbered]
    if single.is_file():
        return [(folder.name, single)]
    return []


def read_otb(root: str | Path, protocol: str = "otb") -> Dataset:
    """OTB layout ``<Seq>/img/0001.jpg`` + ``groundtruth_rect[.N].txt`` (1-based x,y,w,h).

    ``protocol="otb"`` reads every folder as it is. ``"otb100"`` / ``"otb2013"`` also apply the
    official frame ranges (David 300–770, BlurCar1 247–988, …) when the folder holds those
    frames; ``"otb100"`` starts Tiger1 on its 6th frame (pytracking's ``initOmit: 5``) and
    ``"otb2013"`` keeps only the 51 OTB-2013 targets.
    Two-target folders (Jogging, Skating2, Human4) give ``Jogging-1``, ``Jogging-2``.
    """
    root = _root(root, "OTB")
    if protocol not in ("otb", "otb100", "otb2013"):
        raise DataError(f"Unknown OTB protocol {protocol!r}.", hint="Use otb, otb100 or otb2013.")
    attributes = _manifest_attributes(root)
    entries: dict[str, tuple[Path, Path]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and (p / "img").is_dir()):
        for name, gt_file in _otb_gt_files(folder):
            entries[name] = (folder, gt_file)
    if protocol == "otb2013":
        entries = {k: v for k, v in entries.items() if k in OTB2013_SEQUENCES}
    if not entries:
        raise DataError(
            f"No {'OTB-2013 ' if protocol == 'otb2013' else 'OTB '}sequences under {root}.",
            hint="Expected <Seq>/img/0001.jpg and <Seq>/groundtruth_rect.txt for each sequence.",
        )

    def load(name: str) -> Sequence:
        folder, gt_file = entries[name]
        gt = read_numbers(gt_file, widths=(4,))
        gt[:, :2] -= 1.0
        gt[(gt[:, 2] <= 0) | (gt[:, 3] <= 0)] = np.nan
        files = image_files(folder / "img")
        by_number = {int(re.findall(r"\d+", p.stem)[-1]): p for p in files if re.findall(r"\d+", p.stem)}
        meta: dict[str, Any] = {"gt_file": str(gt_file), "one_based": True}
        frames = None
        span = OTB_FRAME_RANGES.get(folder.name) if protocol != "otb" or len(gt) != len(files) else None
        if span is not None:
            start, end = span
            wanted = [by_number.get(n) for n in range(start, end + 1)]
            if len(gt) == end - start + 1 and all(p is not None for p in wanted):
                frames, meta["frame_range"] = wanted, span
        if frames is None:
            if len(gt) > len(files):
                raise DataError(
                    f"{gt_file} has {len(gt)} boxes but {folder / 'img'} only {len(files)} frames.",
                    hint="The sequence is incomplete; re-extract it.",
                )
            frames = files[: len(gt)]
            if len(files) > len(gt):
                meta["dropped_frames"] = len(files) - len(gt)
        init = OTB100_INIT_OMIT.get(folder.name, 0) if protocol == "otb100" else 0
        attrs = attributes.get(name) or attributes.get(folder.name) or _attrs_file(folder)
        return Sequence(name, gt, frame_paths=frames, attributes=attrs, init_frame=init, meta=meta)

    return Dataset(protocol.upper(), list(entries), load, root)


def _attrs_file(folder: Path) -> tuple[str, ...]:
    path = folder / "attrs.txt"
    if not path.is_file():
        return ()
    return tuple(t for t in re.split(r"[,\s]+", path.read_text().strip()) if t)


# --------------------------------------------------------------------------- VOT
def read_vot(root: str | Path, init: str = "minmax") -> Dataset:
    """VOT2013–2019 layout: ``list.txt``, ``<seq>/groundtruth.txt`` (polygons or rectangles), frames in
    ``<seq>/color/`` (or ``<seq>/`` itself), per-frame ``*.tag`` files. Polygons are kept in
    ``Sequence.polygons`` and turned into boxes by ``init`` (``minmax`` or pysot's ``area``).
    VOT-LT ground truth with NaN lines is read as absent frames.
    """
    root = _root(root, "VOT")
    list_file = root / "list.txt"
    if list_file.is_file():
        names = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
    else:
        names = sorted(p.name for p in root.iterdir() if (p / "groundtruth.txt").is_file())
    if not names:
        raise DataError(f"No VOT sequences under {root}.", hint="Expected list.txt and <seq>/groundtruth.txt.")

    def load(name: str) -> Sequence:
        folder = root / name
        gt_file = folder / "groundtruth.txt"
        if gt_file.is_file() and gt_file.read_text()[:1] == "m":
            raise DataError(
                f"{gt_file} holds VOT2020+ segmentation masks, which this reader does not support.",
                hint="Use a VOT2016–2019 (polygon or rectangle) dataset.",
            )
        raw = read_numbers(gt_file, widths=(4, 6, 8))
        if raw.shape[1] == 4:
            boxes, polygons = raw.copy(), None
        else:
            polygons = raw
            boxes = polygon_to_box(raw, init)
        frame_dir = folder / "color" if (folder / "color").is_dir() else folder
        frames = image_files(frame_dir)
        if len(frames) < len(boxes):
            raise DataError(f"{gt_file} has {len(boxes)} lines but {frame_dir} only {len(frames)} frames.")
        tags = {}
        for tag_file in sorted(folder.glob("*.tag")) + sorted(folder.glob("*.label")):
            flags = read_flags(tag_file)
            if flags.size < len(boxes):  # VOT tag files may stop at the last tagged frame
                flags = np.concatenate([flags, np.zeros(len(boxes) - flags.size, dtype=np.int64)])
            tags[tag_file.stem] = flags[: len(boxes)]
        attrs = tuple(k for k in tags if tags[k].any())
        absent = ~np.isfinite(boxes).all(1)
        return Sequence(
            name,
            boxes,
            frame_paths=frames[: len(boxes)],
            attributes=attrs,
            absent=absent if absent.any() else None,
            polygons=polygons,
            tags=tags,
            meta={"gt_file": str(gt_file)},
        )

    return Dataset("VOT", names, load, root)


# --------------------------------------------------------------------------- GOT-10k
def _ini(path: Path) -> dict[str, str]:
    out = {}
    if path.is_file():
        for line in path.read_text(errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() and not key.startswith("["):
                out[key.strip()] = value.strip()
    return out


def read_got10k(root: str | Path, split: str = "val") -> Dataset:
    """GOT-10k ``<root>/<split>/list.txt`` + ``<seq>/00000001.jpg``, ``groundtruth.txt`` (x,y,w,h),
    ``absence.label`` and ``cover.label`` (0 = fully occluded … 8 = fully visible). Test
    sequences annotate only the first frame (the rest are NaN). Boxes are read as they are.
    """
    root = _root(root, "GOT-10k")
    base = root / split if (root / split).is_dir() else root
    list_file = base / "list.txt"
    if list_file.is_file():
        names = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
    else:
        names = sorted(p.name for p in base.iterdir() if (p / "groundtruth.txt").is_file())
    if not names:
        raise DataError(
            f"No GOT-10k sequences under {base}.", hint="Expected <split>/list.txt and <seq>/groundtruth.txt."
        )

    def load(name: str) -> Sequence:
        folder = base / name
        frames = image_files(folder)
        boxes = read_numbers(folder / "groundtruth.txt", widths=(4,))
        if len(boxes) == 1 and len(frames) > 1:
            boxes = np.vstack([boxes, np.full((len(frames) - 1, 4), np.nan)])
        if len(frames) < len(boxes):
            raise DataError(f"{folder}: {len(boxes)} boxes but {len(frames)} frames.")
        n = len(boxes)
        absent = read_flags(folder / "absence.label", n).astype(bool) if (folder / "absence.label").is_file() else None
        cover = read_flags(folder / "cover.label", n) if (folder / "cover.label").is_file() else None
        meta = _ini(folder / "meta_info.ini")
        attrs = tuple(meta[k] for k in ("object_class", "motion_class") if meta.get(k))
        return Sequence(name, boxes, frame_paths=frames[:n], attributes=attrs, absent=absent, cover=cover, meta=meta)

    return Dataset(f"GOT-10k-{split}", names, load, root)


# --------------------------------------------------------------------------- LaSOT
def read_lasot(root: str | Path, split: str = "all") -> Dataset:
    """LaSOT ``<class>/<class>-<n>/img/00000001.jpg`` + ``groundtruth.txt`` (1-based x,y,w,h),
    ``full_occlusion.txt`` and ``out_of_view.txt`` (one comma-separated line of 0/1); a frame is
    absent when either flag is set. ``split="test"`` keeps the names in ``testing_set.txt``.
    A flat ``<class>-<n>/`` layout (test-only downloads) also works.
    """
    root = _root(root, "LaSOT")
    folders: dict[str, Path] = {}
    for gt in sorted(root.glob("*/groundtruth.txt")) + sorted(root.glob("*/*/groundtruth.txt")):
        folders.setdefault(gt.parent.name, gt.parent)
    if split == "test":
        listing = root / "testing_set.txt"
        if not listing.is_file():
            raise DataError(f"{listing} not found.", hint="It lists the 280 test sequences; use split=all without it.")
        wanted = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        folders = {n: folders[n] for n in wanted if n in folders}
    if not folders:
        raise DataError(f"No LaSOT sequences under {root}.", hint="Expected <class>/<class>-<n>/groundtruth.txt.")

    def load(name: str) -> Sequence:
        folder = folders[name]
        gt = read_numbers(folder / "groundtruth.txt", widths=(4,))
        gt[:, :2] -= 1.0
        gt[(gt[:, 2] <= 0) | (gt[:, 3] <= 0)] = np.nan
        n = len(gt)
        absent = np.zeros(n, dtype=bool)
        for flag_name in ("full_occlusion.txt", "out_of_view.txt"):
            if (folder / flag_name).is_file():
                absent |= read_flags(folder / flag_name, n).astype(bool)
        frames = image_files(folder / "img")[:n]
        return Sequence(
            name, gt, frame_paths=frames, attributes=(name.rsplit("-", 1)[0],), absent=absent, meta={"one_based": True}
        )

    return Dataset(f"LaSOT-{split}", sorted(folders), load, root)


# --------------------------------------------------------------------------- UAV123
def _uav_ranges(root: Path) -> dict[str, tuple[str, int, int]]:
    """Sub-sequence (folder, start, end) from the official ``configSeqs*.m`` if one is under root."""
    pattern = re.compile(
        r"'name'\s*,\s*'([^']+)'\s*,\s*'path'\s*,\s*'([^']*)'\s*,\s*'startFrame'\s*,\s*(\d+)\s*,\s*'endFrame'\s*,\s*(\d+)"
    )
    ranges: dict[str, tuple[str, int, int]] = {}
    for config in sorted(root.rglob("configSeqs*.m")):
        for name, path, start, end in pattern.findall(config.read_text(errors="replace")):
            folder = [p for p in re.split(r"[\\/]", path) if p][-1] if path else name
            ranges[name] = (folder, int(start), int(end))
    return ranges


def read_uav(root: str | Path, variant: str = "UAV123") -> Dataset:
    """UAV123 / UAV20L / UAV123_10fps: ``anno/<variant>/<name>.txt`` (1-based, NaN rows) and frames in
    ``data_seq/<variant>/<folder>/000001.jpg``. Sub-sequences (``bird1_2`` …) need their frame
    range from the official ``configSeqs*.m`` (searched under root); whole sequences do not.
    """
    root = _root(root, variant)
    anno_dir = root / "anno" / variant
    if not anno_dir.is_dir():
        raise DataError(f"{anno_dir} not found.", hint=f"Expected {variant} layout anno/{variant}/*.txt + data_seq/.")
    names = sorted(p.stem for p in anno_dir.glob("*.txt"))
    ranges = _uav_ranges(root)

    def load(name: str) -> Sequence:
        gt = read_numbers(anno_dir / f"{name}.txt", widths=(4,))
        gt[:, :2] -= 1.0
        if name in ranges:
            folder_name, start, end = ranges[name]
        else:
            folder_name, start, end = name, 1, len(gt)
        folder = root / "data_seq" / variant / folder_name
        if not folder.is_dir() and re.search(r"_\d+$", name):
            folder = root / "data_seq" / variant / re.sub(r"_\d+$", "", name)
        files = image_files(folder)
        by_number = {int(re.findall(r"\d+", p.stem)[-1]): p for p in files}
        frames = [by_number.get(k) for k in range(start, end + 1)]
        if name not in ranges and len(files) != len(gt):
            raise DataError(
                f"{name}: {len(gt)} boxes but {len(files)} frames in {folder}, and no frame range is known.",
                hint="Put the official configSeqs*.m (it lists each sub-sequence's start/end frame) under the root.",
            )
        if len(frames) != len(gt) or any(p is None for p in frames):
            raise DataError(f"{name}: frames {start}–{end} of {folder} do not match {len(gt)} boxes.")
        return Sequence(name, gt, frame_paths=frames, meta={"frame_range": (start, end), "one_based": True})

    return Dataset(variant, names, load, root)


# --------------------------------------------------------------------------- NfS
def read_nfs(root: str | Path, fps: int = 30) -> Dataset:
    """Need for Speed: ``<seq>/<fps>/<seq>/00001.jpg`` and ``<seq>/<fps>/<seq>.txt`` (VATIC rows
    ``id xmin ymin xmax ymax frame lost occluded generated "label"``). Lost rows are NaN and
    marked absent, occluded rows set ``cover = 0``. 30-fps folders reuse the 240-fps
    annotation; rows are then taken every ``round(annotations / frames)`` (approximate).
    """
    root = _root(root, "NfS")
    names = sorted(p.name for p in root.iterdir() if (p / str(fps)).is_dir())
    if not names:
        raise DataError(f"No NfS sequences with {fps} fps under {root}.", hint="Expected <seq>/<fps>/<seq>/*.jpg.")

    def load(name: str) -> Sequence:
        base = root / name / str(fps)
        anno = base / f"{name}.txt"
        rows = []
        for number, line in enumerate(anno.read_text().splitlines(), start=1):
            tokens = line.split()
            if not tokens:
                continue
            try:
                rows.append([float(t) for t in tokens[1:9]])
            except ValueError:
                raise DataError(f"{anno}, line {number}: expected VATIC numeric columns, got {line!r}.") from None
            if len(rows[-1]) != 8:
                raise DataError(f"{anno}, line {number}: expected at least 9 columns.")
        table = np.asarray(rows, dtype=np.float64)
        frames = image_files(base / name)
        step = max(1, int(round(len(table) / max(len(frames), 1))))
        table = table[::step][: len(frames)]
        gt = np.stack([table[:, 0], table[:, 1], table[:, 2] - table[:, 0], table[:, 3] - table[:, 1]], 1)
        lost = table[:, 5] > 0
        gt[lost] = np.nan
        cover = np.where(table[:, 6] > 0, 0, 8).astype(np.int64)
        return Sequence(name, gt, frame_paths=frames[: len(gt)], absent=lost, cover=cover, meta={"anno_step": step})

    return Dataset(f"NfS{fps}", names, load, root)


# --------------------------------------------------------------------------- TrackingNet
def read_trackingnet(root: str | Path, split: str = "TEST") -> Dataset:
    """TrackingNet ``<split>/frames/<seq>/0.jpg…`` + ``<split>/anno/<seq>.txt`` (x,y,w,h). The TEST
    split annotates only frame 0; the rest are NaN (results go to the evaluation server)."""
    root = _root(root, "TrackingNet")
    base = root / split
    anno_dir, frame_dir = base / "anno", base / "frames"
    if not anno_dir.is_dir() or not frame_dir.is_dir():
        raise DataError(f"{base} lacks anno/ or frames/.", hint="Expected <split>/anno/<seq>.txt and <split>/frames/.")
    names = sorted(p.stem for p in anno_dir.glob("*.txt"))

    def load(name: str) -> Sequence:
        frames = image_files(frame_dir / name)
        gt = read_numbers(anno_dir / f"{name}.txt", widths=(4,))
        if len(gt) < len(frames):
            gt = np.vstack([gt, np.full((len(frames) - len(gt), 4), np.nan)])
        return Sequence(name, gt[: len(frames)], frame_paths=frames)

    return Dataset(f"TrackingNet-{split}", names, load, root)


# --------------------------------------------------------------------------- dispatch
def _single(path: str, box: str | None = None, name: str | None = None, **_: Any) -> Dataset:
    if not box:
        raise DataError(f"{path}: a plain video or image folder needs an initial box.", hint="Add ?box=x,y,w,h.")
    values = [float(v) for v in re.split(r"[,\s]+", str(box).strip()) if v]
    seq = single_box_sequence(path, values, name=name)
    return Dataset("video", [seq.name], lambda _n: seq, Path(path))


def open_kind(kind: str, path: str, **options: Any) -> Dataset:
    """Dispatch a parsed dataset spec to its reader (see :func:`open_dataset`)."""
    if kind in ("otb", "otb100", "otb2013"):
        return read_otb(path, protocol=kind)
    if kind == "vot":
        return read_vot(path, init=options.get("init", "minmax"))
    if kind in ("got10k", "got-10k"):
        return read_got10k(path, split=options.get("split", "val"))
    if kind == "lasot":
        return read_lasot(path, split=options.get("split", "all"))
    if kind in ("uav123", "uav20l", "uav123_10fps"):
        return read_uav(path, variant={"uav123": "UAV123", "uav20l": "UAV20L", "uav123_10fps": "UAV123_10fps"}[kind])
    if kind == "nfs":
        return read_nfs(path, fps=int(options.get("fps", 30)))
    if kind == "trackingnet":
        return read_trackingnet(path, split=options.get("split", "TEST"))
    if kind in ("video", "folder"):
        return _single(path, **options)
    raise DataError(
        f"Unknown dataset kind {kind!r}.",
        hint="Use otb, otb100, otb2013, vot, got10k, lasot, uav123, uav20l, uav123_10fps, nfs, trackingnet, "
        "video or folder.",
    )


def parse_spec(spec: str) -> tuple[str, str, dict[str, str]]:
    """Split ``"kind:PATH?key=value&…"`` into (kind, path, options)."""
    if ":" not in spec:
        raise DataError(
            f"Dataset spec {spec!r} has no kind.",
            hint="Write KIND:PATH, e.g. otb:../shared/data/tracking, got10k:ROOT?split=val, video:a.mp4?box=x,y,w,h.",
        )
    kind, rest = spec.split(":", 1)
    options: dict[str, str] = {}
    if "?" in rest:
        rest, query = rest.split("?", 1)
        for item in query.split("&"):
            if item:
                key, _, value = item.partition("=")
                options[key] = value
    return kind.lower(), rest, options


def open_dataset(spec: str, **options: Any) -> Dataset:
    """Open a benchmark from a spec string, e.g. ``open_dataset("otb:../shared/data/tracking")``.

    Kinds: ``otb`` (plain OTB layout, no protocol quirks), ``otb100``/``otb2013`` (official
    frame ranges and Tiger1's init skip), ``vot``, ``got10k`` (``?split=train|val|test``),
    ``lasot``, ``uav123``/``uav20l``/``uav123_10fps``, ``nfs`` (``?fps=30|240``),
    ``trackingnet`` (``?split=TEST``), ``video``/``folder`` (``?box=x,y,w,h``).
    """
    kind, path, spec_options = parse_spec(spec)
    merged = {**spec_options, **options}
    return open_kind(kind, path, **merged)
