"""The end-to-end comparisons with the reference implementations, shared by the tests and ``benchmarks/parity.py``.

Each ``*_env()`` context manager imports a peer from ``../shared/peers-src`` (through
:func:`conftest.peer_sources`, with its shims) and yields what the comparisons need; each
``compare_*`` builds the peer's model with fixed random weights made usable as in ``peer_setup``,
imports those weights into siamkit, runs both trackers on the same frames and returns a
:class:`Comparison` (both box lists and the measured differences). The tests assert on it; the
benchmark writes it to ``benchmarks/results/parity.json``.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from conftest import PUBLISHED_PRESETS, peer_sources
from peer_setup import (
    calibrate_batchnorm,
    head_input,
    load_clip,
    mask_iou,
    max_box_difference,
    plant_readout,
    shrink,
)

from siamkit.trackers import create_tracker

A = 5  # anchors per cell
NARROW = 64  # neck / RPN width of the multi-level models (published: 256)
R50_BLOCKS = [1, 1, 1, 1]  # published [3, 4, 6, 3]; one block per stage still runs the dilated layers 3–4
R50_INSTANCE = 191  # search size of the ResNet-50 comparisons (published 255): a 17×17 map instead of 25×25
FUSION = [0.3, 1.0, -0.4]  # learned level weights of the weighted MultiRPN (softmaxed), distinct per level




def load_experiment(cfg, pristine, path: Path, changes: dict) -> None:
    """Reset a pysot/siamban yacs ``cfg`` in place (the object their modules imported) to ``pristine``, merge an
    experiment's YAML and apply dotted-key ``changes``; CPU only."""
    cfg.defrost()
    cfg.clear()  # forget the previous experiment
    cfg.update(pristine.clone())
    cfg.merge_from_file(str(path))
    for key, value in changes.items():
        node = cfg
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    cfg.CUDA = False


def peaked_outputs(size: int, anchor: int, row: int, col: int, rng) -> tuple[torch.Tensor, torch.Tensor]:
    """cls/loc maps with one sharp maximum (anchor, row, col) and a weaker one at the mirrored cell."""
    cls = torch.zeros(1, 2 * A, size, size)
    cls[0, A:] = -6.0
    cls[0, A + anchor, row, col] = 8.0
    cls[0, A + (anchor + 2) % A, size - 1 - row, size - 1 - col] = 3.0
    loc = torch.from_numpy(rng.normal(0, 0.3, (1, 4 * A, size, size)).astype(np.float32))
    return cls, loc


@dataclass
class Comparison:
    """One tracker against its reference on one clip: both box lists (x, y, w, h, 0-based) and differences."""

    tracker: str
    peer: str
    compared: str
    ours: list
    theirs: list
    scores_ours: list
    scores_theirs: list
    mask_ious: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def max_box_px(self) -> float:
        return max_box_difference(self.ours, self.theirs)

    @property
    def min_mask_iou(self) -> float | None:
        return min(self.mask_ious) if self.mask_ious else None

    @property
    def travel_px(self) -> float:
        """How far the reference's box moved over the clip (a comparison of boxes that stay put proves little)."""
        return float(np.hypot(*(np.asarray(self.theirs[-1][:2]) - np.asarray(self.theirs[0][:2]))))


# --------------------------------------------------------------------------- pysot (SiamRPN++, SiamMask)

