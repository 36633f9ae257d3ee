"""Identity datasets: images grouped by who (or what) they show.

Every reader returns an :class:`IdentityDataset`, a flat list of :class:`IdentityItem` (where
the image is, its contiguous class ``label``, the original identity name, and optional camera
or genuine/forgery tags). Images are decoded on demand as ``uint8`` arrays: H×W for greyscale
sources, H×W×3 BGR otherwise. Readers check the layout first and raise
:class:`~siamkit.errors.DataError` naming the path and the layout they expected.

Supported layouts
- Omniglot: ``images_background.zip`` / ``images_evaluation.zip`` read in place with
  :mod:`zipfile`, and Lake's 20-way one-shot runs ``all_runs.zip``.
- ORL / AT&T faces: ``sN/K.pgm``.
- BHSig260-style signatures: ``<Language>/<writer>/*-G-*.tif`` (genuine), ``*-F-*.tif`` (forged).
- Market-1501: ``bounding_box_train | query | bounding_box_test / PID_cCsS_FRAME_BOX.jpg``;
  junk (pid −1) dropped, distractors (pid 0) kept, cameras 0-based.
- A generic image folder per identity: ``root/<identity>/*.png|jpg|…``; :func:`pair_folder` also
  finds nested identity folders and skilled forgeries (``<id>_forg/`` or ``*-F-*`` files).
- Omniglot or Lake's runs from a zip *or* an unpacked folder: :func:`omniglot_images`,
  :func:`omniglot_runs`, told apart by :func:`omniglot_layout`.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from siamkit.errors import DataError
from siamkit.video import IMAGE_SUFFIXES

ZIP_SEP = "::"


@dataclass(frozen=True)
class IdentityItem:
    """One image: ``source`` is a file path or ``archive.zip::member``."""

    source: str
    label: int
    identity: str
    camera: int = -1
    genuine: bool = True
    group: str = ""


def _decode(data: bytes, grayscale: bool, where: str) -> np.ndarray:
    import cv2

    flag = cv2.IMREAD_GRAYSCALE if grayscale else cv2.IMREAD_COLOR
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if image is None:
        raise DataError(f"Cannot decode image {where}.", hint="The file is corrupt or not an image.")
    return image


class IdentityDataset:
    """A list of labelled images, decoded lazily; usable as a ``torch`` map-style dataset.

    ``transform`` (optional) maps the decoded ``uint8`` image to whatever the model needs;
    ``dataset[i]`` returns ``(transform(image), label)``.
    """

    def __init__(self, items: Sequence[IdentityItem], grayscale: bool, name: str = "", transform: Any = None):
        if not items:
            raise DataError(f"Dataset {name!r} has no images.")
        self.items = list(items)
        self.grayscale = grayscale
        self.name = name
        self.transform = transform
        self._zips: dict[str, zipfile.ZipFile] = {}

    # zip handles are per process: drop them when pickled into DataLoader workers
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_zips"] = {}
        return state

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labels(self) -> np.ndarray:
        return np.array([it.label for it in self.items], dtype=np.int64)

    @property
    def cameras(self) -> np.ndarray:
        return np.array([it.camera for it in self.items], dtype=np.int64)

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1

    def identities(self) -> list[str]:
        """Identity names in label order."""
        names: dict[int, str] = {}
        for it in self.items:
            names.setdefault(it.label, it.identity)
        return [names[k] for k in sorted(names)]

    def read_bytes(self, source: str) -> bytes:
        if ZIP_SEP in source:
            archive, member = source.split(ZIP_SEP, 1)
            handle = self._zips.get(archive)
            if handle is None:
                handle = self._zips[archive] = zipfile.ZipFile(archive)
            return handle.read(member)
        try:
            return Path(source).read_bytes()
        except OSError as exc:
            raise DataError(f"Cannot read image {source}: {exc.strerror}.") from None

    def read(self, index: int) -> np.ndarray:
        """Decode image ``index`` as uint8 (H×W if greyscale, else H×W×3 BGR)."""
        source = self.items[index].source
        return _decode(self.read_bytes(source), self.grayscale, source)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = self.read(index)
        if self.transform is not None:
            image = self.transform(image)
        return image, self.items[index].label

    def with_transform(self, transform: Any) -> IdentityDataset:
        return IdentityDataset(self.items, self.grayscale, self.name, transform)

    def subset(self, indices: Sequence[int], relabel: bool = True) -> IdentityDataset:
        """Items at ``indices``; ``relabel`` renumbers labels 0..C−1 in order of first appearance."""
        items = [self.items[int(i)] for i in indices]
        if relabel:
            items = _relabel(items)
        return IdentityDataset(items, self.grayscale, self.name, self.transform)

    def split_identities(self, names: Sequence[str], relabel: bool = True) -> IdentityDataset:
        """Only the images of the named identities (disjoint-identity train/test splits)."""
        wanted = set(names)
        missing = wanted - {it.identity for it in self.items}
        if missing:
            raise DataError(f"Identities not in dataset {self.name!r}: {sorted(missing)[:5]}.")
        return self.subset([i for i, it in enumerate(self.items) if it.identity in wanted], relabel)


def _relabel(items: Sequence[IdentityItem]) -> list[IdentityItem]:
    mapping: dict[str, int] = {}
    out = []
    for it in items:
        label = mapping.setdefault(it.identity, len(mapping))
        out.append(replace(it, label=label))
    return out


def _require_dir(path: Path, layout: str) -> Path:
    if not path.is_dir():
        raise DataError(f"Dataset folder not found: {path}.", hint=f"Expected layout: {layout}.")
    return path


def _natural_key(text: str) -> tuple[Any, ...]:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text))


# --------------------------------------------------------------------------- generic image folders

FOLDER_LAYOUT = "root/<identity>/<image>.png|jpg|pgm|tif (one folder per identity)"


def image_folder(root: str | Path, grayscale: bool = False, min_images: int = 1) -> IdentityDataset:
    """One sub-folder per identity; identities with fewer than ``min_images`` images are skipped."""
    root = _require_dir(Path(root), FOLDER_LAYOUT)
    items: list[IdentityItem] = []
    for folder in sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: _natural_key(p.name)):
        files = sorted(
            (f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: _natural_key(p.name)
        )
        if len(files) < min_images:
            continue
        label = len({it.identity for it in items})
        items += [IdentityItem(str(f), label, folder.name) for f in files]
    if not items:
        raise DataError(f"No identity folders with images under {root}.", hint=f"Expected layout: {FOLDER_LAYOUT}.")
    return IdentityDataset(items, grayscale, name=root.name)


PAIRS_LAYOUT = ("root/<identity>/<image> (one folder per identity, nested allowed: root/<group>/<identity>/); "
                "skilled forgeries of <identity> in <identity>_forg/ or named *-F-*")
_FORGED_FILE = re.compile(r".*-F-\d+\.[A-Za-z]+$")


def _listing(root: Path, limit: int = 8) -> str:
    """A short description of what a folder holds, for layout errors."""
    if not root.exists():
        return "nothing (the path does not exist)"
    if root.is_file():
        return f"a file ({root.suffix or 'no suffix'})"
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
    if not entries:
        return "an empty folder"
    return ", ".join(entries[:limit]) + (f", … ({len(entries)} entries)" if len(entries) > limit else "")


def pair_folder(root: str | Path, grayscale: bool = False) -> IdentityDataset:
    """Identity folders for verification pairs: every folder holding images is one identity.

    The identity name is the folder's path under ``root`` (``Bengali/001``). Images in
    ``<identity>_forg/`` or named ``*-F-*`` are skilled forgeries of ``<identity>``
    (``genuine=False``); everything else is genuine.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"Expected a folder of identity folders at {root}; found {_listing(root)}.",
                        hint=f"Expected layout: {PAIRS_LAYOUT}.")
    folders = sorted((d for d in [root, *root.rglob("*")] if d.is_dir()), key=lambda p: _natural_key(str(p)))
    groups: dict[str, list[tuple[Path, bool]]] = {}
    for folder in folders:
        files = sorted((f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES),
                       key=lambda f: _natural_key(f.name))
        if not files or folder == root:
            continue
        name = folder.relative_to(root).as_posix()
        forged_folder = name.endswith("_forg")
        identity = name[: -len("_forg")] if forged_folder else name
        groups.setdefault(identity, []).extend((f, not (forged_folder or _FORGED_FILE.match(f.name))) for f in files)
    items: list[IdentityItem] = []
    for identity in sorted(groups, key=_natural_key):
        files = groups[identity]
        if not any(g for _, g in files):
            raise DataError(f"Identity {identity!r} under {root} has forgeries but no genuine image.",
                            hint=f"Expected layout: {PAIRS_LAYOUT}.")
        label = len({it.identity for it in items})
        items += [IdentityItem(str(f), label, identity, genuine=g, group=identity.split("/")[0]) for f, g in files]
    if len({it.identity for it in items}) < 2:
        raise DataError(f"Verification pairs need at least two identity folders with images under {root}; "
                        f"found {_listing(root)}.", hint=f"Expected layout: {PAIRS_LAYOUT}.")
    return IdentityDataset(items, grayscale, name=root.name)


