"""pysot / siamban experiment files (``config.yaml``, yacs, upper case) read as siamkit tracker configs."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from siamkit.config import from_dict

log = logging.getLogger("siamkit")


def _pysot_model(data: dict[str, Any]) -> str | None:
    """The siamkit network a pysot/siamban experiment file describes (None when unclear)."""

    def get(section: str, key: str) -> Any:
        body = data.get(section)
        return body.get(key) if isinstance(body, dict) else None

    backbone = str(get("BACKBONE", "TYPE") or "").lower()
    if get("MASK", "MASK"):
        return "siammask_r50"
    if "BAN" in data and get("BAN", "BAN") is not False:
        return "siamban_r50"
    if backbone.startswith("resnet50"):
        return "siamrpnpp_r50"
    if backbone.startswith("mobilenetv2"):
        return "siamrpnpp_mobilev2"
    if backbone.startswith("alexnet"):
        return "siamrpn_alexnet" if get("RPN", "TYPE") == "UPChannelRPN" else "siamrpnpp_alexnet"
    return None


# pysot / siamban experiment files (yacs, upper case): TRACK/ANCHOR/POINT keys → siamkit fields.
PYSOT_KEYS = {
    ("TRACK", "PENALTY_K"): "penalty_k",
    ("TRACK", "WINDOW_INFLUENCE"): "window_influence",
    ("TRACK", "LR"): "lr",
    ("TRACK", "EXEMPLAR_SIZE"): "exemplar_size",
    ("TRACK", "INSTANCE_SIZE"): "instance_size",
    ("TRACK", "BASE_SIZE"): "base_size",
    ("TRACK", "CONTEXT_AMOUNT"): "context_amount",
    ("TRACK", "LOST_INSTANCE_SIZE"): "lost_instance_size",
    ("TRACK", "CONFIDENCE_LOW"): "confidence_low",
    ("TRACK", "CONFIDENCE_HIGH"): "confidence_high",
    ("TRACK", "MASK_THERSHOLD"): "mask_threshold",  # sic: pysot's spelling
    ("TRACK", "MASK_THRESHOLD"): "mask_threshold",
    ("ANCHOR", "STRIDE"): "stride",
    ("ANCHOR", "RATIOS"): "ratios",
    ("ANCHOR", "SCALES"): "scales",
    ("POINT", "STRIDE"): "stride",
}


def from_pysot(cls: type, data: dict[str, Any], where: str = "pysot config") -> Any:
    """Translate a pysot/siamban experiment ``config.yaml`` into the tracker config ``cls``.

    Tracking values (``TRACK``, ``ANCHOR``, ``POINT``) are taken over; the fusion flag
    ``RPN``/``BAN.KWARGS.weighted`` and the neck widths ``ADJUST.KWARGS.out_channels`` go to
    ``model_options``; ``BACKBONE.TYPE``/``RPN.TYPE``/``MASK``/``BAN`` pick the network;
    ``TRACK.TYPE: SiamRPNLTTracker`` turns on ``long_term``. Everything
    else (training, data sets, legacy keys such as ``BACKBONE.LAYERS``) is ignored with one
    warning naming it, so old files that pysot's strict loader rejects still load.
    """
    fields = {f.name for f in dataclasses.fields(cls)}
    values = dataclasses.asdict(cls())
    model = _pysot_model(data)
    if model is not None and model != values.get("model"):
        values["model"], values["model_options"] = model, {}
    ignored = []
    for section, body in data.items():
        if not isinstance(body, dict):
            ignored.append(section)
            continue
        for key, value in body.items():
            name = PYSOT_KEYS.get((section, key))
            if name in fields:
                values[name] = value
            elif (section, key) == ("TRACK", "TYPE") and value == "SiamRPNLTTracker" and "long_term" in fields:
                values["long_term"] = True
            elif (section, key) in (("RPN", "KWARGS"), ("BAN", "KWARGS")) and isinstance(value, dict):
                if "weighted" in value:
                    values["model_options"] = {**values.get("model_options", {}), "weighted": bool(value["weighted"])}
            elif (section, key) == ("ADJUST", "KWARGS") and isinstance(value.get("out_channels"), list):
                channels = [int(c) for c in value["out_channels"]]
                values["model_options"] = {**values.get("model_options", {}), "neck_channels": channels}
            elif (section, key) != ("TRACK", "TYPE"):
                ignored.append(f"{section}.{key}")
    if ignored:
        log.warning("%s: ignored pysot settings that do not affect tracking: %s", where, ", ".join(ignored))
    if "adaptive" in fields:
        values["adaptive"] = False  # DaSiamRPN's adaptive search is not part of pysot
    values["source"] = f"translated from {where}"
    return from_dict(cls, values, where=where)


__all__ = ["PYSOT_KEYS", "from_pysot"]
