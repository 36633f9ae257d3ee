"""Import HonglinChu's NanoTrack v2 checkpoint (``nanotrackv2.pth``) into :class:`~siamkit.nn.nanotrack.NanoTrackV2`.

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
        r"^backbone\.features\.([2-8])\.conv\.(\d)\.(fc\.[02]\.)?(.+)$",
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

_BLOCK_SLOTS = {0: "expand.conv", 1: "expand.bn", 3: "dw.conv", 4: "dw.bn", 7: "project.conv", 8: "project.bn"}


def _block_key(block: int, slot: int, fc: str | None, rest: str, original: str) -> str:
    if fc is not None:
        if slot != 5:
            return original
        return f"backbone.blocks.{block - 1}.se.{'fc1' if fc.startswith('fc.0') else 'fc2'}.{rest}"
    if slot not in _BLOCK_SLOTS:
        return original
    return f"backbone.blocks.{block - 1}.{_BLOCK_SLOTS[slot]}.{rest}"


def map_key(key: str) -> str | None:
    """siamkit name of a checkpoint key; ``None`` for dropped keys; the key itself when no rule applies."""
    if key.startswith("module."):
        key = key[len("module.") :]
    if key.startswith(DROPPED_PREFIXES):
        return None
    for pattern, replacement in KEY_TABLE:
        match = re.match(pattern, key)
        if match:
            return replacement(match) if callable(replacement) else match.expand(replacement)
    return key


def map_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename every checkpoint key with :data:`KEY_TABLE` (unmapped keys keep their name, dropped keys go)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new = map_key(key)
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


def load_nanotrack_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The checkpoint's weights renamed to siamkit keys (not yet checked against a model)."""
    return map_state_dict(read_checkpoint(path)["state_dict"])


def load_nanotrack_v2(path: str | Path, device: str | torch.device | None = None):
    """Build :class:`~siamkit.nn.nanotrack.NanoTrackV2`, load ``nanotrackv2.pth`` strictly, eval mode."""
    from siamkit.nn.nanotrack import NanoTrackV2
    from siamkit.zoo import check_state_dict

    model = NanoTrackV2()
    state = load_nanotrack_state(path)
    expected = model.state_dict()
    check_state_dict(expected, state, source=f"weights in {path}")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})
    model.eval()
    if device is not None:
        model.to(device)
    return model


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file (for provenance in the zoo sidecar)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def convert_to_zoo(pth: str | Path, out: str | Path, half: bool = False) -> Path:
    """Convert ``nanotrackv2.pth`` into a zoo entry ``out.safetensors`` + ``out.yaml``; returns the weights path.

    The weights are third-party (Apache-2.0): write them to a folder of your own (e.g. one listed in
    ``SIAMKIT_ZOO``), not into the siamkit repository.
    """
    from siamkit.zoo import save_model

    model = load_nanotrack_v2(pth)
    epoch = read_checkpoint(pth).get("epoch")
    meta = {
        "task": "tracking",
        "tracker": "nanotrack",
        "source": "HonglinChu/SiamTrackers NanoTrack/models/pretrained/nanotrackv2.pth",
        "license": "Apache-2.0",
        "sha256": sha256(pth),
        "epoch": int(epoch) if epoch is not None else None,
    }
    return save_model(model, out, architecture=ARCHITECTURE, config={}, meta=meta, half=half)