PYSOT_CASES = {
    # siamkit tracker: (pysot experiment, cfg changes, siamkit model_options, siamkit config overrides)
    "siamrpnpp_alexnet": ("siamrpn_alex_dwxcorr", {"RPN.KWARGS.out_channels": NARROW}, {"hidden": NARROW}, {}),
    "siamrpnpp_mobilev2": (
        "siamrpn_mobilev2_l234_dwxcorr",
        {"ADJUST.KWARGS.out_channels": [NARROW] * 3, "RPN.KWARGS.in_channels": [NARROW] * 3},
        {"neck_channels": [NARROW] * 3},
        {},
    ),
    "siamrpnpp_r50": (
        "siamrpn_r50_l234_dwxcorr",
        {
            "ADJUST.KWARGS.out_channels": [NARROW] * 3,
            "RPN.KWARGS.in_channels": [NARROW] * 3,
            "TRACK.INSTANCE_SIZE": R50_INSTANCE,
        },
        {"neck_channels": [NARROW] * 3, "blocks": R50_BLOCKS},
        {"instance_size": R50_INSTANCE},
    ),
    "siammask": ("siammask_r50_l3", {}, {"blocks": R50_BLOCKS}, {}),
}
PYSOT_COMPARED = {
    "siamrpnpp_alexnet": "boxes and scores, 30 frames; RPN width 64",
    "siamrpnpp_mobilev2": "boxes and scores, 30 frames; neck/RPN width 64",
    "siamrpnpp_r50": (
        f"boxes and scores, 30 frames; ResNet-50 with 1 block per stage, neck/RPN width 64, search {R50_INSTANCE}"
    ),
    "siammask": "boxes, masks (IoU) and rotated boxes, 30 frames; ResNet-50 with 1 block per stage",
}


class OpenCV3Contours:
    """``cv2`` as pysot's SiamMask tracker expects it: ``findContours`` returns (image, contours, hierarchy)."""

    def __getattr__(self, name):
        return getattr(cv2, name)

    @staticmethod
    def findContours(*args, **kwargs):  # noqa: N802 (OpenCV's name)
        return (None, *cv2.findContours(*args, **kwargs)[-2:])


@contextlib.contextmanager

def pysot_env():
    """pysot's config, model builder and tracker builder (the config restored on exit)."""
    with peer_sources("pysot") as folder:
        from pysot.core.config import cfg
        from pysot.models.backbone.resnet_atrous import Bottleneck, ResNet
        from pysot.models.model_builder import ModelBuilder
        from pysot.tracker import siammask_tracker
        from pysot.tracker.tracker_builder import build_tracker

        siammask_tracker.cv2 = OpenCV3Contours()  # pysot unpacks OpenCV 3's three findContours results
        pristine = cfg.clone()

        def configure(experiment: str, changes: dict) -> None:
            load_experiment(cfg, pristine, folder / "experiments" / experiment / "config.yaml", changes)

        def model(experiment: str, changes: dict, blocks=None):
            configure(experiment, changes)
            torch.manual_seed(0)
            m = ModelBuilder()
            if blocks is not None:  # the same atrous ResNet-50 class, fewer blocks per stage
                m.backbone = ResNet(Bottleneck, blocks, cfg.BACKBONE.KWARGS.used_layers)
            return m.eval()

        try:
            yield {"cfg": cfg, "model": model, "build_tracker": build_tracker}
        finally:
            cfg.clear()
            cfg.update(pristine)


def rpn_branches(head) -> list:
    """The depth-wise RPNs of a pysot head (one, or ``rpn2``… of a MultiRPN)."""
    if hasattr(head, "cls"):
        return [head]
    return [getattr(head, name) for name in sorted(n for n, _ in head.named_children() if n.startswith("rpn"))]


def prepare_pysot(model, tracker, frames, box) -> None:
    """Calibrate BatchNorm on frame 0, make the box deltas small, plant the score read-outs."""
    calibrate_batchnorm(model, [lambda: tracker.init(frames[0], list(box)), lambda: tracker.track(frames[0])])
    with torch.no_grad():
        if getattr(model.rpn_head, "weighted", False):
            model.rpn_head.cls_weight.copy_(torch.tensor(FUSION))
            model.rpn_head.loc_weight.copy_(torch.tensor(FUSION[::-1]))
        for rpn in rpn_branches(model.rpn_head):
            shrink(rpn.loc.head[-1], 0.2)
            plant_readout(head_input(rpn.cls.head, lambda: tracker.track(frames[0])), rpn.cls.head[-1], range(A, 2 * A))


