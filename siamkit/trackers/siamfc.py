"""SiamFC: fully-convolutional Siamese tracking with a multi-scale search (reference §3).

Per frame and target: crop K search squares of side ``x_sz·f`` (f = step^{−1}, 1, step), score
them against the cached template, upsample each response ×16 (bicubic), damp the off-centre
scales, keep the scale with the highest peak, normalise it and mix in a sum-1 Hann window,
move the centre by the peak's displacement and damp the scale change with ``scale_lr``.

Boxes follow siamfc-pytorch: centre ``x + (w − 1)/2`` in, ``(cx − (w − 1)/2, …)`` out.
Crops follow siamfc-pytorch too (``crop: siamfc``): a crop of side ``s`` starts at
``round(c − (s − 1)/2)``, centred on the target, and the padding colour is the mean rounded to
uint8; ``crop: pysot`` keeps the shared convention ``floor(c − s/2)`` (one pixel left/up), which
the shipped ``lite0`` preset was trained with (siamkit's training pairs are cut that way).
``uint8_crops`` resizes in uint8 as siamfc-pytorch does. ``rgb: true`` feeds RGB as the
siamfc-pytorch weights expect. ``clip_to_frame`` (a siamkit addition) keeps the centre inside
the image so a target that leaves never drags the search away forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from siamkit.config import PUBLISHED, TRACKERS, Published
from siamkit.errors import ConfigError
from siamkit.ops.crop import siamfc_crop_centres
from siamkit.ops.postprocess import exemplar_side, siamfc_select, upsample_responses
from siamkit.ops.windows import hann_window
from siamkit.trackers.build import build_model, resolve_config, resolve_device
from siamkit.trackers.engine import Core, SiameseTracker, crop_targets, frame_means, result_from_row


@dataclass(frozen=True)
class SiamFCConfig(Published):
    """huanglianghua/siamfc-pytorch ``siamfc.py`` (= bertinetto/siamese-fc 3-scale values): preset
    ``siamfc_pytorch`` of ``configs/siamfc.yaml``, the only place the values (``PUBLISHED``) are written."""

    TRACKER = "siamfc"
    PRESET = "siamfc_pytorch"

    model: str = PUBLISHED
    model_options: dict[str, Any] = PUBLISHED
    exemplar_size: int = PUBLISHED
    instance_size: int = PUBLISHED
    context_amount: float = PUBLISHED
    stride: int = PUBLISHED
    response_size: int = PUBLISHED
    response_up: int = PUBLISHED  # response map upsampling (bicubic)
    scale_num: int = PUBLISHED
    scale_step: float = PUBLISHED
    scale_penalty: float = PUBLISHED  # damping of the off-centre scales' peaks
    scale_lr: float = PUBLISHED
    window_influence: float = PUBLISHED
    rgb: bool = PUBLISHED  # channel order the network expects
    scale_clamp: tuple[float, float] | None = PUBLISHED  # search side kept within [lo, hi]× its first value
    clip_to_frame: bool = PUBLISHED
    crop: str = "siamfc"  # crop origin: "siamfc" round(c − (s − 1)/2), "pysot" floor(c − s/2)
    uint8_crops: bool = False  # uint8 resize like siamfc-pytorch (same pixels); False: the float crop
    source: str = PUBLISHED


class SiamFCCore(Core):
    """SiamFC over B targets: B·K search crops go through the network in one batch."""

    name = "siamfc"

    def __init__(self, model, config: SiamFCConfig, device):
        super().__init__(model, config, device)
        c = config
        self.upscale = c.response_size * c.response_up
        self.window = hann_window(self.upscale, device=device, normalise=True)
        half = c.scale_num // 2
        exps = torch.linspace(-half, half, c.scale_num, dtype=torch.float64, device=device)
        self.factors = c.scale_step**exps

    def _crop(self, frames, frame_index, centres, sizes, out_size, avg) -> torch.Tensor:
        """Crops in siamfc-pytorch's convention (or pysot's, ``crop: pysot``)."""
        if self.config.crop == "siamfc":
            centres, sizes = siamfc_crop_centres(centres, sizes)
            avg = torch.round(avg)  # siamfc-pytorch pads a uint8 image with the mean colour (rounded)
        elif self.config.crop != "pysot":
            raise ConfigError(f"crop must be 'siamfc' or 'pysot', not {self.config.crop!r}")
        return crop_targets(frames, frame_index, centres, sizes, out_size, avg, quantize=self.config.uint8_crops)

    def _prepare(self, crops: torch.Tensor) -> torch.Tensor:
        return crops[:, [2, 1, 0]] if self.config.rgb else crops

    def start(self, frames, frame_index, boxes):
        c = self.config
        b = torch.as_tensor(boxes, dtype=torch.float64, device=self.device)
        centre = b[:, :2] + (b[:, 2:] - 1) / 2
        size = b[:, 2:].clone()
        z_sz = exemplar_side(size, c.context_amount)
        avg = frame_means(frames, frame_index)
        z = self._crop(frames, frame_index, centre, z_sz, c.exemplar_size, avg)
        zf = self.model.template(self._prepare(z))
        frame_sizes = [[frames[i].shape[3], frames[i].shape[2]] for i in frame_index]
        x_sz = z_sz * (c.instance_size / c.exemplar_size)
        return {
            "centre": centre,
            "size": size,
            "z_sz": z_sz,
            "x_sz": x_sz,
            "x_sz0": x_sz.clone(),
            "avg": avg,
            "frame_size": torch.as_tensor(frame_sizes, dtype=torch.float64, device=self.device),
            "zf": zf,
        }

    def step(self, frames, frame_index, state):
        c = self.config
        b, k = state["centre"].shape[0], c.scale_num
        centre, size, x_sz = state["centre"], state["size"], state["x_sz"]
        sizes = (x_sz[:, None] * self.factors[None]).reshape(-1)  # target-major, scale-minor
        rep_index = np.repeat(np.asarray(frame_index), k)
        x = self._crop(
            frames,
            rep_index,
            centre.repeat_interleave(k, dim=0),
            sizes,
            c.instance_size,
            state["avg"].repeat_interleave(k, dim=0),
        )
        zf = _repeat(state["zf"], k)
        out = self.model.search(self._prepare(x), zf)
        resp = out["cls"] if isinstance(out, dict) else out
        up = upsample_responses(resp, c.response_up).reshape(b, k, self.upscale, self.upscale)
        scale, row, col, peak = siamfc_select(up, c.scale_penalty, self.window, c.window_influence)
        f = self.factors[scale]
        disp = torch.stack([col, row], dim=1).to(torch.float64) - (self.upscale - 1) / 2
        disp = disp * (c.stride / c.response_up) * (x_sz * f / c.instance_size)[:, None]
        centre = centre + disp
        if c.clip_to_frame:
            centre = torch.minimum(torch.clamp(centre, min=0), state["frame_size"])
        factor = (1 - c.scale_lr) + c.scale_lr * f
        if c.scale_clamp is not None:
            lo, hi = c.scale_clamp
            new_x = torch.clamp(x_sz * factor, min=lo * state["x_sz0"], max=hi * state["x_sz0"])
            factor = new_x / x_sz
        size = size * factor[:, None]
        new_state = dict(state)
        new_state.update(centre=centre, size=size, z_sz=state["z_sz"] * factor, x_sz=x_sz * factor)
        rows = torch.cat([centre - (size - 1) / 2, size, peak[:, None]], dim=1).cpu().numpy()
        return new_state, [result_from_row(r) for r in rows]


def _repeat(zf: Any, k: int) -> Any:
    if isinstance(zf, torch.Tensor):
        return zf.repeat_interleave(k, dim=0)
    return type(zf)(_repeat(z, k) for z in zf)


def siamfc_importer(path, model):
    from siamkit.importers.siamfc import import_checkpoint

    return import_checkpoint(path, model)


@TRACKERS.register("siamfc")
def build_siamfc(weights=None, device=None, config=None, preset=None, **overrides) -> SiameseTracker:
    """SiamFC (AlexNet, 3 scales) with siamfc-pytorch's settings."""
    cfg = resolve_config(SiamFCConfig, "siamfc", config, preset, overrides)
    dev = resolve_device(device)
    model = build_model(cfg.model, dict(cfg.model_options), weights, dev, siamfc_importer, tracker="siamfc")
    return SiameseTracker(SiamFCCore(model, cfg, dev), name="siamfc")
