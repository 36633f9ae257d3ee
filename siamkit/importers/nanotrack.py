"""Import HonglinChu's NanoTrack checkpoints (``nanotrackv{1,2,3}.pth``) into siamkit's networks.

v2 goes into :class:`~siamkit.nn.nanotrack.NanoTrackV2` (table below), v1 and v3 into
:class:`~siamkit.nn.nanotrack.NanoTrackV1` / :class:`~siamkit.nn.nanotrack.NanoTrackV3` (tables
:data:`KEY_TABLE_V1`, :data:`KEY_TABLE_V3`). :func:`detect_version` tells the three apart by their keys.

The file is ``{"epoch", "state_dict", "optimizer"}``. It is read with ``torch.load(weights_only=True)``;
the optimizer state holds a NumPy float64 scalar, so exactly three NumPy globals are allow-listed for
that one call (see :func:`numpy_safe_globals`) and nothing else is trusted.

Key mapping (checkpoint → siamkit), applied in order by :data:`KEY_TABLE`; ``B`` is a backbone block
index 2–8, ``i`` a tower layer 0–5, ``{br}`` is ``cls`` or ``reg`` and ``{tw}``/``{pr}`` its tower and
prediction names (``cls_pw_tower``/``cls_pred`` or ``bbox_pw_tower``/``bbox_pred``):

======================================================  ==========================================
checkpoint                                              siamkit
======================================================  ==========================================
``backbone.features.0.0`` / ``.0.1``                    ``backbone.stem.conv`` / ``.stem.bn``
``backbone.features.1.conv.{0,1}``                      ``backbone.blocks.0.dw.{conv,bn}``
``backbone.features.1.conv.3.fc.{0,2}``                 ``backbone.blocks.0.se.{fc1,fc2}``
``backbone.features.1.conv.{4,5}``                      ``backbone.blocks.0.project.{conv,bn}``
``backbone.features.B.conv.{0,1}``                      ``backbone.blocks.B-1.expand.{conv,bn}``
``backbone.features.B.conv.{3,4}``                      ``backbone.blocks.B-1.dw.{conv,bn}``
``backbone.features.B.conv.5.fc.{0,2}``                 ``backbone.blocks.B-1.se.{fc1,fc2}``
``backbone.features.B.conv.{7,8}``                      ``backbone.blocks.B-1.project.{conv,bn}``
``ban_head.corr_pw_{br}.conv_kernel.{0,1}``             ``head.{br}.z_proj.{conv,bn}``
``ban_head.corr_pw_{br}.conv_search.{0,1}``             ``head.{br}.x_proj.{conv,bn}``
``ban_head.corr_pw_{br}.CA_layer.{fc1,fc2}``            ``head.{br}.attention.{fc1,fc2}``
``ban_head.{tw}.{4i, 4i+1, 4i+2}``                      ``head.{br}.tower.i.{dw, pw, bn}``
``ban_head.{pr}.0``                                     ``head.{br}.pred``
``neck.downsample.*`` (never called by the network)     dropped
======================================================  ==========================================

(``corr_pw_reg`` ↔ ``reg``; a leading ``module.`` from DataParallel is removed first.)

v1 (backbone as above): ``ban_head.corr_pw.CA_layer.{fc1,fc2}`` → ``head.attention.*``;
``ban_head.{cls,bbox}_tower.{4i, 4i+1, 4i+2}`` → ``head.{cls,reg}_tower.i.{dw, pw, bn}``;
``ban_head.cls_logits.0`` / ``bbox_pred.0`` → ``head.cls_pred`` / ``head.reg_pred``.

v3 (backbone block 9 → ``backbone.blocks.8``, same slots): per branch ``{br}`` (``corr_*_reg`` ↔ ``reg``)
``corr_pw_{br}.conv_kernel/conv_search.{0,1}`` → ``head.{br}.z_proj/x_proj.{conv,bn}``,
``corr_pw_{br}.CA_layer.*`` → ``head.{br}.attention.*``, ``corr_pw_{br}.conv.{0,1,3,4}`` →
``head.{br}.pw_post.{0,1,3,4}``, ``corr_dw_{br}.conv_kernel/conv_search.{0,1}`` →
``head.{br}.dw_z_proj/dw_x_proj.{conv,bn}``, ``down_{br}.0`` → ``head.{br}.down``,
``{cls,bbox}_tower.{5i+j}`` → ``head.{br}.tower.i.j`` and ``cls_logits.0`` / ``bbox_pred.0`` →
``head.{br}.pred``.
"""

