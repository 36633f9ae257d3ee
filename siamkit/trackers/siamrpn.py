"""SiamRPN and SiamRPN++ (reference §1, §4, §6): their published configurations and builders.

They run the engine's anchor-based core (:class:`~siamkit.trackers.engine.AnchorCore`, which
decodes anchor deltas). Registered trackers: ``siamrpn`` (AlexNet with
up-channel correlation, DaSiamRPN's released SiamRPN models), ``siamrpnpp_alexnet``,
``siamrpnpp_r50``, ``siamrpnpp_mobilev2``.
"""

from __future__ import annotations

from dataclasses import dataclass

from siamkit.config import TRACKERS
from siamkit.trackers.build import dasiamrpn_importer, make_tracker, pysot_importer
from siamkit.trackers.engine import AnchorCore, CoreConfig, PointCore, SiameseTracker, SiamRPNConfig

# --------------------------------------------------------------------------- configs


# Each class is the schema of one tracker's configs; its values (``PUBLISHED``) are the named preset of
# ``configs/<TRACKER>.yaml``, the only place they are written.


@dataclass(frozen=True)
class SiamRPNPPR50Config(SiamRPNConfig):
    """pysot ``siamrpn_r50_l234_dwxcorr`` (VOT): preset ``vot`` of ``configs/siamrpnpp_r50.yaml``."""

    TRACKER = "siamrpnpp_r50"
    PRESET = "vot"


@dataclass(frozen=True)
class SiamRPNPPAlexConfig(SiamRPNConfig):
    """pysot ``siamrpn_alex_dwxcorr`` (searched at 287, trained at 255, no base size): preset ``vot`` of
    ``configs/siamrpnpp_alexnet.yaml``."""

    TRACKER = "siamrpnpp_alexnet"
    PRESET = "vot"


@dataclass(frozen=True)
class SiamRPNPPMobileConfig(SiamRPNConfig):
    """pysot ``siamrpn_mobilev2_l234_dwxcorr``: preset ``vot`` of ``configs/siamrpnpp_mobilev2.yaml``."""

    TRACKER = "siamrpnpp_mobilev2"
    PRESET = "vot"


@dataclass(frozen=True)
class SiamRPNAlexConfig(SiamRPNConfig):
    """DaSiamRPN's released ``SiamRPNvot`` (AlexNet, up-channel correlation, search 271): preset ``vot`` of
    ``configs/siamrpn.yaml``."""

    TRACKER = "siamrpn"
    PRESET = "vot"


# --------------------------------------------------------------------------- trackers


@TRACKERS.register("siamrpn")
def build_siamrpn(weights=None, device=None, **options) -> SiameseTracker:
    """SiamRPN: AlexNet + up-channel RPN (DaSiamRPN's SiamRPNvot / SiamRPNotb settings)."""
    return make_tracker(
        "siamrpn", SiamRPNAlexConfig, AnchorCore, weights, device, importer=dasiamrpn_importer, **options
    )


@TRACKERS.register("siamrpnpp_alexnet")
def build_siamrpnpp_alexnet(weights=None, device=None, **options) -> SiameseTracker:
    """SiamRPN++ with the AlexNet backbone and a depth-wise RPN (pysot ``siamrpn_alex_dwxcorr``)."""
    return make_tracker(
        "siamrpnpp_alexnet", SiamRPNPPAlexConfig, AnchorCore, weights, device, importer=pysot_importer, **options
    )


@TRACKERS.register("siamrpnpp_r50")
def build_siamrpnpp_r50(weights=None, device=None, **options) -> SiameseTracker:
    """SiamRPN++ with ResNet-50 and three fused depth-wise RPNs (pysot ``siamrpn_r50_l234_dwxcorr``)."""
    return make_tracker(
        "siamrpnpp_r50", SiamRPNPPR50Config, AnchorCore, weights, device, importer=pysot_importer, **options
    )


@TRACKERS.register("siamrpnpp_mobilev2")
def build_siamrpnpp_mobilev2(weights=None, device=None, **options) -> SiameseTracker:
    """SiamRPN++ with MobileNetV2 (pysot ``siamrpn_mobilev2_l234_dwxcorr``)."""
    return make_tracker(
        "siamrpnpp_mobilev2", SiamRPNPPMobileConfig, AnchorCore, weights, device, importer=pysot_importer, **options
    )


__all__ = [  # the engine's anchor core and configs are imported from here by tracker modules too
    "AnchorCore",
    "CoreConfig",
    "PointCore",
    "SiamRPNAlexConfig",
    "SiamRPNConfig",
    "SiamRPNPPAlexConfig",
    "SiamRPNPPMobileConfig",
    "SiamRPNPPR50Config",
    "dasiamrpn_importer",
    "make_tracker",
    "pysot_importer",
]