# --------------------------------------------------------------------------- ORL / AT&T faces

ORL_LAYOUT = "root/s1 … s40/1.pgm … 10.pgm (AT&T/ORL faces, 92×112 greyscale)"


def orl_faces(root: str | Path) -> IdentityDataset:
    """AT&T/ORL faces: subject ``sN`` → identity ``sN``, label in numeric subject order."""
    root = _require_dir(Path(root), ORL_LAYOUT)
    subjects = sorted(
        (p for p in root.iterdir() if p.is_dir() and re.fullmatch(r"s\d+", p.name)), key=lambda p: int(p.name[1:])
    )
    if not subjects:
        raise DataError(f"No subject folders sN under {root}.", hint=f"Expected layout: {ORL_LAYOUT}.")
    items = []
    for label, folder in enumerate(subjects):
        files = sorted(folder.glob("*.pgm"), key=lambda p: _natural_key(p.stem))
        if not files:
            raise DataError(f"Subject folder {folder} holds no .pgm images.", hint=f"Expected layout: {ORL_LAYOUT}.")
        items += [IdentityItem(str(f), label, folder.name) for f in files]
    return IdentityDataset(items, grayscale=True, name="orl_faces")


# --------------------------------------------------------------------------- signatures

SIGNATURE_LAYOUT = "root/<Language>/<writer>/*-G-*.tif (genuine) and *-F-*.tif (skilled forgeries) (BHSig260)"
_SIG_NAME = re.compile(r".*-(G|F)-\d+\.(tif|tiff|png|jpg)$", re.IGNORECASE)


