"""Named models: a safetensors weights file plus a YAML sidecar that says how to build it.

A zoo entry ``NAME`` is two files side by side::

    NAME.safetensors   the weights (a flat state dict)
    NAME.yaml          architecture (a name in ``siamkit.config.MODELS``), its config,
                       and free metadata (task, metrics, recipe, threshold, …)

Entries are looked up in the weights shipped inside the package, then in the folders listed
in ``SIAMKIT_ZOO`` (``os.pathsep``-separated). Only local files are ever read: nothing is
downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from siamkit.config import MODELS
from siamkit.errors import WeightsError

PACKAGE_ZOO = Path(__file__).parent / "zoo_weights"
SIDECAR_SUFFIX = ".yaml"
WEIGHTS_SUFFIX = ".safetensors"


@dataclass(frozen=True)
class ZooEntry:
    """What a sidecar says about one named model."""

    name: str
    architecture: str
    config: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    weights: Path | None = None


def zoo_dirs() -> list[Path]:
    """Folders searched for named models, in order."""
    dirs = [PACKAGE_ZOO]
    extra = os.environ.get("SIAMKIT_ZOO", "")
    dirs += [Path(p) for p in extra.split(os.pathsep) if p]
    return dirs


def list_models() -> list[ZooEntry]:
    """Every named model found in the zoo folders (first occurrence of a name wins)."""
    seen: dict[str, ZooEntry] = {}
    for folder in zoo_dirs():
        if not folder.is_dir():
            continue
        for sidecar in sorted(folder.glob(f"*{SIDECAR_SUFFIX}")):
            entry = read_sidecar(sidecar)
            seen.setdefault(entry.name, entry)
    return list(seen.values())


def read_sidecar(path: str | Path) -> ZooEntry:
    """Parse ``NAME.yaml`` beside ``NAME.safetensors``."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"Model sidecar not found: {path}.")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        from siamkit.config import yaml_problem

        raise WeightsError(f"Model sidecar {path} is not valid YAML ({yaml_problem(exc)}).") from None
    if not isinstance(data, dict) or "architecture" not in data:
        raise WeightsError(
            f"Model sidecar {path} has no 'architecture' key.",
            hint="It must name a registered model builder (see siamkit.config.MODELS.names()).",
        )
    return ZooEntry(
        name=str(data.get("name", path.stem)),
        architecture=str(data["architecture"]),
        config=dict(data.get("config") or {}),
        meta=dict(data.get("meta") or {}),
        weights=path.with_suffix(WEIGHTS_SUFFIX),
    )


def resolve(name_or_path: str | Path) -> ZooEntry:
    """Find a zoo entry by name, or by a path to its ``.safetensors`` or ``.yaml`` file."""
    text = str(name_or_path)
    if "://" in text:
        raise WeightsError(
            f"{text} is a URL; siamkit never downloads weights.",
            hint="Download the file yourself and pass its local path.",
        )
    path = Path(text)
    if path.suffix in (WEIGHTS_SUFFIX, SIDECAR_SUFFIX) or path.exists():
        sidecar = path.with_suffix(SIDECAR_SUFFIX)
        if not path.exists():
            raise WeightsError(f"Weights file not found: {path}.")
        return read_sidecar(sidecar)
    for folder in zoo_dirs():
        sidecar = folder / f"{text}{SIDECAR_SUFFIX}"
        if sidecar.is_file():
            return read_sidecar(sidecar)
    names = ", ".join(e.name for e in list_models()) or "(none)"
    raise WeightsError(f"No model named {text!r} in the zoo.", hint=f"Available: {names}.")


