"""SiamRPN++ on the Lite0 trunk (``siamrpnpp_lite0``): the anchor core with the depth-wise RPN model of
:mod:`siamkit.nn.lite0_trackers` (the shipped weights read two trunk levels, fused); settings in
``configs/siamrpnpp_lite0.yaml``."""

from __future__ import annotations

from siamkit.config import TRACKERS
from siamkit.trackers.siamrpn import AnchorCore, SiamRPNConfig, make_tracker


@TRACKERS.register("siamrpnpp_lite0")
def build_siamrpnpp_lite0(weights=None, device=None, **options):
    """SiamRPN++ (depth-wise correlation, anchors) on the ImageNet EfficientNet-Lite0 trunk, trained here."""
    return make_tracker("siamrpnpp_lite0", SiamRPNConfig, AnchorCore, weights, device, **options)
