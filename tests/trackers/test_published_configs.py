"""Published hyper-parameters are written only in ``configs/<tracker>.yaml``: the config classes are the schema.

A field marked ``PUBLISHED`` has no value in code; left out it takes the class's preset (``PRESET`` of
``configs/<TRACKER>.yaml``), so ``Config()`` is that preset and ``Config.preset(name)`` any other.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from siamkit.config import PUBLISHED, Published, load_yaml
from siamkit.errors import ConfigError
from siamkit.trackers.build import CONFIG_DIR, preset_names, resolve_config
from siamkit.trackers.dasiamrpn import DaSiamRPNConfig
from siamkit.trackers.engine import CoreConfig, SiamRPNConfig
from siamkit.trackers.nanotrack import NanoTrackConfig
from siamkit.trackers.siamban import SiamBANACMConfig, SiamBANConfig
from siamkit.trackers.siamfc import SiamFCConfig
from siamkit.trackers.siammask import SiamMaskConfig
from siamkit.trackers.siamrpn import SiamRPNAlexConfig, SiamRPNPPAlexConfig, SiamRPNPPMobileConfig, SiamRPNPPR50Config

CLASSES = [CoreConfig, SiamRPNConfig, SiamFCConfig, SiamRPNAlexConfig, DaSiamRPNConfig, SiamRPNPPAlexConfig,
           SiamRPNPPR50Config, SiamRPNPPMobileConfig, SiamMaskConfig, SiamBANConfig, SiamBANACMConfig, NanoTrackConfig]
# Fields some presets write that keep a neutral value in code (not a published number): the crop convention,
# "the model's score map", "no cv2.TrackerNano step" and NanoTrack's empty source.
NEUTRAL = {SiamFCConfig: {"crop"}, NanoTrackConfig: {"output_size", "opencv", "source"}}
TRACKER_CLASSES = [c for c in CLASSES if c is not CoreConfig]  # CoreConfig: the anchor-free base of an anchor preset
MODULES = ["engine", "siamfc", "siamrpn", "dasiamrpn", "siamban", "siammask", "nanotrack"]


@pytest.mark.parametrize("cls", TRACKER_CLASSES, ids=lambda c: c.__name__)
def test_a_config_class_is_its_preset(cls):
    assert issubclass(cls, Published)
    preset = cls.preset(cls.PRESET)
    assert preset == resolve_config(cls, cls.TRACKER, preset=cls.PRESET)
    neutral = {name: getattr(cls(), name) for name in NEUTRAL.get(cls, ())}
    assert cls() == dataclasses.replace(preset, **neutral)
    assert cls.preset() == resolve_config(cls, cls.TRACKER)  # None: the file's default, as create_tracker
    assert cls(lr=0.123).lr == 0.123 if "lr" in {f.name for f in dataclasses.fields(cls)} else True
    for field in dataclasses.fields(cls):
        assert getattr(cls(), field.name) is not PUBLISHED


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_value_a_preset_writes_is_published_not_coded(cls):
    written = set().union(*(load_yaml(CONFIG_DIR / f"{cls.TRACKER}.yaml")["presets"].values()))
    coded = {f.name for f in dataclasses.fields(cls) if f.default is not PUBLISHED}
    assert (written & coded) - NEUTRAL.get(cls, set()) == set()


@pytest.mark.parametrize("module", MODULES)
def test_no_config_class_repeats_a_number(module):
    """Inside the config classes no field is given a number (values come from the YAML presets)."""
    text = (Path(__file__).resolve().parents[2] / "siamkit" / "trackers" / f"{module}.py").read_text()
    for body in re.findall(r"class \w+Config\b.*?(?=\n\S)", text, flags=re.S):
        defaults = re.findall(r"^\s+\w+: [^=\n]+=([^#\n]*)", body, flags=re.M)
        assert [d for d in defaults if re.search(r"\d", d)] == [], body


def test_every_preset_loads_and_unknown_presets_are_named():
    for cls in TRACKER_CLASSES:
        for name in preset_names(cls.TRACKER):
            assert isinstance(cls.preset(name), cls)
    with pytest.raises(ConfigError, match="no preset 'nope'.*"):
        SiamBANConfig.preset("nope")


def test_core_config_is_pysots_defaults():
    core, rpn = CoreConfig(), SiamRPNConfig.preset("pysot_defaults")
    assert core == CoreConfig(**{f.name: getattr(rpn, f.name) for f in dataclasses.fields(CoreConfig)})


def test_values_are_copied_not_shared():
    a, b = DaSiamRPNConfig(), DaSiamRPNConfig()
    assert a.model_options == b.model_options and a.model_options is not b.model_options


def test_nanotrack_partial_settings_take_v2():
    v2 = NanoTrackConfig.preset("v2")
    cfg = NanoTrackConfig(window_influence=0.3)
    assert cfg.window_influence == 0.3
    assert (cfg.penalty_k, cfg.lr, cfg.instance_size) == (v2.penalty_k, v2.lr, v2.instance_size)
    assert (cfg.output_size, cfg.opencv, cfg.source) == (None, (), "")  # neutral: the model's map, the original