from __future__ import annotations

import hashlib
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from siamkit.errors import WeightsError

ARCHITECTURE = "nanotrack_v2"
ARCHITECTURES = {1: "nanotrack_v1", 2: "nanotrack_v2", 3: "nanotrack_v3"}
DROPPED_PREFIXES = ("neck.downsample.",)

_TOWER = {"cls_pw_tower": "cls", "bbox_pw_tower": "reg"}
_PRED = {"cls_pred": "cls", "bbox_pred": "reg"}
_TOWER_PART = ("dw", "pw", "bn")


def _tower(m: re.Match) -> str:
    layer, part = divmod(int(m.group(2)), 4)
    if part == 3:  # ReLU6 slots hold no parameters; a key here means a different architecture
        return m.group(0)
    return f"head.{_TOWER[m.group(1)]}.tower.{layer}.{_TOWER_PART[part]}.{m.group(3)}"


# (regex on the checkpoint key, replacement string or function), first match wins.
KEY_TABLE: tuple[tuple[str, Any], ...] = (
    (r"^backbone\.features\.0\.0\.(.+)$", r"backbone.stem.conv.\1"),
    (r"^backbone\.features\.0\.1\.(.+)$", r"backbone.stem.bn.\1"),
    (r"^backbone\.features\.1\.conv\.0\.(.+)$", r"backbone.blocks.0.dw.conv.\1"),
    (r"^backbone\.features\.1\.conv\.1\.(.+)$", r"backbone.blocks.0.dw.bn.\1"),
    (r"^backbone\.features\.1\.conv\.3\.fc\.0\.(.+)$", r"backbone.blocks.0.se.fc1.\1"),
    (r"^backbone\.features\.1\.conv\.3\.fc\.2\.(.+)$", r"backbone.blocks.0.se.fc2.\1"),
    (r"^backbone\.features\.1\.conv\.4\.(.+)$", r"backbone.blocks.0.project.conv.\1"),
    (r"^backbone\.features\.1\.conv\.5\.(.+)$", r"backbone.blocks.0.project.bn.\1"),
    (
        r"^backbone\.features\.([2-9])\.conv\.(\d)\.(fc\.[02]\.)?(.+)$",
        lambda m: _block_key(int(m.group(1)), int(m.group(2)), m.group(3), m.group(4), m.group(0)),
    ),
    (r"^ban_head\.corr_pw_(cls|reg)\.conv_kernel\.0\.(.+)$", r"head.\1.z_proj.conv.\2"),
    (r"^ban_head\.corr_pw_(cls|reg)\.conv_kernel\.1\.(.+)$", r"head.\1.z_proj.bn.\2"),
    (r"^ban_head\.corr_pw_(cls|reg)\.conv_search\.0\.(.+)$", r"head.\1.x_proj.conv.\2"),
    (r"^ban_head\.corr_pw_(cls|reg)\.conv_search\.1\.(.+)$", r"head.\1.x_proj.bn.\2"),
    (r"^ban_head\.corr_pw_(cls|reg)\.CA_layer\.(fc[12])\.(.+)$", r"head.\1.attention.\2.\3"),
    (r"^ban_head\.(cls_pw_tower|bbox_pw_tower)\.(\d+)\.(.+)$", _tower),
    (r"^ban_head\.(cls_pred|bbox_pred)\.0\.(.+)$", lambda m: f"head.{_PRED[m.group(1)]}.pred.{m.group(2)}"),
)

_BACKBONE_TABLE = KEY_TABLE[:9]
_BRANCH = {"cls": "cls", "reg": "reg", "bbox": "reg"}


def _v1_tower(m: re.Match) -> str:
    layer, part = divmod(int(m.group(2)), 4)
    if part == 3:
        return m.group(0)
    branch = "cls" if m.group(1) == "cls" else "reg"
    return f"head.{branch}_tower.{layer}.{_TOWER_PART[part]}.{m.group(3)}"


