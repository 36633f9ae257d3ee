"""Optional fast paths for a tracker's network: channels_last memory layout and ``torch.compile``.

Both change only how the network's forward runs, never the tracking algorithm, so the boxes
stay those of the plain path up to float rounding (tests/trackers/test_fast.py checks it on a shared
clip). Whether either pays off depends on the machine: ``benchmarks/tracking_speed.py`` measures
them (``fast_path`` section of benchmarks/results/tracking_speed.json).

Measured for SiamRPN++ AlexNet on 1280×720 frames, 2 threads of a shared AMD EPYC (AVX2, no
AVX-512 BF16), torch 2.13 CPU: channels_last 1.18× end to end (boxes within 7e-4 px; 1.21× in
a separate run alternating plain and channels_last frame by frame, 54 frames each): on by default;
``torch.compile`` 0.76× in steady state after a 23 s cold compile, so it is off by default and
only worth trying on a GPU; bf16 autocast is not offered: 30× slower without native bf16 and
boxes up to 36 px away within 10 frames.
"""

from __future__ import annotations

from typing import Any

import torch

from siamkit.errors import ConfigError


def _model(tracker: Any) -> torch.nn.Module:
    model = getattr(tracker, "model", None)
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(
            f"{type(tracker).__name__} has no PyTorch model to optimise.",
            hint="optimise_tracker works on siamkit's Siamese trackers and NanoTrack, not on OpenCV peers.",
        )
    return model


def optimise_tracker(tracker: Any, channels_last: bool = True, compile: bool = False, mode: str | None = None) -> Any:
    """Speed up ``tracker``'s network in place and return the tracker.

    Args:
        tracker: a siamkit tracker with a ``model`` (SiameseTracker, BatchedTracker's tracker, NanoTrack).
        channels_last: store conv weights as NHWC (``torch.channels_last``); inputs keep their layout.
        compile: wrap the model's ``template`` and ``search`` in ``torch.compile`` (inductor); off by
            default (slower on a CPU, see above). The first call per input shape compiles (seconds to
            tens of seconds); later calls reuse it.
        mode: ``torch.compile`` mode (``None``, ``"reduce-overhead"``, ``"max-autotune"``).
    """
    model = _model(tracker)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if compile:
        for name in ("template", "search"):
            fn = getattr(model, name, None)
            if fn is None:
                continue
            if getattr(fn, "_siamkit_compiled", False):
                continue
            compiled = torch.compile(fn, mode=mode, dynamic=False)
            compiled._siamkit_compiled = True
            setattr(model, name, compiled)  # instance attribute: shadows the method of this model only
    return tracker


def reset_tracker(tracker: Any) -> Any:
    """Undo :func:`optimise_tracker` and :func:`~siamkit.trackers.onnx_search.use_onnxruntime`: contiguous
    (NCHW) weights and the plain PyTorch methods."""
    model = _model(tracker)
    model.to(memory_format=torch.contiguous_format)
    for name in ("template", "search"):
        replaced = model.__dict__.get(name)
        if getattr(replaced, "_siamkit_compiled", False) or getattr(replaced, "_siamkit_fast_path", False):
            del model.__dict__[name]
    return tracker


__all__ = ["optimise_tracker", "reset_tracker"]
