"""Small stand-in networks with the model interface the trackers expect (template / search).

They let the tracker tests run in milliseconds and check tracker logic independently of the
real backbones. A stride-8 patchify convolution gives 127 → 15 and 255 → 31 feature maps;
depth-wise correlation with the (optionally centre-cropped to 7×7) template gives score maps
of the published sizes, cropped to ``(instance − 127)//8 + 1 + base`` like the real models.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from conftest import PUBLISHED_PRESETS
from torch import nn


def _xcorr_depthwise(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    out = F.conv2d(x.reshape(1, b * c, h, w), z.reshape(b * c, 1, z.shape[2], z.shape[3]), groups=b * c)
    return out.reshape(b, c, out.shape[2], out.shape[3])


class StandIn(nn.Module):
    """kind: "anchor" (2A/4A channels), "point" (2/4), "siamfc" (1 channel response)."""

    def __init__(self, kind: str = "anchor", base_size: int = 8, anchor_num: int = 5, channels: int = 8, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.kind = kind
        self.base_size = base_size
        self.anchor_num = anchor_num if kind == "anchor" else 1
        self.stride = 8
        self.exemplar_size = 127
        self.instance_size = 255
        self.score_size = 17 if kind == "siamfc" else (255 - 127) // 8 + 1 + base_size
        self.embed = nn.Conv2d(3, channels, 8, stride=8)
        with torch.no_grad():
            self.embed.weight.copy_(torch.randn(self.embed.weight.shape, generator=g) * 0.02)
            self.embed.bias.zero_()
        a = self.anchor_num
        self.cls = nn.Conv2d(channels, 1 if kind == "siamfc" else 2 * a, 1)
        self.loc = nn.Conv2d(channels, 4 * a, 1)
        with torch.no_grad():
            self.cls.weight.copy_(torch.randn(self.cls.weight.shape, generator=g) * 0.1)
            self.loc.weight.copy_(torch.randn(self.loc.weight.shape, generator=g) * 0.05)
            self.loc.bias.zero_()
            self.cls.bias.copy_(torch.randn(self.cls.bias.shape, generator=g) * 0.1)

    def features(self, img: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.embed(img / 255.0 - 0.5))

    def template(self, z: torch.Tensor) -> torch.Tensor:
        f = self.features(z)
        if self.base_size:
            c = (f.shape[-1] - 7) // 2
            f = f[:, :, c : c + 7, c : c + 7]
        return f

    def search(self, x: torch.Tensor, zf: torch.Tensor) -> dict[str, torch.Tensor]:
        corr = _xcorr_depthwise(self.features(x), zf)
        size = (x.shape[-1] - 127) // 8 + 1 + (0 if self.kind == "siamfc" else self.base_size)
        o = (corr.shape[-1] - size) // 2
        corr = corr[:, :, o : o + size, o : o + size]
        if self.kind == "siamfc":
            return {"cls": corr.sum(1, keepdim=True) * 0.1}
        loc = self.loc(corr)
        if self.kind == "point":
            loc = torch.exp(loc) * 16.0
        return {"cls": self.cls(corr), "loc": loc}


def standin_tracker(name: str, **options):
    """A registered tracker whose model is replaced by a stand-in of the right kind."""
    import siamkit.trackers.siamban as ban
    import siamkit.trackers.siamfc as fc
    import siamkit.trackers.siamrpn as rpn
    from siamkit.trackers.build import resolve_config
    from siamkit.trackers.engine import SiameseTracker

    table = {
        "siamfc": (fc.SiamFCConfig, fc.SiamFCCore, "siamfc"),
        "siamrpnpp_r50": (rpn.SiamRPNPPR50Config, rpn.AnchorCore, "anchor"),
        "siamrpnpp_alexnet": (rpn.SiamRPNPPAlexConfig, rpn.AnchorCore, "anchor"),
        "siamrpnpp_mobilev2": (rpn.SiamRPNPPMobileConfig, rpn.AnchorCore, "anchor"),
        "siamrpn": (rpn.SiamRPNAlexConfig, rpn.AnchorCore, "anchor"),
        "siamban": (ban.SiamBANConfig, ban.BANCore, "point"),
        "siamban_acm": (ban.SiamBANACMConfig, ban.ACMCore, "point"),
    }
    extra = {}
    try:
        import siamkit.trackers.dasiamrpn as da

        table["dasiamrpn"] = (da.DaSiamRPNConfig, da.DaSiamRPNCore, "anchor")
    except ImportError:  # pragma: no cover - while the module is written
        pass
    cfg_cls, core_cls, kind = table[name]
    seed = options.pop("seed", 0)
    cfg = resolve_config(cfg_cls, name, options.pop("config", None), options.pop("preset", PUBLISHED_PRESETS.get(name)),
                         options)
    base = getattr(cfg, "base_size", 0)
    model = StandIn(kind, base_size=base, seed=seed, **extra).eval()
    return SiameseTracker(core_cls(model, cfg, torch.device("cpu")), name=name)