def check_state_dict(
    expected: Mapping[str, Any],
    given: Mapping[str, Any],
    source: str = "weights",
    unmatched: list[str] | tuple[str, ...] = (),
    message: str | None = None,
    hint: str = "Check that the file belongs to this architecture and configuration.",
) -> None:
    """Raise :class:`WeightsError` listing missing, unexpected and mis-shaped keys.

    ``unmatched`` adds file keys that an importer could not map (they count as unexpected).
    """
    missing = sorted(set(expected) - set(given))
    unexpected = sorted([*unmatched, *(set(given) - set(expected))])
    mismatched = sorted(
        f"{k} (model {tuple(expected[k].shape)}, file {tuple(given[k].shape)})"
        for k in set(expected) & set(given)
        if tuple(expected[k].shape) != tuple(given[k].shape)
    )
    if missing or unexpected or mismatched:
        raise WeightsError(
            message or f"The {source} do not match the model",
            missing=missing,
            unexpected=unexpected,
            mismatched=mismatched,
            hint=hint,
        )
    check_finite(given, source)


def check_finite(state: Mapping[str, Any], source: str = "weights") -> None:
    """Refuse weights holding NaN or infinity (a diverged or corrupt file tracks nothing, silently)."""
    bad = sorted(
        k for k, v in state.items()
        if getattr(v, "is_floating_point", lambda: False)() and not bool(v.isfinite().all())
    )
    if bad:
        shown = ", ".join(bad[:5]) + (f", … ({len(bad) - 5} more)" if len(bad) > 5 else "")
        raise WeightsError(
            f"The {source} hold NaN or infinite values ({len(bad)} tensor(s): {shown}).",
            hint="The file is corrupt or its training diverged; use other weights.",
        )


def load_weights(model: Any, path: str | Path, strict: bool = True) -> Any:
    """Load a safetensors file into ``model`` after checking keys and shapes."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"Weights file not found: {path}.")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable safetensors file ({exc}).") from None
    expected = model.state_dict()
    if strict:
        check_state_dict(expected, state, source=f"weights in {path}")
    else:
        check_finite(state, source=f"weights in {path}")
    state = {k: v.to(expected[k].dtype) if k in expected else v for k, v in state.items()}
    model.load_state_dict(state, strict=strict)
    return model


def save_model(
    model: Any,
    path: str | Path,
    architecture: str,
    config: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
    half: bool = False,
) -> Path:
    """Save ``model`` as ``path`` (``.safetensors``) plus its YAML sidecar, atomically.

    ``half=True`` stores floating-point tensors as fp16 (they are cast back on load). Both files
    are written under temporary names and renamed only when both are complete, so a failed save
    (unserialisable meta, full disk, Ctrl-C) leaves an earlier entry of that name intact.
    """
    from safetensors.torch import save_file

    from siamkit.utils.io import atomic_write

    path = Path(path).with_suffix(WEIGHTS_SUFFIX)
    state = {}
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        if half and tensor.is_floating_point():
            tensor = tensor.half()
        state[key] = tensor
    sidecar = {
        "name": path.stem,
        "architecture": architecture,
        "config": dict(config or {}),
        "meta": dict(meta or {}),
    }
    try:
        text = yaml.safe_dump(sidecar, sort_keys=False)  # before any file is touched
    except yaml.YAMLError as exc:
        raise WeightsError(f"The sidecar of {path.stem} cannot be written as YAML ({exc}).",
                           hint="Keep meta to plain numbers, strings, lists and mappings.") from None

    def write_both(tmp: Path) -> None:
        save_file(state, str(tmp))
        atomic_write(path.with_suffix(SIDECAR_SUFFIX), lambda p: p.write_text(text))

    atomic_write(path, write_both)
    return path


def build(entry: ZooEntry) -> Any:
    """Build the (untrained) model an entry describes."""
    return MODELS.build(entry.architecture, **entry.config)


def load_model(name_or_path: str | Path, device: str | None = None) -> tuple[Any, ZooEntry]:
    """Build a named model, load its weights, put it in eval mode on ``device``."""
    entry = resolve(name_or_path)
    _ensure_registered()
    model = build(entry)
    if entry.weights is None or not entry.weights.is_file():
        raise WeightsError(f"Weights for {entry.name!r} are missing: expected {entry.weights}.")
    load_weights(model, entry.weights)
    model.eval()
    if device is not None:
        model.to(device)
    return model, entry


def _ensure_registered() -> None:
    """Import the modules that register model builders (lazy, to keep ``import siamkit`` cheap)."""
    from siamkit.utils.imports import import_available

    import_available(["siamkit.nn"])