def signatures(root: str | Path) -> IdentityDataset:
    """BHSig260-style signatures. Label = writer; ``genuine`` is False for skilled forgeries of that writer."""
    root = _require_dir(Path(root), SIGNATURE_LAYOUT)
    items: list[IdentityItem] = []
    writers = sorted(p for p in root.glob("*/*") if p.is_dir())
    for folder in writers:
        identity = f"{folder.parent.name}/{folder.name}"
        files = sorted(f for f in folder.iterdir() if _SIG_NAME.match(f.name))
        if not files:
            continue
        label = len({it.identity for it in items})
        for f in files:
            kind = _SIG_NAME.match(f.name).group(1).upper()
            items.append(IdentityItem(str(f), label, identity, genuine=kind == "G", group=folder.parent.name))
    if not items:
        raise DataError(f"No signature images under {root}.", hint=f"Expected layout: {SIGNATURE_LAYOUT}.")
    for identity in {it.identity for it in items}:
        if not any(it.genuine for it in items if it.identity == identity):
            raise DataError(f"Writer {identity} under {root} has no genuine (-G-) signature.")
    return IdentityDataset(items, grayscale=True, name="signatures")


# --------------------------------------------------------------------------- Market-1501

MARKET_LAYOUT = "root/{bounding_box_train,query,bounding_box_test}/PPPP_cCsS_FFFFFF_BB.jpg (Market-1501)"
MARKET_SPLITS = ("bounding_box_train", "query", "bounding_box_test")
_MARKET_NAME = re.compile(r"^(-?\d+)_c(\d)s(\d+)_\d+_\d+\.jpg$")


def parse_market_name(name: str) -> tuple[int, int]:
    """``0002_c1s1_000451_03.jpg`` → (pid 2, camera 0). Raises DataError for other names."""
    match = _MARKET_NAME.match(name)
    if match is None:
        raise DataError(f"{name!r} is not a Market-1501 file name.", hint="Expected PPPP_cCsS_FFFFFF_BB.jpg.")
    return int(match.group(1)), int(match.group(2)) - 1


