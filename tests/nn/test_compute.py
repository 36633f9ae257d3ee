"""Multiply-accumulates per call against tracking.md §11 "Compute per frame [C]" (conv/linear MACs including
the dynamic correlation kernels), counted with torch's FlopCounterMode on the meta device (FLOPs = 2·MACs).

Our ``template()`` already runs the head's template-side convs (pysot re-runs them every frame), so for the
depth-wise models only template + per-frame is comparable; for SiamFC, SiamRPN (up-channel) and ACM, whose
reference also caches that half, each number is compared on its own.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import siamkit.nn  # noqa: F401
from siamkit.config import MODELS

CASES = [
    # name, kwargs, instance, search batch, doc template GMACs, doc per-frame GMACs, compare separately
    ("siamfc_alexnet", {}, 255, 3, 0.46, 8.17, True),
    ("siamrpn_alexnet", {}, 271, 1, 0.99, 5.60, True),
    ("siamrpn_alexnet", {"width_mult": 2.0, "hidden": 512}, 271, 1, 3.73, 21.1, True),
    ("siamrpnpp_alexnet", {}, 287, 1, 0.71, 6.47, False),
    ("siamrpnpp_mobilev2", {}, 255, 1, 0.86, 7.00, False),
    ("siamrpnpp_r50", {}, 255, 1, 10.65, 48.8, False),
    ("siamrpnpp_r50", {"neck_channels": (128, 256, 512)}, 255, 1, 10.76, 51.7, False),
    ("siamrpnpp_r50", {"neck_channels": (128, 256, 512)}, 831, 1, 10.76, 577, False),
    ("siammask_r50", {}, 255, 1, 3.37, 17.0, False),  # per frame includes one refine call
    ("siamban_r50", {}, 255, 1, 10.65, 48.8, False),
    ("siamban_acm_r50", {}, 255, 1, 10.75, 59.0, True),
]


def _gmacs(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 2e9


@pytest.mark.parametrize(("name", "kw", "instance", "nx", "doc_t", "doc_s", "separate"), CASES)
def test_macs_match_reference(name, kw, instance, nx, doc_t, doc_s, separate):
    with torch.device("meta"):
        model = MODELS.build(name, **kw)
    model.eval()
    z = torch.empty(1, 3, 127, 127, device="meta")
    x = torch.empty(nx, 3, instance, instance, device="meta")
    args = (torch.ones(1, 2),) if name == "siamban_acm_r50" else ()
    holder = {}
    t = _gmacs(lambda: holder.setdefault("zf", model.template(z, *args)))

    def per_frame():
        holder["out"] = model.search(x, holder["zf"])
        if name == "siammask_r50":
            model.refine_mask(holder["out"], (12, 12))

    s = _gmacs(per_frame)
    # output shapes at the published sizes come for free (see also test_models.py)
    size = model.score_size_for(instance)
    cls_channels = 1 if model.kind == "siamfc" else 2 * max(model.anchor_num, 1)
    assert holder["out"]["cls"].shape == (nx, cls_channels, size, size)
    if model.kind != "siamfc":
        assert holder["out"]["loc"].shape == (nx, 4 * max(model.anchor_num, 1), size, size)
    assert t + s == pytest.approx(doc_t + doc_s, rel=1e-3, abs=0.011)
    if separate:
        assert t == pytest.approx(doc_t, abs=0.006)
        assert s == pytest.approx(doc_s, rel=1e-3, abs=0.006)
    else:  # the cached head convs move from per-frame to template
        assert t > doc_t and s < doc_s
