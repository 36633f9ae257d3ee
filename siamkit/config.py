"""Frozen dataclass configs with YAML load/save, and a tiny ``name → builder`` registry.

Configs are values: they are built once, passed in, and never mutated. Loading rejects
unknown keys by name so that a typo in a YAML file fails loudly instead of being ignored.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml

from siamkit.errors import ConfigError, RegistryError

T = TypeVar("T")


# --------------------------------------------------------------------------- dataclass <-> dict


def to_dict(config: Any) -> Any:
    """Convert a (nested) dataclass config into plain Python data (dicts, lists, scalars)."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (list, tuple)):
        return [to_dict(v) for v in config]
    if isinstance(config, Mapping):
        return {k: to_dict(v) for k, v in config.items()}
    return config


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Coerce plain YAML data into the annotated type (nested dataclasses, tuples, floats)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any or annotation is None:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: {value!r} matches none of {annotation}.")
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping for {annotation.__name__}, got {value!r}.")
        return from_dict(annotation, value, where=where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}.")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}.")
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
        item = args[0] if args else Any
        seq = [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(seq) if origin is tuple else seq
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}.")
        return dict(value)
    if annotation is float:
        if isinstance(value, str):  # PyYAML reads 1e-3 (no dot) as a string: YAML 1.1's float needs one
            value = _float_text(value, where)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}.")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}.")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}.")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}.")
        return value
    return value


def _float_text(text: str, where: str) -> float:
    """A number written as text (``1e-3``) → float; NaN and infinity are refused (they train nothing)."""
    try:
        number = float(text.strip())
    except ValueError:
        raise ConfigError(f"{where}: expected a number, got {text!r}.") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ConfigError(f"{where}: expected a finite number, got {text!r}.")
    return number


def from_dict(cls: type[T], data: Mapping[str, Any], where: str | None = None) -> T:
    """Build the dataclass ``cls`` from a mapping, rejecting unknown keys by name."""
    where = where or cls.__name__
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(repr(k) for k in unknown)}.",
            hint=f"Valid keys are: {', '.join(sorted(fields))}.",
        )
    hints = typing.get_type_hints(cls)
    kwargs = {name: _coerce(value, hints[name], f"{where}.{name}") for name, value in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"{where}: {exc}.") from None


def yaml_problem(exc: Exception) -> str:
    """A YAML parse error on one line: ``line L, column C: what`` (PyYAML's own text spans several)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
    text = " ".join(str(problem).split())
    return f"line {mark.line + 1}, column {mark.column + 1}: {text}" if mark is not None else text


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping from ``path`` with a clear error for missing or malformed files."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file not found: {path}.", hint="Check the path (see configs/ for examples).")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"Config file {path} is not valid YAML ({yaml_problem(exc)}).") from None
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} must hold a mapping at the top level.")
    return data


def load_config(cls: type[T], path: str | Path) -> T:
    """Load the dataclass ``cls`` from a YAML file."""
    return from_dict(cls, load_yaml(path), where=str(path))


# --------------------------------------------------------------------------- published configurations

CONFIG_DIR = Path(__file__).resolve().parent / "configs"  # packaged; ./configs links here


class _Published:
    """The marker default of a field whose value is published in a YAML preset, not written in code."""

    def __repr__(self) -> str:
        return "PUBLISHED"


PUBLISHED: Any = _Published()


class Published:
    """Mixin of a frozen dataclass whose published values live in ``configs/<TRACKER>.yaml`` only.

    The dataclass is the schema (names, types, docs). A field declared ``= PUBLISHED`` has no value
    in code: left out, it takes the value of preset ``PRESET`` of ``configs/<TRACKER>.yaml`` (so
    ``Config()`` is that preset and ``Config(lr=0.3)`` that preset with one change); fields with a
    plain default are neutral switches, not published numbers. :meth:`preset` reads any preset.
    """

    TRACKER: ClassVar[str] = ""  # configs/<TRACKER>.yaml
    PRESET: ClassVar[str] = ""  # the preset this class describes (what its fields left out take)

    def __post_init__(self) -> None:
        missing = [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is PUBLISHED]
        if missing:
            values = _published_values(type(self))
            for name in missing:
                object.__setattr__(self, name, copy.deepcopy(values[name]))

    @classmethod
    def preset(cls: type[T], name: str | None = None) -> T:
        """Preset ``name`` of ``configs/<TRACKER>.yaml`` (``None``: the file's ``default``, as create_tracker uses)."""
        return preset_config(cls, CONFIG_DIR / f"{cls.TRACKER}.yaml", name)  # type: ignore[attr-defined]


def preset_config(cls: type[T], path: str | Path, name: str | None = None, data: Mapping[str, Any] | None = None) -> T:
    """The config ``cls`` of preset ``name`` (``None``: ``default``) of a ``{default: NAME, presets: {…}}`` file."""
    data = load_yaml(path) if data is None else data
    presets = data.get("presets") or {}
    name = name or data.get("default")
    if name not in presets:
        raise ConfigError(f"{path}: no preset {name!r}.", hint=f"Available presets: {', '.join(sorted(presets))}.")
    return from_dict(cls, presets[name], where=f"{path}:{name}")


def _presets(tracker: str) -> tuple[Path, dict[str, Any]]:
    if not tracker:
        raise ConfigError("This config class names no configs/<tracker>.yaml (TRACKER is empty).")
    path = CONFIG_DIR / f"{tracker}.yaml"
    return path, dict(load_yaml(path).get("presets") or {})


@functools.cache
def _published_values(cls: type) -> dict[str, Any]:
    """The ``PUBLISHED`` fields of ``cls`` as preset ``cls.PRESET`` gives them (read once, coerced)."""
    path, presets = _presets(cls.TRACKER)
    where = f"{path}:{cls.PRESET}"
    if cls.PRESET not in presets:
        raise ConfigError(f"{path}: no preset {cls.PRESET!r} (the values of {cls.__name__}).")
    preset = presets[cls.PRESET]
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.default is PUBLISHED:
            if f.name not in preset:
                raise ConfigError(f"{where}: no {f.name!r}, a published value of {cls.__name__}.")
            values[f.name] = _coerce(preset[f.name], hints[f.name], f"{where}.{f.name}")
    return values


def save_config(config: Any, path: str | Path) -> None:
    """Write a dataclass config to YAML (keys in declaration order)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))


def replace(config: T, **changes: Any) -> T:
    """Return a copy of a frozen config with some fields changed."""
    return dataclasses.replace(config, **changes)


# --------------------------------------------------------------------------- registry


class Registry:
    """A named table of builders: ``registry.register("name")(fn)`` then ``registry.build("name")``.

    One registry per kind of thing (models, trackers, losses, datasets) keeps names short and
    lets error messages list what is available.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._builders: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorator(builder: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._builders and self._builders[name] is not builder:
                raise RegistryError(f"A {self.kind} named {name!r} is already registered.")
            self._builders[name] = builder
            return builder

        return decorator

    def get(self, name: str) -> Callable[..., Any]:
        try:
            return self._builders[name]
        except KeyError:
            raise RegistryError(
                f"Unknown {self.kind} {name!r}.", hint=f"Available: {', '.join(self.names()) or '(none)'}."
            ) from None

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.get(name)(*args, **kwargs)

    def names(self) -> list[str]:
        return sorted(self._builders)

    def __contains__(self, name: object) -> bool:
        return name in self._builders

    def __len__(self) -> int:
        return len(self._builders)


MODELS = Registry("model")
TRACKERS = Registry("tracker")
LOSSES = Registry("loss")