def market1501(root: str | Path, split: str = "bounding_box_train") -> IdentityDataset:
    """One Market-1501 split. Junk images (pid −1) are dropped, distractors (pid 0) kept.

    ``identity`` is the pid as text (``"0"`` for distractors), ``camera`` 0-based; labels are
    contiguous in sorted pid order (use them for training, the pids for evaluation).
    """
    if split not in MARKET_SPLITS:
        raise DataError(f"Unknown Market-1501 split {split!r}.", hint=f"Use one of {', '.join(MARKET_SPLITS)}.")
    folder = _require_dir(Path(root) / split, MARKET_LAYOUT)
    parsed = []
    for f in sorted(folder.glob("*.jpg")):
        pid, cam = parse_market_name(f.name)
        if pid == -1:
            continue
        parsed.append((f, pid, cam))
    if not parsed:
        raise DataError(f"No Market-1501 images in {folder}.", hint=f"Expected layout: {MARKET_LAYOUT}.")
    pids = sorted({pid for _, pid, _ in parsed})
    index = {pid: i for i, pid in enumerate(pids)}
    items = [IdentityItem(str(f), index[pid], str(pid), camera=cam) for f, pid, cam in parsed]
    return IdentityDataset(items, grayscale=False, name=f"market1501/{split}")


def pids(dataset: IdentityDataset) -> np.ndarray:
    """Integer person ids (Market-1501 evaluation uses these, not the contiguous labels)."""
    return np.array([int(it.identity) for it in dataset.items], dtype=np.int64)


# --------------------------------------------------------------------------- Omniglot

OMNIGLOT_LAYOUT = ("images_background.zip / images_evaluation.zip (or such a folder) holding "
                   "[images_<split>/]<Alphabet>/characterNN/*.png")
RUNS_LAYOUT = ("all_runs.zip (or its folder) holding runNN/training/classMM.png, runNN/test/itemMM.png, "
               "runNN/class_labels.txt")


def _open_zip(path: Path, layout: str) -> zipfile.ZipFile:
    if not path.is_file():
        raise DataError(f"Archive not found: {path}.", hint=f"Expected {layout}.")
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise DataError(f"{path} is not a valid zip archive.", hint=f"Expected {layout}.") from None


def _member_names(path: Path) -> tuple[list[str], str]:
    """Relative file names inside a zip or under a folder, and the source prefix for :class:`IdentityItem`."""
    if path.is_file():
        with _open_zip(path, OMNIGLOT_LAYOUT) as handle:
            return [n for n in handle.namelist() if not n.endswith("/")], f"{path}{ZIP_SEP}"
    if path.is_dir():
        return [f.relative_to(path).as_posix() for f in path.rglob("*") if f.is_file()], f"{path}/"
    raise DataError(f"Omniglot data not found: {path}.", hint=f"Expected {OMNIGLOT_LAYOUT} or {RUNS_LAYOUT}.")


def omniglot_layout(path: str | Path) -> str:
    """``"runs"`` (Lake's all_runs), ``"images"`` (alphabet folders), or a DataError saying what was found."""
    path = Path(path)
    if path.is_dir() and (path / "all_runs.zip").is_file() and not any(path.glob("run*/class_labels.txt")):
        return "runs"
    names, _ = _member_names(path)
    if any(re.search(r"(^|/)run\d+/class_labels\.txt$", n) for n in names):
        return "runs"
    if any(n.lower().endswith(".png") and len(n.split("/")) >= 3 for n in names):
        return "images"
    found = ", ".join(sorted(names)[:5]) or "no files"
    raise DataError(f"{path} holds neither Omniglot alphabets nor Lake's runs; found {found}.",
                    hint=f"Expected {OMNIGLOT_LAYOUT}, or {RUNS_LAYOUT}.")