def compare_pysot(name: str, env: dict, workdir: Path) -> Comparison:
    """siamkit's ``name`` vs pysot's tracker on the same weights and the first 31 frames of Crossing."""
    frames, box, _ = load_clip()
    experiment, changes, options, overrides = PYSOT_CASES[name]
    model = env["model"](experiment, changes, R50_BLOCKS if "blocks" in options else None)
    prepare_pysot(model, env["build_tracker"](model), frames, box)
    path = Path(workdir) / f"{name}.pth"
    torch.save(model.state_dict(), path)
    ours = create_tracker(name, weights=str(path), device="cpu", model_options=options, uint8_crops=True,
                          preset=PUBLISHED_PRESETS.get(name), **overrides)
    theirs = env["build_tracker"](model)
    got, want = [], []
    with torch.no_grad():
        theirs.init(frames[0], list(box))
        ours.init(frames[0], box)
        for frame in frames[1:]:
            want.append(theirs.track(frame))
            got.append(ours.track(frame))
    result = Comparison(
        tracker=name,
        peer="pysot",
        compared=PYSOT_COMPARED[name],
        ours=[r.box for r in got],
        theirs=[np.asarray(w["bbox"], np.float64) for w in want],
        scores_ours=[float(r.score) for r in got],
        scores_theirs=[float(w["best_score"]) for w in want],
    )
    if name == "siammask":
        threshold = env["cfg"].TRACK.MASK_THERSHOLD
        result.mask_ious = [mask_iou(r.mask > threshold, w["mask"] > threshold) for r, w in zip(got, want, strict=True)]
        result.extra["mask_pixels_theirs"] = [int((w["mask"] > threshold).sum()) for w in want]
        result.extra["max_polygon_px"] = float(
            max(np.abs(r.polygon.reshape(-1) - np.asarray(w["polygon"])).max() for r, w in zip(got, want, strict=True))
        )
    return result


# --------------------------------------------------------------------------- siamfc-pytorch (SiamFC)


@contextlib.contextmanager
def siamfc_env():
    """siamfc-pytorch's ``TrackerSiamFC`` and its ``ops`` module."""
    with peer_sources("siamfc-pytorch"):
        from siamfc import ops
        from siamfc.siamfc import TrackerSiamFC

        yield {"Tracker": TrackerSiamFC, "ops": ops}


def compare_siamfc(env: dict, workdir: Path) -> Comparison:
    """siamkit's ``siamfc`` vs siamfc-pytorch's ``TrackerSiamFC`` on the same AlexNetV1 weights.

    The network is siamfc-pytorch's own, Xavier-initialised under a fixed seed, with its BatchNorm
    statistics set from frame 0's exemplar and search crops. No planting is needed: SiamFC's score is
    the correlation of the target's own template features with the search features (a matched filter),
    so the 3 upsampled responses peak on the target. siamfc-pytorch reads RGB frames and 1-based boxes;
    siamkit gets the BGR frames and 0-based boxes. Both crop in uint8 (``uint8_crops``).
    """
    frames, box, _ = load_clip()
    rgb = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames]
    one_based = np.asarray(box, np.float64) + [1, 1, 0, 0]
    torch.manual_seed(0)
    theirs = env["Tracker"]()
    theirs.init(rgb[0], one_based)

    def crop(side: float, out: int) -> torch.Tensor:
        patch = env["ops"].crop_and_resize(rgb[0], theirs.center, side, out, border_value=theirs.avg_color)
        return torch.from_numpy(patch).permute(2, 0, 1)[None].float()

    z, x = crop(theirs.z_sz, 127), crop(theirs.x_sz, 255)
    calibrate_batchnorm(theirs.net, [lambda: theirs.net.backbone(z), lambda: theirs.net.backbone(x)])
    path = Path(workdir) / "siamfc.pth"
    torch.save(theirs.net.state_dict(), path)
    ours = create_tracker("siamfc", weights=str(path), device="cpu", uint8_crops=True, clip_to_frame=False,
                          preset=PUBLISHED_PRESETS["siamfc"])
    got, want = [], []
    theirs.init(rgb[0], one_based)
    ours.init(frames[0], box)
    for bgr, frame in zip(frames[1:], rgb[1:], strict=True):
        want.append(np.asarray(theirs.update(frame), np.float64) - [1, 1, 0, 0])
        got.append(ours.track(bgr))
    return Comparison(
        tracker="siamfc",
        peer="siamfc-pytorch",
        compared="boxes, 30 frames; full AlexNetV1, 3 scales, ×16 bicubic responses",
        ours=[r.box for r in got],
        theirs=want,
        scores_ours=[float(r.score) for r in got],
        scores_theirs=[],
    )


