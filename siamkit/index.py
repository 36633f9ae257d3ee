"""Gallery search on FAISS: embed a folder of images once, then find the nearest items to a query.

Index kinds and the recall/speed trade-off (N items of dimension D):

- ``flat``: exact brute force, ``O(N·D)`` per query, recall 1 by definition. Fine up to ~10⁵ items
  on a laptop; at 1M × 512 a query scans 2 GB (a few queries per second on 2 CPU cores).
- ``ivf`` (``IndexIVFFlat``): k-means into ``nlist`` cells (default ≈ 4·√N); a query scans the
  ``nprobe`` nearest cells only, ≈ ``nprobe/nlist`` of the data. Recall grows with ``nprobe``;
  it needs data with cluster structure (real embeddings have it; i.i.d. Gaussian vectors do not,
  and give meaningless IVF recall). Training costs a k-means over a sample.
- ``hnsw`` (``IndexHNSWFlat``): a navigable small-world graph with ``hnsw_m`` links per node;
  ``ef_search`` (candidate list size) trades recall for speed at query time, ``ef_construction``
  at build time. Often the best recall per query time on CPU, but building is the slowest (tens
  of CPU-minutes per million 512-d vectors), it holds ≈ 2·M·4 extra bytes per item, and a small
  graph (M=16, ef_construction=40) loses recall on large, dense clusters — raise ``ef_search``
  or build with larger ``hnsw_m`` / ``ef_construction`` (defaults here: 32 / 80).

See ``benchmarks/gallery_search.py`` for measured QPS and recall@10 of the three kinds.

Metrics: ``cosine`` (vectors L2-normalised, inner product), ``ip`` (raw inner product) and ``l2``.
Search returns *scores* where higher is always more similar: cosine / inner product, or
**minus the squared** Euclidean distance for ``l2``.

On disk a gallery is a folder holding ``index.faiss``, ``vectors.npy`` (float32, N × D),
``ids.json`` (one string per row), ``metadata.json`` (one dict per row) and ``gallery.json``
(kind, metric, dimension, parameters and the embedding model's name).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from siamkit.errors import ConfigError, DataError, NotAvailableError
from siamkit.utils.io import atomic_write, write_json
from siamkit.utils.progress import progress
from siamkit.video import IMAGE_SUFFIXES

KINDS = ("flat", "ivf", "hnsw")
METRICS = ("cosine", "ip", "l2")
FORMAT_VERSION = 1
FILES = ("gallery.json", "index.faiss", "vectors.npy", "ids.json", "metadata.json")


def _faiss():
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss-cpu is a core dependency
        raise NotAvailableError("Gallery search needs FAISS.", hint="pip install faiss-cpu") from None
    return faiss


def _as_matrix(vectors: Any, name: str, dim: int | None = None) -> np.ndarray:
    """Float32 C-contiguous N × D matrix, or a DataError saying what is wrong."""
    if hasattr(vectors, "detach"):
        vectors = vectors.detach().cpu().numpy()
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim == 1 and dim is not None and x.size == dim:
        x = x[None, :]
    if x.ndim != 2:
        raise DataError(f"{name} must be a 2-D array (N × D); got shape {x.shape}.")
    if dim is not None and x.shape[1] != dim:
        raise DataError(
            f"{name} have dimension {x.shape[1]} but the gallery holds {dim}-dimensional vectors.",
            hint="Embed the queries with the same model that built the gallery.",
        )
    if not np.all(np.isfinite(x)):
        raise DataError(f"{name} contain NaN or infinite values.", hint="Check the embedding model's output.")
    return np.ascontiguousarray(x)


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


class Gallery:
    """Vectors with string ids and per-item metadata, searchable through a FAISS index.

    Build with :meth:`from_arrays` or :meth:`from_folder`, query with :meth:`search`, persist with
    :meth:`save` / :meth:`load`. ``params`` tune the index: ``nlist``, ``nprobe`` (IVF),
    ``hnsw_m``, ``ef_construction``, ``ef_search`` (HNSW).
    """

    def __init__(self, dim: int, kind: str = "flat", metric: str = "cosine", info: dict | None = None, **params):
        if kind not in KINDS:
            raise ConfigError(f"Unknown index kind {kind!r}.", hint=f"Use one of: {', '.join(KINDS)}.")
        if metric not in METRICS:
            raise ConfigError(f"Unknown metric {metric!r}.", hint=f"Use one of: {', '.join(METRICS)}.")
        if int(dim) < 1:
            raise ConfigError(f"Vector dimension must be positive; got {dim}.")
        allowed = {"nlist", "nprobe", "hnsw_m", "ef_construction", "ef_search"}
        unknown = set(params) - allowed
        if unknown:
            raise ConfigError(f"Unknown index parameter(s) {sorted(unknown)}.", hint=f"Allowed: {sorted(allowed)}.")
        self.dim = int(dim)
        self.kind = kind
        self.metric = metric
        self.params = {"nprobe": 16, "hnsw_m": 32, "ef_construction": 80, "ef_search": 64, **params}
        self.info = dict(info or {})
        self.ids: list[str] = []
        self.metadata: list[dict] = []
        self._vectors: list[np.ndarray] = []
        self.index = None

    # ------------------------------------------------------------------ building
    def __len__(self) -> int:
        return len(self.ids)

    @property
    def vectors(self) -> np.ndarray:
        """All stored vectors (normalised when the metric is cosine), N × D float32."""
        if len(self._vectors) != 1:
            self._vectors = [np.concatenate(self._vectors) if self._vectors else np.empty((0, self.dim), np.float32)]
        return self._vectors[0]

    def _faiss_metric(self):
        faiss = _faiss()
        return faiss.METRIC_L2 if self.metric == "l2" else faiss.METRIC_INNER_PRODUCT

    def _new_index(self, n_train: int):
        faiss = _faiss()
        metric = self._faiss_metric()
        if self.kind == "flat":
            return faiss.IndexFlatL2(self.dim) if self.metric == "l2" else faiss.IndexFlatIP(self.dim)
        if self.kind == "hnsw":
            index = faiss.IndexHNSWFlat(self.dim, int(self.params["hnsw_m"]), metric)
            index.hnsw.efConstruction = int(self.params["ef_construction"])
            return index
        nlist = self.params.get("nlist") or default_nlist(n_train)
        self.params["nlist"] = int(nlist)
        quantizer = faiss.IndexFlatL2(self.dim) if self.metric == "l2" else faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFFlat(quantizer, self.dim, int(nlist), metric)
        index.cp.max_points_per_centroid = 256  # k-means on at most 256·nlist sampled points
        return index

    def add(
        self,
        vectors: Any,
        ids: Sequence[str] | None = None,
        metadata: Sequence[dict] | None = None,
        batch_size: int = 65536,
    ) -> Gallery:
        """Add vectors (with ids and metadata) in batches; the first call trains an IVF index."""
        x = _as_matrix(vectors, "Gallery vectors", self.dim)
        n = x.shape[0]
        if n == 0:
            raise DataError("No vectors to add.")
        ids = [str(i) for i in range(len(self), len(self) + n)] if ids is None else [str(i) for i in ids]
        metadata = [{} for _ in range(n)] if metadata is None else [dict(m) for m in metadata]
        if len(ids) != n or len(metadata) != n:
            raise DataError(f"{n} vectors but {len(ids)} ids and {len(metadata)} metadata entries.")
        if self.metric == "cosine":
            x = _normalise(x)
        if self.index is None:
            self.index = self._new_index(n)
            if not self.index.is_trained:
                nlist = self.params["nlist"]
                if n < nlist:
                    raise DataError(
                        f"An IVF index with nlist={nlist} needs at least {nlist} training vectors; got {n}.",
                        hint="Use kind='flat' for small galleries or lower nlist.",
                    )
                self.index.train(x)
        for start in progress(range(0, n, batch_size), total=math.ceil(n / batch_size), desc="indexing", unit="batch"):
            self.index.add(x[start : start + batch_size])
        self._vectors.append(x)
        self.ids += ids
        self.metadata += metadata
        return self

    @classmethod
    def from_arrays(
        cls,
        vectors: Any,
        ids: Sequence[str] | None = None,
        metadata: Sequence[dict] | None = None,
        kind: str = "flat",
        metric: str = "cosine",
        info: dict | None = None,
        **params,
    ) -> Gallery:
        """A gallery holding ``vectors`` (N × D)."""
        x = _as_matrix(vectors, "Gallery vectors")
        if x.shape[0] == 0:
            raise DataError("Cannot build an empty gallery.", hint="Give at least one vector.")
        return cls(x.shape[1], kind, metric, info=info, **params).add(x, ids, metadata)

    @classmethod
    def from_folder(
        cls,
        folder: str | Path,
        model: Any,
        entry: Any = None,
        kind: str = "flat",
        metric: str = "cosine",
        batch_size: int = 32,
        device: str | None = None,
        checkpoint: str | Path | None = None,
        **params,
    ) -> Gallery:
        """Embed every image under ``folder`` (recursively) and index it.

        ``model`` is a zoo name (loaded with :func:`siamkit.zoo.load_model`), an ``nn.Module``
        with its zoo ``entry`` (for the preprocessing in :func:`load_image_for`), or any callable
        mapping a list of image paths to an N × D array. Ids are paths relative to ``folder``;
        metadata holds ``path`` and ``identity`` (the parent folder's name).

        ``checkpoint`` (a folder) makes long ingestion resumable: each embedded batch is saved
        there, and a rerun with the same images and batch size embeds only the missing batches.
        """
        if int(batch_size) < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}.")
        folder = Path(folder)
        paths = list_images(folder)
        embed, info = embedder(model, entry, device)
        rel = [p.relative_to(folder).as_posix() for p in paths]
        ckpt = _Checkpoint(checkpoint, rel, batch_size) if checkpoint is not None else None
        chunks = []
        bar = progress(total=len(paths), desc="embedding", unit="img")
        for start in range(0, len(paths), batch_size):
            batch = paths[start : start + batch_size]
            done = ckpt.get(start) if ckpt else None
            chunk = done if done is not None else _as_matrix(embed(batch), "Embeddings")
            if chunk.shape[0] != len(batch):
                raise DataError(f"The embedding function returned {chunk.shape[0]} rows for {len(batch)} images.")
            if ckpt and done is None:
                ckpt.put(start, chunk)
            chunks.append(chunk)
            bar.update(len(batch))
        bar.close()
        meta = [
            {"path": r, "identity": p.parent.name if p.parent != folder else ""}
            for r, p in zip(rel, paths, strict=True)
        ]
        info = {**info, "folder": str(folder.resolve()), "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        return cls.from_arrays(np.concatenate(chunks), rel, meta, kind=kind, metric=metric, info=info, **params)

    # ------------------------------------------------------------------ searching
    def search(self, queries: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray, list[list[dict]]]:
        """The ``k`` most similar items per query: ``(ids Q×k, scores Q×k, metadata Q lists)``.

        Scores: higher = more similar (cosine / inner product, or −squared L2). ``k`` is capped at
        the gallery size; approximate indexes may return fewer hits (padded with id ``""`` and
        score ``-inf``).
        """
        if self.index is None or len(self) == 0:
            raise DataError("The gallery is empty.", hint="Add vectors (Gallery.add) or build it from a folder first.")
        if int(k) < 1:
            raise DataError(f"k must be at least 1; got {k}.")
        q = _as_matrix(queries, "Query vectors", self.dim)
        if self.metric == "cosine":
            q = _normalise(q)
        k = min(int(k), len(self))
        self._apply_search_params()
        dist, idx = self.index.search(q, k)
        scores = -dist if self.metric == "l2" else dist
        scores = np.where(idx >= 0, scores, -np.inf).astype(np.float32)
        ids = np.array([[self.ids[j] if j >= 0 else "" for j in row] for row in idx], dtype=object)
        meta = [[self.metadata[j] if j >= 0 else {} for j in row] for row in idx]
        return ids, scores, meta

    def _apply_search_params(self) -> None:
        if self.kind == "ivf":
            self.index.nprobe = int(self.params["nprobe"])
        elif self.kind == "hnsw":
            self.index.hnsw.efSearch = int(self.params["ef_search"])

    def set_params(self, **params) -> Gallery:
        """Change search-time parameters (``nprobe``, ``ef_search``) without rebuilding."""
        unknown = set(params) - {"nprobe", "ef_search"}
        if unknown:
            raise ConfigError(f"Only nprobe and ef_search can change after building; got {sorted(unknown)}.")
        self.params.update(params)
        return self

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Write the gallery to ``directory`` (created if needed); each file is written atomically."""
        if self.index is None:
            raise DataError("Cannot save an empty gallery.")
        faiss = _faiss()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write(directory / "index.faiss", lambda p: faiss.write_index(self.index, str(p)))
        atomic_write(directory / "vectors.npy", lambda p: np.save(p, self.vectors))
        write_json(directory / "ids.json", self.ids, indent=None)
        write_json(directory / "metadata.json", self.metadata, indent=None)
        write_json(
            directory / "gallery.json",
            {
                "format_version": FORMAT_VERSION,
                "kind": self.kind,
                "metric": self.metric,
                "dim": self.dim,
                "count": len(self),
                "params": self.params,
                "info": self.info,
            },
        )
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Gallery:
        """Read a gallery written by :meth:`save`, checking that its files agree with each other."""
        faiss = _faiss()
        directory = Path(directory)
        if not directory.is_dir():
            raise DataError(f"Gallery folder not found: {directory}.", hint="Build one with `siamkit index build`.")
        missing = [f for f in FILES if not (directory / f).is_file()]
        if missing:
            raise DataError(
                f"{directory} is not a complete gallery: missing {', '.join(missing)}.",
                hint="Rebuild it with `siamkit index build`.",
            )
        try:
            head = json.loads((directory / "gallery.json").read_text())
            ids = json.loads((directory / "ids.json").read_text())
            metadata = json.loads((directory / "metadata.json").read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"A JSON file in {directory} is corrupt ({exc}).") from None
        if not isinstance(head, dict) or not isinstance(ids, list) or not isinstance(metadata, list):
            raise DataError(f"The JSON files in {directory} are corrupt.",
                            hint="Rebuild it with `siamkit index build`.")
        if head.get("format_version") != FORMAT_VERSION:
            raise DataError(f"{directory}/gallery.json has format {head.get('format_version')}, expected 1.")
        params = {k: v for k, v in head.get("params", {}).items() if v is not None}
        gallery = cls(head["dim"], head["kind"], head["metric"], info=head.get("info"), **params)
        try:  # a corrupt file is a one-line DataError, never a FAISS/NumPy traceback
            vectors = np.load(directory / "vectors.npy", allow_pickle=False)
            index = faiss.read_index(str(directory / "index.faiss"))
        except (RuntimeError, ValueError, OSError, EOFError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise DataError(f"The gallery in {directory} is corrupt ({first}).",
                            hint="Rebuild it with `siamkit index build`.") from None
        n = head.get("count")
        if not (len(ids) == len(metadata) == vectors.shape[0] == index.ntotal == n) or index.d != gallery.dim:
            raise DataError(
                f"The files in {directory} disagree: count {n}, ids {len(ids)}, metadata {len(metadata)}, "
                f"vectors {vectors.shape}, index {index.ntotal}×{index.d}.",
                hint="The folder was partly overwritten; rebuild it.",
            )
        gallery.index, gallery.ids, gallery.metadata = index, [str(i) for i in ids], list(metadata)
        gallery._vectors = [vectors.astype(np.float32, copy=False)]
        return gallery

    def __repr__(self) -> str:
        return f"Gallery({len(self)} × {self.dim}, kind={self.kind!r}, metric={self.metric!r})"


class _Checkpoint:
    """Per-batch embeddings saved under a folder, valid only for the same image list and batch size."""

    def __init__(self, folder: str | Path, ids: list[str], batch_size: int):
        import hashlib

        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        key = hashlib.sha256(json.dumps([ids, batch_size]).encode()).hexdigest()[:16]
        stamp = self.folder / "manifest.json"
        if stamp.is_file() and json.loads(stamp.read_text()).get("key") != key:
            for old in self.folder.glob("batch_*.npy"):  # a different image list: start over
                old.unlink()
        write_json(stamp, {"key": key, "count": len(ids), "batch_size": batch_size})

    def _path(self, start: int) -> Path:
        return self.folder / f"batch_{start:09d}.npy"

    def get(self, start: int) -> np.ndarray | None:
        path = self._path(start)
        return np.load(path) if path.is_file() else None

    def put(self, start: int, chunk: np.ndarray) -> None:
        atomic_write(self._path(start), lambda p: np.save(p, chunk))


def default_nlist(n: int) -> int:
    """≈ 4·√N IVF cells, at most N/39 (FAISS wants ≥ 39 training points per cell), at least 1."""
    return int(max(1, min(round(4 * math.sqrt(n)), n // 39)))


# --------------------------------------------------------------------------- images for embedding models


def list_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted), or a DataError if there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"Image folder not found: {folder}.", hint="Pass a folder that contains images.")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DataError(f"No images in {folder}.", hint=f"Supported suffixes: {', '.join(IMAGE_SUFFIXES)}.")
    return paths


def _meta(entry: Any) -> dict:
    if entry is None:
        raise ConfigError("An nn.Module needs its zoo entry (or meta dict) to know the input size and normalisation.")
    return dict(getattr(entry, "meta", entry) or {})


def load_image_for(entry: Any, path: str | Path):
    """Read an image file as the float tensor C×H×W an embedding model expects.

    ``entry`` is a :class:`siamkit.zoo.ZooEntry` (or its ``meta`` dict) with ``input_size``
    [H, W], ``channels`` (1 = greyscale, 3 = colour), optional ``invert`` (255 − pixel, for
    dark-on-light scans), optional ``color`` (``"rgb"``, the default, or ``"bgr"``), optional
    ``scale`` (pixel multiplier, default 1/255 → [0, 1]) and ``normalize`` (``{mean: [...],
    std: [...]}`` applied after scaling, or none). The conversion is training's own,
    :class:`siamkit.data.preprocess.Preprocessing`.
    """
    from siamkit.data.preprocess import Preprocessing

    return Preprocessing.from_meta(_meta(entry)).load(path)


def embedder(
    model: Any, entry: Any = None, device: str | None = None
) -> tuple[Callable[[list[Path]], np.ndarray], dict]:
    """A function mapping image paths to embeddings, and a description of the model for ``gallery.json``."""
    reference = None
    if isinstance(model, (str, Path)):
        from siamkit.zoo import load_model

        reference = str(Path(model).resolve()) if Path(model).exists() else str(model)
        model, entry = load_model(model, device)
    import torch

    if isinstance(model, torch.nn.Module):
        from siamkit.data.preprocess import Preprocessing

        meta = _meta(entry)
        prep = Preprocessing.from_meta(meta)
        dev = device or next((p.device for p in model.parameters()), torch.device("cpu"))
        model.eval()

        def embed(paths: list[Path]) -> np.ndarray:
            batch = prep([prep.read(p) for p in paths]).to(dev)
            with torch.inference_mode():
                out = model(batch)
            if out.ndim != 2:
                raise DataError(f"The model returned shape {tuple(out.shape)}; an embedding model returns B × D.")
            return out.float().cpu().numpy()

        name = reference or getattr(entry, "name", None)
        return embed, {"model": name, "architecture": getattr(entry, "architecture", None), "meta": meta}
    if callable(model):
        return (lambda paths: model(list(paths))), {"model": getattr(model, "__name__", type(model).__name__)}
    raise ConfigError(f"Cannot embed with {type(model).__name__}; pass a zoo name, an nn.Module or a callable.")


def embed_images(model: Any, paths: Iterable[str | Path], entry: Any = None, batch_size: int = 32) -> np.ndarray:
    """Embed image files with a zoo name / module / callable (as :meth:`Gallery.from_folder`)."""
    embed, _ = embedder(model, entry)
    paths = [Path(p) for p in paths]
    return np.concatenate(
        [_as_matrix(embed(paths[i : i + batch_size]), "Embeddings") for i in range(0, len(paths), batch_size)]
    )