KEY_TABLE_V1: tuple[tuple[str, Any], ...] = (
    *_BACKBONE_TABLE,
    (r"^ban_head\.corr_pw\.CA_layer\.(fc[12])\.(.+)$", r"head.attention.\1.\2"),
    (r"^ban_head\.(cls|bbox)_tower\.(\d+)\.(.+)$", _v1_tower),
    (r"^ban_head\.cls_logits\.0\.(.+)$", r"head.cls_pred.\1"),
    (r"^ban_head\.bbox_pred\.0\.(.+)$", r"head.reg_pred.\1"),
)


def _v3_tower(m: re.Match) -> str:
    layer, part = divmod(int(m.group(2)), 5)
    return f"head.{_BRANCH[m.group(1)]}.tower.{layer}.{part}.{m.group(3)}"


_PROJ = {("pw", "kernel"): "z_proj", ("pw", "search"): "x_proj", ("dw", "kernel"): "dw_z_proj",
         ("dw", "search"): "dw_x_proj"}

KEY_TABLE_V3: tuple[tuple[str, Any], ...] = (
    *_BACKBONE_TABLE,
    (
        r"^ban_head\.corr_(pw|dw)_(cls|reg)\.conv_(kernel|search)\.([01])\.(.+)$",
        lambda m: f"head.{m.group(2)}.{_PROJ[m.group(1), m.group(3)]}.{('conv', 'bn')[int(m.group(4))]}.{m.group(5)}",
    ),
    (r"^ban_head\.corr_pw_(cls|reg)\.CA_layer\.(fc[12])\.(.+)$", r"head.\1.attention.\2.\3"),
    (r"^ban_head\.corr_pw_(cls|reg)\.conv\.([0134])\.(.+)$", r"head.\1.pw_post.\2.\3"),
    (r"^ban_head\.down_(cls|reg)\.0\.(.+)$", r"head.\1.down.\2"),
    (r"^ban_head\.(cls|bbox)_tower\.(\d+)\.(.+)$", _v3_tower),
    (r"^ban_head\.cls_logits\.0\.(.+)$", r"head.cls.pred.\1"),
    (r"^ban_head\.bbox_pred\.0\.(.+)$", r"head.reg.pred.\1"),
)

KEY_TABLES = {1: KEY_TABLE_V1, 2: KEY_TABLE, 3: KEY_TABLE_V3}

_BLOCK_SLOTS = {0: "expand.conv", 1: "expand.bn", 3: "dw.conv", 4: "dw.bn", 7: "project.conv", 8: "project.bn"}


def _block_key(block: int, slot: int, fc: str | None, rest: str, original: str) -> str:
    if fc is not None:
        if slot != 5:
            return original
        return f"backbone.blocks.{block - 1}.se.{'fc1' if fc.startswith('fc.0') else 'fc2'}.{rest}"
    if slot not in _BLOCK_SLOTS:
        return original
    return f"backbone.blocks.{block - 1}.{_BLOCK_SLOTS[slot]}.{rest}"


def detect_version(state: Mapping[str, Any]) -> int:
    """NanoTrack version (1, 2 or 3) of a checkpoint state dict, told by keys only v1 or v3 have."""
    keys = {k[len("module.") :] if k.startswith("module.") else k for k in state}
    if any(k.startswith("ban_head.corr_pw.") for k in keys):
        return 1
    if any(k.startswith(("backbone.features.9.", "ban_head.corr_dw_")) for k in keys):
        return 3
    return 2


def map_key(key: str, version: int = 2) -> str | None:
    """siamkit name of a checkpoint key; ``None`` for dropped keys; the key itself when no rule applies."""
    if key.startswith("module."):
        key = key[len("module.") :]
    if key.startswith(DROPPED_PREFIXES):
        return None
    for pattern, replacement in KEY_TABLES[version]:
        match = re.match(pattern, key)
        if match:
            return replacement(match) if callable(replacement) else match.expand(replacement)
    return key