def omniglot_images(path: str | Path) -> IdentityDataset:
    """Omniglot images from a zip or folder: ``…/<Alphabet>/<character>/<drawing>.png`` at any depth.

    Identity = ``Alphabet/character``; ``group`` = alphabet; ``camera`` = drawer (``NNNN_DD.png``).
    """
    path = Path(path)
    names, prefix = _member_names(path)
    pngs = sorted(n for n in names if n.lower().endswith(".png") and len(n.split("/")) >= 3)
    if not pngs:
        found = ", ".join(sorted(names)[:5]) or "no files"
        raise DataError(f"No Omniglot images in {path}; found {found}.", hint=f"Expected {OMNIGLOT_LAYOUT}.")
    items: list[IdentityItem] = []
    labels: dict[str, int] = {}
    for name in pngs:
        alphabet, character, file = name.split("/")[-3:]
        identity = f"{alphabet}/{character}"
        label = labels.setdefault(identity, len(labels))
        drawer = re.match(r"\d+_(\d+)\.png$", file)
        items.append(IdentityItem(f"{prefix}{name}", label, identity, camera=int(drawer.group(1)) if drawer else -1,
                                  group=alphabet))
    return IdentityDataset(items, grayscale=True, name=f"omniglot/{path.stem}")


def omniglot(path: str | Path, split: str = "background") -> IdentityDataset:
    """Omniglot ``background`` (30 alphabets, 964 characters) or ``evaluation`` set, read from its zip.

    ``path`` is the zip or the folder holding ``images_<split>.zip``. Identity =
    ``Alphabet/characterNN``; ``group`` = alphabet; ``camera`` = drawer number (from ``NNNN_DD.png``).
    """
    path = Path(path)
    if path.is_dir() and (path / f"images_{split}.zip").is_file():
        path = path / f"images_{split}.zip"
    elif path.is_dir() or not path.exists():
        missing = path / f"images_{split}.zip" if path.is_dir() else path
        raise DataError(f"Archive not found: {missing}.", hint=f"Expected {OMNIGLOT_LAYOUT}.")
    ds = omniglot_images(path)
    ds.name = f"omniglot/{split}"
    return ds


@dataclass(frozen=True)
class OneShotRun:
    """One of Lake's 20-way runs: ``support`` (C images, one per class), ``queries`` and their answers.

    ``answers[i]`` is the index into ``support`` of the class of ``queries[i]``.
    """

    name: str
    support: np.ndarray
    queries: np.ndarray
    answers: np.ndarray


def omniglot_runs(path: str | Path) -> list[OneShotRun]:
    """Read Lake et al.'s official one-shot runs (``all_runs.zip``, a folder holding it, or its unpacked folder)."""
    path = Path(path)
    if path.is_dir() and (path / "all_runs.zip").is_file():
        path = path / "all_runs.zip"
    names_list, prefix = _member_names(path)
    names = set(names_list)
    handle = zipfile.ZipFile(path) if path.is_file() else None

    def read(name: str) -> bytes:
        return handle.read(name) if handle is not None else (path / name).read_bytes()

    runs = []
    try:
        run_dirs = sorted({n.rsplit("/", 1)[0] for n in names if re.search(r"(^|/)run\d+/class_labels\.txt$", n)})
        if not run_dirs:
            found = ", ".join(sorted(names)[:5]) or "no files"
            raise DataError(f"No runNN/class_labels.txt in {path}; found {found}.", hint=f"Expected {RUNS_LAYOUT}.")
        for run in run_dirs:
            base = run.rsplit("/", 1)[0] + "/" if "/" in run else ""
            support_names = sorted(n for n in names if re.fullmatch(rf"{re.escape(run)}/training/class\d+\.png", n))
            index = {n: i for i, n in enumerate(support_names)}
            queries, answers = [], []
            for line in read(f"{run}/class_labels.txt").decode().splitlines():
                if not line.strip():
                    continue
                fields = line.split()
                if len(fields) != 2:
                    raise DataError(f"Malformed line {line!r} in {prefix}{run}/class_labels.txt.")
                query, target = (base + f if not f.startswith(run + "/") else f for f in fields)
                if query not in names or target not in index:
                    raise DataError(f"{prefix}{run}/class_labels.txt names a missing image ({query} or {target}).")
                queries.append(_decode(read(query), True, f"{prefix}{query}"))
                answers.append(index[target])
            support = [_decode(read(n), True, f"{prefix}{n}") for n in support_names]
            runs.append(OneShotRun(run.rsplit("/", 1)[-1], np.stack(support), np.stack(queries),
                                   np.array(answers, dtype=np.int64)))
    finally:
        if handle is not None:
            handle.close()
    return runs
