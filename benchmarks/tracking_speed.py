"""Tracking speed of siamkit's trackers, side by side with pysot and OpenCV, on 1280×720 frames.

For every published tracker config (siamfc, siamrpn, siamrpnpp_alexnet, siamrpnpp_mobilev2,
siamrpnpp_r50, siammask, siamban, siamban_acm), siamrpnpp_lite0, and nanotrack when its
weights are found:

* ``e2e``: frames/s of ``track(frame)`` end to end (crop + forward + post-processing + the box
  back on the host), frames decoded beforehand; batch 1 (:class:`SiameseTracker`) and N targets
  in the same frame (:class:`BatchedTracker`, one step = N boxes);
* ``network``: forwards/s of ``model.search(x, zf)`` alone, on the exact inputs the tracker builds;
* ``memory``: peak memory of the e2e run — CPU: growth of the process's peak RSS (VmHWM, reset
  through ``/proc/self/clear_refs`` before each run; falls back to ``ru_maxrss``); CUDA:
  ``torch.cuda.max_memory_allocated``.

Times are medians over the timed frames after warm-up frames (wall clock; ``cpu_ms`` is the
process CPU time of the same frames). On CUDA every timed region ends with
``torch.cuda.synchronize()`` and fp16/bf16 autocast variants are run as well.

The ``pysot`` section builds STVIR/pysot's SiamRPN++ AlexNet (and ResNet-50 with ``--pysot-models``)
from its published experiment config, initialises it randomly with a fixed seed, saves the state
dict, loads the same weights into siamkit through :mod:`siamkit.importers.pysot`, feeds the same
frames to both (interleaved frame by frame, so load changes hit both alike) and reports the speed
ratio, a time profile (crop / forward / post-processing) and the box agreement: free-running, and
re-synchronised on the ground-truth box every frame (one step each, the meaningful comparison with
random weights), plus the crop and network differences that explain it. pysot is not a
dependency: check its source out into ``third_party/pysot`` and install ``yacs`` beside it::

    pip install --no-deps --target benchmarks/.peers/pysot_deps yacs
    python benchmarks/tracking_speed.py --threads 2          # full run (many minutes on a CPU)
    python benchmarks/tracking_speed.py --quick --out /tmp/x.json   # tiny models, a few frames

``peers`` times OpenCV's CSRT and ``cv2.TrackerNano`` (NanoTrack v2 ONNX, ../shared/data) on the
same frames. On the CPU the pysot section also times siamkit with its search branch in onnxruntime
(:func:`siamkit.trackers.onnx_search.use_onnxruntime`, fp32 and calibrated int8) in the same interleaved
loop, with their own box agreement. ``fast_path`` measures channels_last, ``torch.compile`` (cold compile
time and steady state separately) and bf16 autocast for SiamRPN++ AlexNet.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import harness
import numpy as np
import torch

PYSOT_DIR = harness.REPO / "third_party" / "pysot"
PYSOT_DEPS = harness.REPO / "benchmarks" / ".peers" / "pysot_deps"

MODELS = (
    "siamfc",
    "siamrpn",
    "siamrpnpp_alexnet",
    "siamrpnpp_mobilev2",
    "siamrpnpp_r50",
    "siammask",
    "siamban",
    "siamban_acm",
    "siamrpnpp_lite0",
    "nanotrack",
)
# --quick: tiny networks (the trackers' model_options) so the whole run takes seconds.
QUICK_MODELS = {
    "siamfc": {"preset": "siamfc_pytorch", "model_options": {"width_mult": 0.25}},
    "siamrpnpp_alexnet": {"model_options": {"width_mult": 0.25, "hidden": 32}},
}
TINY_PYSOT = {"width_mult": 0.25, "hidden": 32}
PYSOT_CONFIGS = {"siamrpnpp_alexnet": "siamrpn_alex_dwxcorr", "siamrpnpp_r50": "siamrpn_r50_l234_dwxcorr"}


# --------------------------------------------------------------------------- timing helpers


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: str) -> tuple[float, float, Any]:
    """(wall ms, process CPU ms, result) of one call, synchronised on CUDA."""
    sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    sync(device)
    return (time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3, out


def summary(walls: list[float], cpus: list[float], per_call: int = 1) -> dict[str, Any]:
    """Medians of the timed calls; ``per_s`` = items (frames, forwards, target-frames) per second."""
    med = statistics.median(walls)
    return {
        "median_ms": round(med, 3),
        "p90_ms": round(float(np.percentile(walls, 90)), 3),
        "cpu_median_ms": round(statistics.median(cpus), 3),
        "per_s": round(per_call * 1e3 / med, 3),
        "timed": len(walls),
    }


def loop(step: Callable[[int], Any], first: int, warmup: int, frames: int, budget_s: float, device: str):
    """Run ``step(i)`` for i = first…; the first ``warmup`` calls are not timed; stop after ``frames``
    timed calls or ``budget_s`` seconds (at least 2 timed calls)."""
    walls, cpus = [], []
    for i in range(first, first + warmup):
        step(i)
    start = time.perf_counter()
    i = first + warmup
    while len(walls) < frames and (len(walls) < 2 or time.perf_counter() - start < budget_s):
        wall, cpu, _ = timed(lambda i=i: step(i), device)
        walls.append(wall)
        cpus.append(cpu)
        i += 1
    return walls, cpus


class PeakMemory:
    """Peak memory growth over a block: CUDA max_memory_allocated, else the process's peak RSS."""

    def __init__(self, device: str):
        self.device = device
        self.mb: float | None = None
        self.method = ""

    @staticmethod
    def _status(field: str) -> float | None:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    return float(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def __enter__(self):
        if self.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            self.method = "cuda max_memory_allocated - allocated before"
            return self
        try:  # reset VmHWM to the current RSS (Linux ≥ 4.0)
            Path("/proc/self/clear_refs").write_text("5")
            self.method = "VmHWM growth (peak RSS reset via /proc/self/clear_refs)"
        except OSError:
            self.method = "ru_maxrss growth (process-wide peak; 0 when an earlier run peaked higher)"
        self.base = self._status("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.base_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return self

    def __exit__(self, *exc):
        if self.device.startswith("cuda"):
            self.mb = (torch.cuda.max_memory_allocated() - self.base) / 2**20
        elif self.method.startswith("VmHWM"):
            self.mb = (self._status("VmHWM") or 0.0) - self.base
        else:
            self.mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - self.base_max
        self.mb = round(max(self.mb, 0.0), 2)
        return False


def autocast(device: str, dtype: str):
    if dtype == "fp32":
        return contextlib.nullcontext()
    kind = "cuda" if device.startswith("cuda") else "cpu"
    return torch.autocast(kind, dtype={"fp16": torch.float16, "bf16": torch.bfloat16}[dtype])


# --------------------------------------------------------------------------- frames


def load_frames(n: int, size: tuple[int, int]) -> tuple[list[np.ndarray], np.ndarray]:
    """``n`` frames of the demo clip rendered at ``size`` (W, H), and its ground-truth boxes (0-based xywh)."""
    from siamkit.data.synthetic import make_demo_clip

    clip = make_demo_clip(n, size=size)
    return [np.ascontiguousarray(f) for f in clip.frames], np.asarray(clip.boxes, np.float64)


def target_boxes(first: np.ndarray, n: int, size: tuple[int, int]) -> np.ndarray:
    """The ground-truth box and n−1 boxes of the same size spread over the frame (N-target runs)."""
    width, height = size
    w, h = first[2], first[3]
    boxes = [first]
    for k in range(1, n):
        cx = width * ((k % 4) + 0.5) / 4
        cy = height * ((k // 4) % 2 + 0.5) / 2
        boxes.append(np.array([cx - w / 2, cy - h / 2, w, h]))
    return np.stack(boxes)


# --------------------------------------------------------------------------- siamkit trackers


def make_tracker(name: str, device: str, options: dict[str, Any], weights: str | None = None):
    """The tracker with its shipped weights, or a random network where none ship (speed does not depend on them)."""
    from siamkit.errors import WeightsError
    from siamkit.trackers import create_tracker

    try:
        return create_tracker(name, weights=weights, device=device, **options)
    except WeightsError:
        if weights is not None:
            raise
        return create_tracker(name, weights="none", device=device, **options)


def capture_search(tracker) -> dict[str, Any]:
    """Wrap ``tracker.model.search`` (instance attribute) to record its last inputs."""
    seen: dict[str, Any] = {}
    original = tracker.model.search

    def search(x, zf, *a, **k):
        seen["args"] = (x, zf, a, k)
        return original(x, zf, *a, **k)

    tracker.model.search = search
    seen["restore"] = lambda: tracker.model.__dict__.pop("search", None)
    seen["original"] = original
    return seen


def bench_model(name, args, frames, gt, device, dtype, options) -> dict[str, Any]:
    """e2e batch 1, e2e batch N and network-only numbers of one tracker config."""
    from siamkit.trackers.engine import BatchedTracker, SiameseTracker

    out: dict[str, Any] = {"tracker": name, "device": device, "dtype": dtype, "options": options}
    tracker = make_tracker(name, device, options)
    out["model"] = type(tracker.model).__name__
    out["parameters"] = int(sum(p.numel() for p in tracker.model.parameters()))
    n_frames = len(frames)
    with torch.no_grad(), autocast(device, dtype):
        mem = PeakMemory(device)
        with mem:
            tracker.init(frames[0], gt[0])
            walls, cpus = loop(
                lambda i: tracker.track(frames[i % (n_frames - 1) + 1]).box,
                1,
                args.warmup,
                args.frames,
                args.budget,
                device,
            )
        out["e2e_b1"] = {**summary(walls, cpus), "peak_mem_mb": mem.mb, "mem_method": mem.method}
        seen = capture_search(tracker)
        tracker.track(frames[1])
        x, zf, a, k = seen["args"]
        seen["restore"]()
        search = seen["original"]
        walls, cpus = loop(lambda i: search(x, zf, *a, **k), 0, 2, args.frames, args.budget / 2, device)
        out["network_b1"] = {**summary(walls, cpus, per_call=1), "input": list(x.shape)}
        if isinstance(tracker, SiameseTracker) and args.batch > 1:
            bt = BatchedTracker(tracker)
            mem = PeakMemory(device)
            with mem:
                bt.add(frames[0], target_boxes(gt[0], args.batch, args.size))
                walls, cpus = loop(
                    lambda i: [r.box for r in bt.track(frames[i % (n_frames - 1) + 1])],
                    1,
                    max(args.warmup // 2, 1),
                    args.frames,
                    args.budget,
                    device,
                )
            out[f"e2e_b{args.batch}"] = {
                **summary(walls, cpus, per_call=args.batch),
                "unit": "target-frames/s",
                "steps_per_s": round(1e3 / statistics.median(walls), 3),
                "peak_mem_mb": mem.mb,
            }
    return out


# --------------------------------------------------------------------------- pysot


_PRISTINE: dict[str, Any] = {}


def load_pysot(config: str, device: str, tiny: bool = False):
    """Import pysot from third_party/pysot with its published experiment config (None if absent).

    ``tiny`` narrows the AlexNet (width 0.25, RPN 64→32 channels) for the quick mode."""
    if not (PYSOT_DIR / "pysot").is_dir():
        return None
    for path in (PYSOT_DEPS, PYSOT_DIR):
        if path.is_dir() and str(path) not in sys.path:
            sys.path.insert(0, str(path))
    try:
        from pysot.core.config import cfg
        from pysot.models.model_builder import ModelBuilder
        from pysot.tracker.tracker_builder import build_tracker
    except ImportError as exc:
        print(f"pysot not importable ({exc}); skipping it", file=sys.stderr)
        return None
    cfg.defrost()
    if "cfg" not in _PRISTINE:
        _PRISTINE["cfg"] = cfg.clone()
    cfg.merge_from_other_cfg(_PRISTINE["cfg"])  # forget the previously merged experiment
    cfg.merge_from_file(str(PYSOT_DIR / "experiments" / config / "config.yaml"))
    if tiny:
        cfg.BACKBONE.KWARGS.width_mult = TINY_PYSOT["width_mult"]
        cfg.RPN.KWARGS.in_channels = int(256 * TINY_PYSOT["width_mult"])
        cfg.RPN.KWARGS.out_channels = TINY_PYSOT["hidden"]
    cfg.CUDA = device.startswith("cuda")  # pysot's crop moves to CUDA only when this is set
    return cfg, ModelBuilder, build_tracker


def pysot_pair(tracker_name: str, device: str, seed: int, tmp: Path, options: dict[str, Any]):
    """(pysot tracker, siamkit tracker) with the same random weights, or None without pysot."""
    loaded = load_pysot(PYSOT_CONFIGS[tracker_name], device, tiny=bool(options))
    if loaded is None:
        return None
    _, ModelBuilder, build_tracker = loaded
    torch.manual_seed(seed)
    model = ModelBuilder().eval()
    path = tmp / f"pysot_{tracker_name}_seed{seed}.pth"
    torch.save(model.state_dict(), path)
    model = model.to(device)
    ours = make_tracker(tracker_name, device, options, weights=str(path))
    return build_tracker(model), ours


def centre_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.hypot(*((a[:2] + a[2:] / 2) - (b[:2] + b[2:] / 2))))


def set_states(theirs, ours, box: np.ndarray) -> None:
    """Put both trackers in the state of ``box`` (0-based xywh): centre and size."""
    centre = box[:2] + (box[2:] - 1) / 2
    theirs.center_pos = centre.copy()
    theirs.size = box[2:].copy()
    dev = ours.device
    ours._state["centre"] = torch.as_tensor(centre[None], dtype=torch.float64, device=dev)
    ours._state["size"] = torch.as_tensor(box[2:][None], dtype=torch.float64, device=dev)


def agreement(pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    from siamkit.geometry import iou

    d = np.array([centre_distance(a, b) for a, b in pairs])
    o = np.array([float(iou(a, b)) for a, b in pairs])
    return {
        "frames": len(pairs),
        "mean_centre_px": round(float(d.mean()), 4),
        "median_centre_px": round(float(np.median(d)), 4),
        "max_centre_px": round(float(d.max()), 4),
        "within_0.5px": round(float((d <= 0.5).mean()), 4),
        "mean_iou": round(float(o.mean()), 4),
        "per_frame_centre_px": [round(float(v), 3) for v in d],
    }


@contextlib.contextmanager
def pysot_crops_in_siamkit(theirs):
    """Make siamkit's SiamRPN core crop with pysot's uint8 get_subwindow (to isolate crop rounding)."""
    import siamkit.trackers.engine as mod

    original = mod.crop_targets

    def crop(frames, frame_index, centres, sizes, out_size, avg):
        image = frames[0][0].permute(1, 2, 0).cpu().numpy()
        crops = [
            theirs.get_subwindow(image, c.cpu().numpy(), out_size, int(round(float(s))), a.cpu().numpy())
            for c, s, a in zip(centres, sizes, avg, strict=True)
        ]
        return torch.cat(crops).to(centres.device)

    mod.crop_targets = crop
    try:
        yield
    finally:
        mod.crop_targets = original


@contextlib.contextmanager
def profiled(ours, theirs, acc: dict[str, list[float]], device: str):
    """Time crop and forward inside both trackers (post-processing = total − crop − forward)."""
    import siamkit.trackers.engine as mod

    def wrap(fn, key):
        def inner(*a, **k):
            wall, _, res = timed(lambda: fn(*a, **k), device)
            acc[key].append(wall)
            return res

        return inner

    crop, search = mod.crop_targets, ours.model.search
    their_crop, their_track = theirs.get_subwindow, theirs.model.track
    mod.crop_targets = wrap(crop, "siamkit_crop")
    ours.model.search = wrap(search, "siamkit_forward")
    theirs.get_subwindow = wrap(their_crop, "pysot_crop")
    theirs.model.track = wrap(their_track, "pysot_forward")
    try:
        yield
    finally:
        mod.crop_targets = crop
        ours.model.__dict__.pop("search", None)
        theirs.__dict__.pop("get_subwindow", None)
        theirs.model.__dict__.pop("track", None)


def bench_pysot(name, args, frames, gt, device, tmp: Path, options: dict[str, Any]) -> dict[str, Any]:
    """Speed ratio, time profile and box agreement of siamkit vs pysot on the same weights and frames."""
    pair = pysot_pair(name, device, args.seed, tmp, options)
    if pair is None:
        return {"skipped": "pysot not found: check STVIR/pysot out into third_party/pysot and install yacs"}
    theirs, ours = pair
    res: dict[str, Any] = {"tracker": name, "pysot_config": PYSOT_CONFIGS[name], "seed": args.seed, "device": device}
    n_frames = len(frames)
    with torch.no_grad():
        theirs.init(frames[0], list(gt[0]))
        ours.init(frames[0], gt[0])
        # free-running boxes and interleaved timing
        walls = {"pysot": [], "siamkit": [], "siamkit_cv2_crops": []}
        cpus = {"pysot": [], "siamkit": [], "siamkit_cv2_crops": []}
        probe = make_tracker(name, device, options, weights=str(tmp / f"pysot_{name}_seed{args.seed}.pth"))
        with pysot_crops_in_siamkit(theirs):  # template from pysot's crop too
            probe.init(frames[0], gt[0])
        ort = ort_variants(name, args, device, options, tmp / f"pysot_{name}_seed{args.seed}.pth")
        for variant in ort.values():
            variant.init(frames[0], gt[0])
        for key in ort:
            walls[key], cpus[key] = [], []
        free_ort: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {key: [] for key in ort}
        free: list[tuple[np.ndarray, np.ndarray]] = []
        total = min(n_frames - 1, args.warmup + args.pysot_frames)

        def probe_track(f):
            with pysot_crops_in_siamkit(theirs):
                return probe.track(f).box

        runners = {
            "pysot": lambda f: np.asarray(theirs.track(f)["bbox"], np.float64),
            "siamkit": lambda f: ours.track(f).box,
            "siamkit_cv2_crops": probe_track,
            **{key: (lambda f, t=variant: t.track(f).box) for key, variant in ort.items()},
        }
        names = list(runners)
        for i in range(1, total + 1):
            f = frames[i]
            boxes_now = {}
            # rotate who goes first each frame: whoever runs right after another tracker pays for its caches
            for key in names[i % len(names):] + names[: i % len(names)]:
                wall, cpu, boxes_now[key] = timed(lambda f=f, run=runners[key]: run(f), device)
                if i > args.warmup or key == "siamkit_cv2_crops":
                    walls[key].append(wall)
                    cpus[key].append(cpu)
            free.append((boxes_now["pysot"], boxes_now["siamkit"]))
            for key in ort:
                free_ort[key].append((boxes_now["pysot"], boxes_now[key]))
        res["e2e_pysot"] = summary(walls["pysot"], cpus["pysot"])
        res["e2e_siamkit"] = summary(walls["siamkit"], cpus["siamkit"])
        res["e2e_siamkit_with_cv2_crops_what_if"] = summary(
            walls["siamkit_cv2_crops"][args.warmup :], cpus["siamkit_cv2_crops"][args.warmup :]
        )
        res["speed_ratio"] = round(res["e2e_pysot"]["median_ms"] / res["e2e_siamkit"]["median_ms"], 3)
        res["speed_ratio_cpu_time"] = round(
            res["e2e_pysot"]["cpu_median_ms"] / max(res["e2e_siamkit"]["cpu_median_ms"], 1e-9), 3
        )
        res["agreement_free_running"] = agreement(free[: args.agree_frames])
        for key, variant in ort.items():
            res[f"e2e_{key}"] = summary(walls[key], cpus[key])
            res[f"speed_ratio_{key}"] = round(res["e2e_pysot"]["median_ms"] / res[f"e2e_{key}"]["median_ms"], 3)
            res[f"agreement_free_running_{key}"] = agreement(free_ort[key][: args.agree_frames])
            synced_ort = []
            for i in range(1, min(n_frames - 1, args.agree_frames) + 1):
                set_states(theirs, variant, gt[i - 1])
                bp = np.asarray(theirs.track(frames[i])["bbox"], np.float64)
                set_states(theirs, variant, gt[i - 1])
                synced_ort.append((bp, variant.track(frames[i]).box))
            res[f"agreement_gt_synced_{key}"] = agreement(synced_ort)

        # profile: crop / forward / post-processing (one more interleaved pass, re-synced on gt)
        acc: dict[str, list[float]] = {
            k: [] for k in ("siamkit_crop", "siamkit_forward", "pysot_crop", "pysot_forward")
        }
        tot = {"pysot": [], "siamkit": []}
        count = min(n_frames - 1, max(args.pysot_frames // 2, 3))
        with profiled(ours, theirs, acc, device):
            for i in range(1, count + 1):
                set_states(theirs, ours, gt[i - 1])
                wp, _, _ = timed(lambda i=i: theirs.track(frames[i]), device)
                ws, _, _ = timed(lambda i=i: ours.track(frames[i]), device)
                tot["pysot"].append(wp)
                tot["siamkit"].append(ws)
        prof = {}
        for who in ("siamkit", "pysot"):
            total_ms = statistics.median(tot[who])
            crop_ms = statistics.median(acc[f"{who}_crop"][-count:])
            fwd_ms = statistics.median(acc[f"{who}_forward"])
            prof[who] = {
                "total_ms": round(total_ms, 3),
                "crop_ms": round(crop_ms, 3),
                "forward_ms": round(fwd_ms, 3),
                "post_ms": round(total_ms - crop_ms - fwd_ms, 3),
            }
        res["profile_median_ms"] = prof

        # one step from the ground-truth state every frame: the meaningful agreement with random weights
        synced, synced_same_crop, crop_diff, net_diff = [], [], [], []
        import siamkit.trackers.engine as mod

        steps = min(n_frames - 1, args.agree_frames)
        for i in range(1, steps + 1):
            set_states(theirs, ours, gt[i - 1])
            bp = np.asarray(theirs.track(frames[i])["bbox"], np.float64)
            set_states(theirs, ours, gt[i - 1])
            seen = capture_search(ours)
            crops: dict[str, torch.Tensor] = {}
            original_crop = mod.crop_targets

            def keep(*a, _crops=crops, _crop=original_crop, **k):
                _crops["ours"] = _crop(*a, **k)
                return _crops["ours"]

            mod.crop_targets = keep
            try:
                bs = ours.track(frames[i]).box
            finally:
                mod.crop_targets = original_crop
            seen["restore"]()
            synced.append((bp, bs))
            # the same crop centre/size through pysot's get_subwindow
            x_ours = crops["ours"]
            x_theirs = theirs.get_subwindow(
                frames[i],
                gt[i - 1][:2] + (gt[i - 1][2:] - 1) / 2,
                x_ours.shape[-1],
                int(round(float(_search_side(gt[i - 1], ours.config)))),
                theirs.channel_average,
            )
            crop_diff.append(float((x_ours - x_theirs.to(x_ours.device)).abs().max()))
            out_theirs = theirs.model.track(x_theirs)
            out_ours = seen["original"](x_theirs.to(x_ours.device), ours._state["zf"])
            net_diff.append(
                max(
                    float((out_theirs[k].to(out_ours[k].device) - out_ours[k]).abs().max() / out_ours[k].abs().max())
                    for k in ("cls", "loc")
                )
            )
            set_states(theirs, probe, gt[i - 1])
            with pysot_crops_in_siamkit(theirs):
                bs2 = probe.track(frames[i]).box
            synced_same_crop.append((bp, bs2))
        res["agreement_gt_synced"] = agreement(synced)
        res["agreement_gt_synced_with_pysot_crops"] = agreement(synced_same_crop)
        res["crop_max_abs_diff"] = {"mean": round(float(np.mean(crop_diff)), 4), "max": round(max(crop_diff), 4)}
        res["network_max_rel_diff_same_search_crop_own_templates"] = round(max(net_diff), 6)
    return res


def ort_variants(name, args, device, options, weights: Path) -> dict[str, Any]:
    """siamkit trackers with the search branch in onnxruntime (fp32, int8), CPU only."""
    if device != "cpu" or args.no_ort:
        return {}
    from siamkit.trackers.onnx_search import use_onnxruntime

    variants = {}
    for precision in ("fp32", "int8"):
        tracker = make_tracker(name, device, options, weights=str(weights))
        variants[f"siamkit_ort_{precision}"] = use_onnxruntime(tracker, precision)
    return variants


def _search_side(box: np.ndarray, config) -> float:
    """pysot's search-crop side for a target box (context square scaled to the instance size)."""
    w, h = box[2], box[3]
    extra = config.context_amount * (w + h)
    s_z = np.sqrt((w + extra) * (h + extra))
    return s_z * config.instance_size / config.exemplar_size


# --------------------------------------------------------------------------- OpenCV peers


def bench_peers(args, frames, gt) -> dict[str, Any]:
    from siamkit.errors import SiamkitError
    from siamkit.trackers import create_tracker

    out = {}
    for name in ("opencv:csrt", "opencv:nano"):
        try:
            tracker = create_tracker(name)
        except SiamkitError as exc:
            out[name] = {"skipped": str(exc)}
            continue
        tracker.init(frames[0], gt[0])
        walls, cpus = loop(
            lambda i, t=tracker: t.track(frames[i % (len(frames) - 1) + 1]).box,
            1,
            args.warmup,
            args.frames,
            args.budget,
            "cpu",
        )
        out[name] = summary(walls, cpus)
    return out


# --------------------------------------------------------------------------- fast-path options


def bench_fast_path(args, frames, gt, device, options: dict[str, Any]) -> dict[str, Any]:
    """channels_last, torch.compile and bf16 for SiamRPN++ AlexNet, network-only and end to end."""
    from siamkit.trackers.fast import optimise_tracker

    base = make_tracker("siamrpnpp_alexnet", device, options)
    variants: dict[str, Any] = {"plain": base}
    cl = copy.deepcopy(base)
    optimise_tracker(cl, channels_last=True)
    variants["channels_last"] = cl
    res: dict[str, Any] = {"tracker": "siamrpnpp_alexnet", "device": device}
    if not args.no_compile:
        comp = copy.deepcopy(base)
        optimise_tracker(comp, channels_last=False, compile=True)
        variants["compile"] = comp
    plain_boxes = None
    bf16 = "bf16" if device == "cpu" else "fp16"
    rows = {}
    order = list(variants) + [bf16]
    with torch.no_grad():
        for key in order:
            tracker = variants.get(key, base)
            ctx = autocast(device, bf16) if key == bf16 else contextlib.nullcontext()
            with ctx:
                t0 = time.perf_counter()
                tracker.init(frames[0], gt[0])
                first = tracker.track(frames[1]).box
                cold = time.perf_counter() - t0
                tracker.init(frames[0], gt[0])
                boxes: list[np.ndarray] = []
                walls, cpus = loop(
                    lambda i, t=tracker, boxes=boxes: boxes.append(t.track(frames[i % (len(frames) - 1) + 1]).box),
                    1,
                    args.warmup,
                    args.frames,
                    args.budget,
                    device,
                )
            if plain_boxes is None:
                plain_boxes = boxes
            k = min(len(boxes), len(plain_boxes), 10)
            diffs = [centre_distance(a, b) for a, b in zip(boxes[:k], plain_boxes[:k], strict=True)]
            rows[key] = {
                **summary(walls, cpus),
                "first_frame_s": round(cold, 3),
                "max_centre_px_vs_plain_first10": round(max(diffs), 5),
                "first_box": [round(float(v), 3) for v in first],
            }
    plain = rows["plain"]["median_ms"]
    for row in rows.values():
        row["speedup_vs_plain"] = round(plain / row["median_ms"], 3)
    res["e2e"] = rows
    return res


# --------------------------------------------------------------------------- main


def load_averages() -> list[float] | None:
    """The 1-, 5- and 15-minute load averages now."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = harness.command_line(__doc__, threads=2)
    parser.add_argument("--quick", action="store_true", help="tiny models, small frames, a few steps (tests)")
    parser.add_argument("--models", nargs="*", default=None,
                        help="trackers, NAME or NAME@PRESET (default: all published)")
    parser.add_argument("--frames", type=int, default=40, help="timed frames per measurement (at most)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed frames before timing")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per measurement (≥ 3 timed frames)")
    parser.add_argument("--batch", type=int, default=8, help="targets for the BatchedTracker run")
    parser.add_argument("--size", type=str, default="1280x720", help="frame size WxH")
    parser.add_argument("--clip-frames", type=int, default=60, help="frames of the demo clip rendered")
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="all", help="'all': CPU and CUDA if any")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shared random pysot/siamkit weights")
    parser.add_argument("--pysot-frames", type=int, default=30, help="timed frames for the pysot comparison")
    parser.add_argument("--agree-frames", type=int, default=50, help="frames for box agreement")
    parser.add_argument(
        "--pysot-models",
        nargs="*",
        default=["siamrpnpp_alexnet"],
        choices=sorted(PYSOT_CONFIGS),
        help="trackers compared with pysot (siamrpnpp_r50 is slow on a CPU)",
    )
    parser.add_argument("--no-pysot", action="store_true")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--no-fast", action="store_true")
    parser.add_argument("--no-ort", action="store_true", help="skip the onnxruntime (fp32/int8) rows vs pysot")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile in the fast-path section")
    parser.add_argument("--merge", action="store_true",
                        help="keep the sections of an existing --out file that this run skips (e.g. rerun pysot only)")
    args = parser.parse_args(argv)
    args.out = harness.output_path(args, "tracking_speed.json")
    if args.quick:
        args.frames, args.warmup, args.budget, args.batch = 3, 1, 5.0, 2
        args.clip_frames, args.pysot_frames, args.agree_frames = 8, 3, 5
        args.size = "320x180"
        args.no_compile = True
    args.size = tuple(int(v) for v in args.size.lower().split("x"))
    torch.set_num_threads(args.threads)

    from siamkit.utils.progress import progress

    devices = ["cpu"] if args.device in ("cpu", "all") else []
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append("cuda")
    names = args.models if args.models is not None else (list(QUICK_MODELS) if args.quick else list(MODELS))
    frames, gt = load_frames(args.clip_frames, args.size)
    result: dict[str, Any] = {
        "benchmark": "tracking_speed",
        "quick": args.quick,
        "frame_size": list(args.size),
        "clip": f"siamkit.data.synthetic.make_demo_clip({args.clip_frames}, size={args.size})",
        "threads": args.threads,
        "batch_targets": args.batch,
        "warmup": args.warmup,
        "max_timed_frames": args.frames,
        "budget_s": args.budget,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_start": load_averages(),
        "note": "wall-clock medians; the machine may be shared (see load averages): compare rows of one run, "
        "and prefer ratios of interleaved runs (pysot section) over absolute numbers",
        "models": [],
    }
    variants = [(d, dt) for d in devices for dt in (("fp32", "fp16", "bf16") if d == "cuda" else ("fp32",))]
    for device, dtype in progress(variants, desc="devices"):
        for name in progress(names, desc=f"{device} {dtype}", unit="tracker"):
            tracker_name, _, preset = name.partition("@")  # "siamban@vot2018": a named preset
            options = dict(QUICK_MODELS.get(name, {}) if args.quick else {}, **({"preset": preset} if preset else {}))
            try:
                row = bench_model(tracker_name, args, frames, gt, device, dtype, options) | {"tracker": name}
            except Exception as exc:  # a missing weight file (nanotrack) or a broken config: recorded, not fatal
                row = {"tracker": name, "device": device, "dtype": dtype, "skipped": f"{type(exc).__name__}: {exc}"}
            result["models"].append(row)
            print(_line(row), flush=True)
    if not args.no_pysot:
        result["pysot"] = {}
        pysot_names = ["siamrpnpp_alexnet"] if args.quick else args.pysot_models
        with tempfile.TemporaryDirectory() as tmp:
            for name in pysot_names:
                for device in devices:
                    # quick: both sides narrowed alike (pysot's cfg and siamkit's model_options)
                    options = {"model_options": dict(TINY_PYSOT)} if args.quick else {}
                    result["pysot"][f"{name}/{device}"] = bench_pysot(
                        name, args, frames, gt, device, Path(tmp), options
                    )
                    print(
                        f"pysot {name}/{device}:",
                        {
                            k: v
                            for k, v in result["pysot"][f"{name}/{device}"].items()
                            if k in ("speed_ratio", "skipped")
                        },
                        flush=True,
                    )
    if not args.no_peers:
        result["peers"] = bench_peers(args, frames, gt)
    if not args.no_fast:
        result["fast_path"] = {
            d: bench_fast_path(args, frames, gt, d, QUICK_MODELS["siamrpnpp_alexnet"] if args.quick else {})
            for d in devices
        }
    result["load_average_end"] = load_averages()
    if args.merge and args.out.is_file():
        result = merged(json.loads(args.out.read_text()), result)
    harness.save(args.out, result)
    return result


def merged(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``old`` with the sections ``new`` measured replaced; ``merged_sections`` says which are this run's."""
    rerun = [k for k in ("models", "pysot", "peers", "fast_path") if new.get(k)]
    out = {**old, **{k: new[k] for k in rerun}}
    out["merged_sections"] = {"rerun": rerun, "load_average": [new["load_average_start"], new["load_average_end"]]}
    return out


def _line(row: dict[str, Any]) -> str:
    if "skipped" in row:
        return f"{row['tracker']:20s} {row['device']} {row['dtype']}: skipped ({row['skipped']})"
    parts = [f"{k} {v['per_s']:.2f}/s" for k, v in row.items() if isinstance(v, dict) and "per_s" in v]
    return f"{row['tracker']:20s} {row['device']} {row['dtype']}: " + ", ".join(parts)


if __name__ == "__main__":
    main()