def map_state_dict(state: Mapping[str, torch.Tensor], version: int = 2) -> dict[str, torch.Tensor]:
    """Rename every checkpoint key with the version's table (unmapped keys keep their name, dropped keys go)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new = map_key(key, version)
        if new is not None:
            out[new] = value
    return out


def numpy_safe_globals() -> list[Any]:
    """The NumPy globals ``nanotrackv2.pth`` needs under ``weights_only=True`` — and nothing more.

    Its optimizer state pickles one NumPy float64 scalar: ``numpy.core.multiarray.scalar`` (the
    reconstructor, ``numpy._core`` on NumPy 2), ``numpy.dtype`` and the float64 dtype class it builds.
    """
    try:
        from numpy._core.multiarray import scalar  # NumPy ≥ 2
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core.multiarray import scalar
    return [(scalar, "numpy.core.multiarray.scalar"), np.dtype, type(np.dtype(np.float64))]


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load the raw checkpoint dict (``weights_only=True``), raising :class:`WeightsError` if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"NanoTrack checkpoint not found: {path}.",
            hint="Pass the path to nanotrackv2.pth (HonglinChu/SiamTrackers, NanoTrack/models/pretrained/).",
        )
    try:
        with torch.serialization.safe_globals(numpy_safe_globals()):
            data = torch.load(str(path), map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(
            f"{path} is not a readable NanoTrack checkpoint ({first[:200]}).",
            hint="The file may be truncated or of another kind; get nanotrackv2.pth again and check its sha256.",
        ) from None
    if isinstance(data, Mapping) and "state_dict" in data:
        data = dict(data)
    elif isinstance(data, Mapping) and all(isinstance(v, torch.Tensor) for v in data.values()):
        data = {"state_dict": dict(data)}
    else:
        raise WeightsError(f"{path} holds a {type(data).__name__}, not a NanoTrack state dict.")
    return data


def load_nanotrack_state(path: str | Path, version: int | None = None) -> dict[str, torch.Tensor]:
    """The checkpoint's weights renamed to siamkit keys (not yet checked against a model).

    ``version`` defaults to the one :func:`detect_version` reads from the keys.
    """
    raw = read_checkpoint(path)["state_dict"]
    return map_state_dict(raw, detect_version(raw) if version is None else version)


def build_network(version: int):
    """An untrained siamkit NanoTrack network of ``version`` 1, 2 or 3."""
    from siamkit.nn.nanotrack import NanoTrackV1, NanoTrackV2, NanoTrackV3

    classes = {1: NanoTrackV1, 2: NanoTrackV2, 3: NanoTrackV3}
    if version not in classes:
        raise WeightsError(f"Unknown NanoTrack version {version!r}; siamkit knows 1, 2 and 3.")
    return classes[version]()


def _load_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], path: str | Path, device: Any):
    """``state`` into ``model`` after checking every key and shape; eval mode, on ``device``."""
    from siamkit.zoo import check_state_dict

    expected = model.state_dict()
    check_state_dict(expected, state, source=f"weights in {path}")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})
    model.eval()
    if device is not None:
        model.to(device)
    return model


def load_nanotrack(path: str | Path, version: int | None = None, device: str | torch.device | None = None):
    """Build the network of the checkpoint's version (or ``version``), load it strictly, eval mode."""
    raw = read_checkpoint(path)["state_dict"]
    found = detect_version(raw)
    if version is not None and version != found:
        raise WeightsError(
            f"{path} holds NanoTrack v{found} weights, not v{version}.",
            hint=f"Pass version={found} (or leave it out), or the nanotrackv{version}.pth file.",
        )
    return _load_strict(build_network(found), map_state_dict(raw, found), path, device)


def load_nanotrack_v2(path: str | Path, device: str | torch.device | None = None):
    """Build :class:`~siamkit.nn.nanotrack.NanoTrackV2`, load ``nanotrackv2.pth`` strictly, eval mode."""
    return _load_strict(build_network(2), load_nanotrack_state(path, version=2), path, device)


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file (for provenance in the zoo sidecar)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def convert_to_zoo(pth: str | Path, out: str | Path, half: bool = False) -> Path:
    """Convert ``nanotrackv{1,2,3}.pth`` into a zoo entry ``out.safetensors`` + ``out.yaml``; returns the weights path.

    The weights are third-party (Apache-2.0): write them to a folder of your own (e.g. one listed in
    ``SIAMKIT_ZOO``), not into the siamkit repository.
    """
    from siamkit.zoo import save_model

    model = load_nanotrack(pth)
    epoch = read_checkpoint(pth).get("epoch")
    meta = {
        "task": "tracking",
        "tracker": "nanotrack",
        "version": model.version,
        "source": f"HonglinChu/SiamTrackers NanoTrack/models/pretrained/nanotrackv{model.version}.pth",
        "license": "Apache-2.0",
        "sha256": sha256(pth),
        "epoch": int(epoch) if epoch is not None else None,
    }
    return save_model(model, out, architecture=ARCHITECTURES[model.version], config={}, meta=meta, half=half)
