"""Frozen dataclass configs: YAML round trips, unknown keys named, registry lookups."""

from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from siamkit.config import Registry, from_dict, load_config, save_config, to_dict
from siamkit.errors import ConfigError, RegistryError


@dataclass(frozen=True)
class Inner:
    lr: float = 0.1
    steps: tuple[int, ...] = (10, 20)


@dataclass(frozen=True)
class Outer:
    name: str = "model"
    size: int = 255
    scale: float = 1.0
    flag: bool = False
    inner: Inner = field(default_factory=Inner)
    note: str | None = None


configs = st.builds(
    Outer,
    name=st.text(min_size=1, max_size=20),
    size=st.integers(-(10**6), 10**6),
    scale=st.floats(allow_nan=False, allow_infinity=False, width=64),
    flag=st.booleans(),
    inner=st.builds(Inner, lr=st.floats(0, 10), steps=st.lists(st.integers(0, 100), max_size=5).map(tuple)),
    note=st.one_of(st.none(), st.text(max_size=10)),
)


@given(configs)
def test_dict_round_trip(cfg):
    assert from_dict(Outer, to_dict(cfg)) == cfg


@given(configs)
def test_yaml_round_trip(tmp_path_factory, cfg):
    path = tmp_path_factory.mktemp("cfg") / "c.yaml"
    save_config(cfg, path)
    assert load_config(Outer, path) == cfg


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\nsiez: 3\n")
    with pytest.raises(ConfigError, match="'siez'") as info:
        load_config(Outer, path)
    assert "size" in str(info.value)  # the valid keys are listed


def test_nested_unknown_key_names_its_path():
    with pytest.raises(ConfigError, match=r"Outer\.inner: unknown key\(s\) 'momentum'"):
        from_dict(Outer, {"inner": {"momentum": 0.9}})


def test_wrong_type_is_rejected():
    with pytest.raises(ConfigError, match="expected an integer"):
        from_dict(Outer, {"size": "big"})
    with pytest.raises(ConfigError, match="expected true or false"):
        from_dict(Outer, {"flag": "yes"})


def test_ints_become_floats_and_configs_are_frozen():
    cfg = from_dict(Outer, {"scale": 2})
    assert isinstance(cfg.scale, float)
    with pytest.raises(AttributeError):
        cfg.scale = 3.0  # type: ignore[misc]


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(Outer, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Outer, bad)


def test_registry_builds_and_lists_names():
    reg = Registry("widget")

    @reg.register("square")
    def square(n=2):
        return n * n

    assert reg.build("square", n=3) == 9
    assert "square" in reg and reg.names() == ["square"]
    with pytest.raises(RegistryError, match="Unknown widget 'circle'. Available: square"):
        reg.get("circle")
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("square")(lambda: 0)