# --------------------------------------------------------------------------- foolwood/DaSiamRPN (SiamRPN, DaSiamRPN)


@contextlib.contextmanager
def dasiamrpn_env():
    """DaSiamRPN's ``code/`` (``net``, ``run_SiamRPN``) with two Python 2 semantics restored (files not edited).

    * ``generate_anchor``: ``ori = -(score_size / 2) * total_stride`` relies on Python 2's ``19 / 2 == 9``;
      under Python 3 the anchor grid starts at −76 instead of −72 (half a cell off). The shim shifts the
      grid back by ``(score_size / 2 − score_size // 2) · total_stride``.
    * ``round``: Python 2 rounds halves away from zero, Python 3 to even. The crop origin
      ``round(pos − (s + 1)/2)`` hits a half whenever the centre is a half pixel and the side odd (the
      first search crop of an integer box, typically), and Python 3 then crops one pixel up/left. The
      modules ``utils`` and ``run_SiamRPN`` get Python 2's ``round`` as a module global.
    """
    with peer_sources("DaSiamRPN", "code"):
        import net
        import run_SiamRPN
        import utils

        def round_py2(x, ndigits=None):
            assert ndigits is None
            return float(math.copysign(math.floor(abs(x) + 0.5), x))

        run_SiamRPN.round = utils.round = round_py2
        original = run_SiamRPN.generate_anchor

        def generate_anchor_py2(total_stride, scales, ratios, score_size):
            anchor = original(total_stride, scales, ratios, score_size)
            anchor[:, :2] += (score_size / 2 - score_size // 2) * total_stride
            return anchor

        run_SiamRPN.generate_anchor = generate_anchor_py2
        try:
            yield {"net": net, "run": run_SiamRPN, "generate_anchor_py3": original}
        finally:
            run_SiamRPN.generate_anchor = original


DASIAMRPN_CASES = ("siamrpn", "dasiamrpn")


@torch.no_grad()
def plant_upchannel(net, x: torch.Tensor, init, anchors: int = A, peak: float = 6.0, floor: float = -4.0) -> None:
    """Make an up-channel RPN's score peak on the target: the foreground kernels become the target's own
    search-adapted template features (a matched filter), the background kernels zero.

    The foreground kernel of every anchor is ``g · conv_cls2(z_f)`` (``conv_cls1``'s weights := ``g ·
    conv_cls2``'s), so the fg logit is ``g ·`` the correlation of the template's and the search's adapted
    features, maximal where the target is. One adapted channel ``c0`` is made constant (weights 0, bias 1)
    and its kernel entries ``β / k²``, which adds ``β``; ``g`` and ``β`` put frame 0's maximum at ``peak``
    and its median at ``floor``. The regression output is scaled so its deltas have a standard deviation
    of 0.1 (boxes stay near their anchors).
    """
    hidden = net.conv_cls2.out_channels
    w1, b1, w2, b2 = net.conv_cls1.weight, net.conv_cls1.bias, net.conv_cls2.weight, net.conv_cls2.bias
    w2[0].zero_()
    b2[0] = 1.0  # c0 = 0: a constant channel
    w1.zero_()
    b1.zero_()

    def set_fg(gain: float, beta: float, k2: int) -> None:
        for j in range(anchors, 2 * anchors):
            w1[j * hidden : (j + 1) * hidden] = gain * w2
            b1[j * hidden : (j + 1) * hidden] = gain * b2
            w1[j * hidden].zero_()
            b1[j * hidden] = beta / k2

    set_fg(1.0, 0.0, 1)
    init()
    k2 = net.cls1_kernel.shape[-1] ** 2
    delta, score = net(x)
    m = score[0, anchors].to(torch.float64)
    gain = (peak - floor) / float(m.max() - m.median())
    set_fg(gain, peak - gain * float(m.max()), k2)
    shrink(net.regress_adjust, 0.1 / float(delta.std()))
    init()


def compare_dasiamrpn(name: str, env: dict, workdir: Path) -> Comparison:
    """siamkit's ``siamrpn`` / ``dasiamrpn`` vs DaSiamRPN's ``SiamRPN_init`` / ``SiamRPN_track`` on the same weights.

    ``siamrpn``: the released ``SiamRPNvot`` network and settings (full width), on Crossing. ``dasiamrpn``:
    ``SiamRPNBIG``'s settings (adaptive search) on a ``SiamRPNvot``-width network (BIG's is 4× wider), on
    Biker, whose target covers < 0.4 % of the frame, so both search at 287. DaSiamRPN gets siamkit's
    centre ``x + (w − 1)/2`` and its state is reported as ``pos − sz/2`` (its ``cxy_wh_2_rect``), siamkit's
    convention too. Distractor-aware re-scoring is not compared: there is no public reference for it.
    """
    net_mod, run = env["net"], env["run"]
    clip = "Crossing" if name == "siamrpn" else "Biker"
    frames, box, _ = load_clip(clip)
    torch.manual_seed(0)
    net = net_mod.SiamRPNvot()
    options = {}
    if name == "dasiamrpn":
        with torch.device("meta"):  # read BIG's settings without allocating its 600 MB of weights
            net.cfg = dict(net_mod.SiamRPNBIG().cfg)
        options = {"model_options": {"width_mult": 1.0, "hidden": net.conv_cls2.out_channels}}
    pos = np.array([box[0] + (box[2] - 1) / 2, box[1] + (box[3] - 1) / 2])
    size = np.array(box[2:], np.float64)

    def init():
        return run.SiamRPN_init(frames[0], pos.copy(), size.copy(), net)

    calibrate_batchnorm(net, [lambda: run.SiamRPN_track(init(), frames[0])])
    seen = []
    handle = net.register_forward_hook(lambda m, i, o: seen.append(i[0].detach()))
    with torch.no_grad():
        state = run.SiamRPN_track(init(), frames[0])
    handle.remove()
    plant_upchannel(net, seen[-1], init)
    path = Path(workdir) / f"{name}.pth"
    torch.save(net.state_dict(), path)
    ours = create_tracker(name, weights=str(path), device="cpu", uint8_crops=True, preset=PUBLISHED_PRESETS.get(name),
                          **options)
    with torch.no_grad():
        state = init()
        ours.init(frames[0], box)
        got, want, scores = [], [], []
        for frame in frames[1:]:
            state = run.SiamRPN_track(state, frame)
            want.append(np.concatenate([state["target_pos"] - state["target_sz"] / 2, state["target_sz"]]))
            scores.append(float(state["score"]))
            got.append(ours.track(frame))
    what = {
        "siamrpn": "boxes and scores, 30 frames; the released SiamRPNvot network (AlexNet, up-channel RPN)",
        "dasiamrpn": "boxes and scores, 30 frames of Biker (adaptive search 287); SiamRPNBIG settings, vot width",
    }
    return Comparison(
        tracker=name,
        peer="DaSiamRPN",
        compared=what[name],
        ours=[r.box for r in got],
        theirs=want,
        scores_ours=[float(r.score) for r in got],
        scores_theirs=scores,
        extra={"instance_size": int(state["p"].instance_size)},
    )


# --------------------------------------------------------------------------- hqucv/siamban (SiamBAN)

SIAMBAN_INSTANCE = 191  # search size (published 255): a 17×17 map, to keep the ResNet-50 comparison fast
LOC_SCALE = [1.0, 0.8, 1.25]  # the learned exp() scales of the three box branches, distinct per level


@contextlib.contextmanager
def siamban_env():
    """siamban's config, model builder and tracker builder (the config restored on exit)."""
    with peer_sources("siamban") as folder:
        from siamban.core.config import cfg
        from siamban.models.backbone.resnet_atrous import Bottleneck, ResNet
        from siamban.models.model_builder import ModelBuilder
        from siamban.tracker.tracker_builder import build_tracker

        pristine = cfg.clone()

        def model(experiment: str, changes: dict, blocks):
            load_experiment(cfg, pristine, folder / "experiments" / experiment / "config.yaml", changes)
            torch.manual_seed(0)
            m = ModelBuilder()
            m.backbone = ResNet(Bottleneck, blocks, cfg.BACKBONE.KWARGS.used_layers)
            return m.eval()

        try:
            yield {"cfg": cfg, "model": model, "build_tracker": build_tracker}
        finally:
            cfg.clear()
            cfg.update(pristine)


def compare_siamban(env: dict, workdir: Path) -> Comparison:
    """siamkit's ``siamban`` vs siamban's ``SiamBANTracker`` (``siamban_r50_l234``) on the same weights.

    Narrowed like the pysot ResNet-50 case (1 block per stage, neck width 64, search 191). BatchNorm is
    calibrated on frame 0, each level's score read-out is planted (``plant_readout``, foreground channel
    1), the fusion weights and ``loc_scale`` are made distinct per level, and each box branch's last conv
    is scaled by 0.05 with its biases set so that ``exp(loc_scale · l)`` ≈ half the target's width/height
    in search-crop pixels (boxes near the target's size, varying a little from cell to cell).
    """
    frames, box, _ = load_clip()
    changes = {
        "ADJUST.KWARGS.out_channels": [NARROW] * 3,
        "BAN.KWARGS.in_channels": [NARROW] * 3,
        "TRACK.INSTANCE_SIZE": SIAMBAN_INSTANCE,
    }
    model = env["model"]("siamban_r50_l234", changes, R50_BLOCKS)
    tracker = env["build_tracker"](model)
    calibrate_batchnorm(model, [lambda: tracker.init(frames[0], list(box)), lambda: tracker.track(frames[0])])
    w, h = box[2:]
    s_z = np.sqrt((w + (w + h) / 2) * (h + (w + h) / 2))
    half = np.log(np.array([w, h, w, h]) * (127 / s_z) / 2)  # l, t, r, b in crop pixels
    with torch.no_grad():
        model.head.cls_weight.copy_(torch.tensor(FUSION))
        model.head.loc_weight.copy_(torch.tensor(FUSION[::-1]))
        model.head.loc_scale.copy_(torch.tensor(LOC_SCALE))
        for i, scale in zip((2, 3, 4), LOC_SCALE, strict=True):
            branch = getattr(model.head, f"box{i}")
            last = branch.loc.head[-1]
            shrink(last, 0.05)
            last.bias.copy_(torch.from_numpy(half / scale).to(last.bias))
            plant_readout(head_input(branch.cls.head, lambda: tracker.track(frames[0])), branch.cls.head[-1], [1])
    path = Path(workdir) / "siamban.pth"
    torch.save(model.state_dict(), path)
    ours = create_tracker(
        "siamban",
        preset=PUBLISHED_PRESETS["siamban"],
        weights=str(path),
        device="cpu",
        model_options={"neck_channels": [NARROW] * 3, "blocks": R50_BLOCKS},
        instance_size=SIAMBAN_INSTANCE,
        uint8_crops=True,
    )
    theirs = env["build_tracker"](model)
    got, want = [], []
    with torch.no_grad():
        theirs.init(frames[0], list(box))
        ours.init(frames[0], box)
        for frame in frames[1:]:
            want.append(theirs.track(frame))
            got.append(ours.track(frame))
    return Comparison(
        tracker="siamban",
        peer="siamban",
        compared=(
            f"boxes and scores, 30 frames; ResNet-50 with 1 block per stage, neck width 64, search {SIAMBAN_INSTANCE}, "
            "distinct fusion weights and loc scales"
        ),
        ours=[r.box for r in got],
        theirs=[np.asarray(w_["bbox"], np.float64) for w_ in want],
        scores_ours=[float(r.score) for r in got],
        scores_theirs=[float(w_["best_score"]) for w_ in want],
    )
