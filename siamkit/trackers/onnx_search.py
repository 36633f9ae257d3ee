"""Run a tracker's search branch in onnxruntime on the CPU, in fp32 or int8.

The per-frame cost of a Siamese tracker on a CPU is almost all the search branch's convolutions,
which PyTorch already runs near the machine's fp32 peak. onnxruntime's fp32 kernels are somewhat
faster, and its int8 kernels (static quantisation: per-channel int8 weights, uint8 activations
with ranges calibrated on real search crops) do the same convolutions in about half the time.

:func:`use_onnxruntime` swaps ``model.search`` of a siamkit tracker for an onnxruntime session
(the template branch runs once per target and stays in PyTorch); everything else — crops,
windows, penalties, box updates — is unchanged. fp32 boxes equal the PyTorch path's up to float
rounding; int8 changes the network's outputs, so its accuracy cost is measured, not assumed
(``benchmarks/tracking_speed.py``, and ``benchmarks/test_clips.py --int8`` on trained models). Calibration
crops come from a clip the tracker runs on in fp32 first: by default siamkit's built-in demo clip, so nothing
outside the package is needed. :func:`~siamkit.trackers.fast.reset_tracker` restores PyTorch.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from siamkit.errors import ConfigError
from siamkit.nn.branches import SearchBranch, flatten_features, nest_outputs, output_keys, unflatten_features

__all__ = ["OrtSearch", "PRECISIONS", "record_search_inputs", "use_onnxruntime"]

PRECISIONS = ("fp32", "int8")
CALIBRATION_SAMPLES = 32  # batch-1 search inputs used to set the int8 activation ranges


def _require_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(
            "The onnxruntime backend needs the onnx and onnxruntime packages.",
            hint='pip install "siamkit[export]"',
        ) from None
    return onnxruntime


def _rows(x: torch.Tensor, features: list[torch.Tensor]):
    """Batch-1 (search crop, template features) pairs; features of batch 1 serve every row."""
    for i in range(x.shape[0]):
        yield x[i : i + 1], [f[i : i + 1] if f.shape[0] == x.shape[0] else f for f in features]


class OrtSearch:
    """``search(x, zf)`` of a tracker network as onnxruntime sessions (batch rows run one by one).

    The graphs have fixed sizes: ``session`` is the one exported for the tracker's search size; a search crop of
    another size (DaSiamRPN's adaptive 287 px search, its long-term 831 px one) gets an fp32 graph of its own,
    exported by ``export(x, zf)`` the first time that size comes. Attributes: ``precision`` ("fp32"/"int8", of
    the first graph), ``session``, ``sessions`` (search side → session) and the flattening of ``zf``.
    """

    _siamkit_fast_path = True

    def __init__(self, session: Any, structure: Any, keys: Sequence[str], precision: str,
                 export: Any = None):
        self.session = session
        self.structure = structure
        self.keys = list(keys)
        self.precision = precision
        self.input_names = [i.name for i in session.get_inputs()]
        side = session.get_inputs()[0].shape[-1]
        self.sessions = {int(side): session} if isinstance(side, int) else {}
        self.export = export

    def _session_for(self, x: torch.Tensor, features: list[torch.Tensor]) -> Any:
        side = int(x.shape[-1])
        if side not in self.sessions:
            if self.export is None:
                return self.session
            self.sessions[side] = self.export(x[:1], unflatten_features([f[:1] for f in features], self.structure))
        return self.sessions[side]

    def __call__(self, x: torch.Tensor, zf: Any) -> dict[str, torch.Tensor]:
        if x.device.type != "cpu":
            raise ConfigError("The onnxruntime search branch runs on the CPU only.", hint="Use device='cpu'.")
        features, _ = flatten_features(zf)
        session = self._session_for(x, features)
        outputs: list[list[np.ndarray]] = [[] for _ in self.keys]
        for xi, fi in _rows(x, features):
            arrays = [t.detach().contiguous().numpy().astype(np.float32, copy=False) for t in (xi, *fi)]
            for k, out in enumerate(session.run(None, dict(zip(self.input_names, arrays, strict=True)))):
                outputs[k].append(out)
        return nest_outputs({key: torch.from_numpy(np.concatenate(o, axis=0))
                             for key, o in zip(self.keys, outputs, strict=True)})


def _network(tracker: Any) -> torch.nn.Module:
    from siamkit.trackers.fast import _model

    model = _model(tracker)
    if not hasattr(model, "template") or not hasattr(model, "search"):
        raise ConfigError(f"{type(model).__name__} has no template/search branches to run in onnxruntime.")
    if next(model.parameters()).device.type != "cpu":
        raise ConfigError("The onnxruntime backend is for trackers on the CPU.", hint="Create it with device='cpu'.")
    return model


def _export_search(model: torch.nn.Module, x: torch.Tensor, zf: Any) -> tuple[bytes, Any, list[str]]:
    """ONNX bytes of the batch-1 search branch, the template flattening and the output keys."""
    flat, structure = flatten_features(zf)
    with torch.no_grad():
        out = model.search(x, zf)
    keys = output_keys(out)
    branch = SearchBranch(model, structure, keys).eval()
    names = ["x"] + [f"zf{i}" for i in range(len(flat))]
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracing turns shape checks into constants: fine for batch-1 graphs
        torch.onnx.export(branch, (x, *flat), buffer, input_names=names, output_names=keys, opset_version=17,
                          dynamo=False)
    return buffer.getvalue(), structure, keys


def record_search_inputs(tracker: Any, frames: Sequence[np.ndarray], box: Sequence[float],
                         limit: int = CALIBRATION_SAMPLES) -> list[tuple[torch.Tensor, Any]]:
    """Run ``tracker`` (PyTorch path) over ``frames`` from ``box`` and keep batch-1 (x, zf) search inputs."""
    from siamkit.nn.models import index_template

    model = _network(tracker)
    if len(frames) < 2:
        raise ConfigError("Calibration needs at least two frames (the first initialises the tracker).")
    recorded: list[tuple[torch.Tensor, Any]] = []
    plain = model.search

    def spy(x, zf):
        for i in range(x.shape[0]):
            if len(recorded) < limit:
                one = index_template(zf, i) if flatten_features(zf)[0][0].shape[0] == x.shape[0] else zf
                recorded.append((x[i : i + 1].detach().clone(), one))
        return plain(x, zf)

    model.search = spy
    try:
        tracker.init(frames[0], box)
        step = max(1, (len(frames) - 1) // limit)
        for frame in frames[1::step]:
            tracker.track(frame)
            if len(recorded) >= limit:
                break
    finally:
        del model.search
    return recorded


def _quantise(fp32: bytes, samples: list[tuple[torch.Tensor, Any]], names: list[str]) -> bytes:
    """Static int8 quantisation (QOperator, per-channel int8 weights, uint8 activations, min-max ranges)."""
    import tempfile
    from pathlib import Path

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    feeds = [
        dict(zip(names, [t.numpy().astype(np.float32) for t in (x, *flatten_features(zf)[0])], strict=True))
        for x, zf in samples
    ]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(feeds)

        def get_next(self):
            return next(self.items, None)

    with tempfile.TemporaryDirectory(prefix="siamkit_int8_") as tmp:
        src, pre, dst = (Path(tmp) / n for n in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        src.write_bytes(fp32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quant_pre_process(str(src), str(pre))
            quantize_static(str(pre), str(dst), Reader(), quant_format=QuantFormat.QOperator, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        return dst.read_bytes()


def _example_inputs(model: torch.nn.Module) -> tuple[torch.Tensor, Any]:
    """A random batch-1 search crop and the template features of a random exemplar crop."""
    e, i = int(model.exemplar_size), int(model.instance_size)
    generator = torch.Generator().manual_seed(0)
    # SiamBAN-ACM's template also takes the target's (w, h) in the exemplar crop: any plausible one will do
    prior = (torch.tensor([[e / 2, e / 2]]),) if getattr(model, "needs_box_prior", False) else ()
    with torch.no_grad():
        zf = model.template(torch.rand(1, 3, e, e, generator=generator) * 255, *prior)
    return torch.rand(1, 3, i, i, generator=generator) * 255, zf


def _default_calibration() -> tuple[list[np.ndarray], list[float]]:
    from siamkit.data.synthetic import make_demo_clip

    clip = make_demo_clip()
    return clip.frames, [float(v) for v in clip.boxes[0]]


def use_onnxruntime(
    tracker: Any,
    precision: str = "fp32",
    calibration: tuple[Sequence[np.ndarray], Sequence[float]] | None = None,
    threads: int | None = None,
) -> Any:
    """Run ``tracker``'s search branch in onnxruntime (CPU) and return the tracker.

    Args:
        tracker: a siamkit Siamese tracker (or NanoTrack) created on the CPU.
        precision: ``"fp32"`` (same boxes as PyTorch up to rounding) or ``"int8"`` (about 2× faster
            convolutions; calibrated, and its accuracy cost is measured in the benchmarks).
        calibration: ``(frames, first_box)`` of a clip to record int8 calibration crops from (BGR uint8
            frames, box x, y, w, h); default: siamkit's built-in demo clip. Calibration runs the
            tracker, so initialise it afterwards. fp32 needs none.
        threads: onnxruntime intra-op threads (default: ``torch.get_num_threads()``).
    """
    ort = _require_onnxruntime()
    if precision not in PRECISIONS:
        raise ConfigError(f"Unknown precision {precision!r}.", hint=f"Use one of {', '.join(PRECISIONS)}.")
    model = _network(tracker)
    if "search" in model.__dict__:
        raise ConfigError("This tracker's search branch is already replaced.", hint="Call reset_tracker first.")
    if precision == "int8" or calibration is not None:
        frames, box = calibration if calibration is not None else _default_calibration()
        samples = record_search_inputs(tracker, frames, box)
    else:  # fp32 needs only example inputs of the right shapes to trace the graph
        samples = [_example_inputs(model)]
    x, zf = samples[0]
    onnx_bytes, structure, keys = _export_search(model, x, zf)
    names = ["x"] + [f"zf{i}" for i in range(len(flatten_features(zf)[0]))]
    if precision == "int8":
        onnx_bytes = _quantise(onnx_bytes, samples, names)
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or torch.get_num_threads())
    options.inter_op_num_threads = 1

    def session_of(graph: bytes) -> Any:
        return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])

    def export_other_size(x: torch.Tensor, zf: Any) -> Any:
        replaced = model.__dict__.pop("search")  # export the PyTorch branch, not this wrapper
        try:
            return session_of(_export_search(model, x, zf)[0])
        finally:
            model.search = replaced

    # instance attribute: this model only
    model.search = OrtSearch(session_of(onnx_bytes), structure, keys, precision, export_other_size)
    return tracker
