"""Export a tracker's network as two graphs — the template branch and the search branch.

The template branch maps the exemplar crop to template features once per target; the search
branch takes a search crop *and those features as runtime inputs* (the correlation kernel is
an input, not a constant), so a deployment runs the template graph once and the search graph
every frame (the split: :mod:`siamkit.nn.branches`). Both ONNX (checked against PyTorch with
onnxruntime) and TorchScript are written, with a ``model.json`` that describes inputs, outputs
and the tracker's settings.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from siamkit.errors import NotAvailableError
from siamkit.nn.branches import SearchBranch, TemplateBranch, split_model

__all__ = ["SearchBranch", "TemplateBranch", "check_onnx", "export_model", "export_tracker", "split_model"]

log = logging.getLogger("siamkit.export")


def export_model(
    model: nn.Module,
    out_dir: str | Path,
    onnx: bool = True,
    torchscript: bool = True,
    meta: dict[str, Any] | None = None,
    opset: int = 17,
    check: bool = True,
) -> dict[str, Any]:
    """Write ``template``/``search`` graphs and ``model.json`` to ``out_dir``; return the description.

    With ``check``, each ONNX graph is run in onnxruntime on random inputs and compared with
    PyTorch; the maximum absolute difference is recorded (and must stay ≤ 1e-4 relative to
    the output scale).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # tracing warns about shape checks turned into constants: expected for fixed-size branches
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return _export(model, out, onnx, torchscript, meta, opset, check)


def _export(model, out, onnx, torchscript, meta, opset, check) -> dict[str, Any]:
    template, search, info = split_model(model)
    example = info.pop("example")
    search_args = (example["x"], *example["zf"])
    description: dict[str, Any] = {**info, **(meta or {}), "files": {}}
    if onnx:
        t_path, s_path = out / "template.onnx", out / "search.onnx"
        with torch.no_grad():
            torch.onnx.export(template, (example["z"],), str(t_path), input_names=info["template_inputs"],
                              output_names=info["template_outputs"], opset_version=opset, dynamo=False)
            torch.onnx.export(search, search_args, str(s_path), input_names=info["search_inputs"],
                              output_names=info["search_outputs"], opset_version=opset, dynamo=False)
        description["files"].update(template_onnx=t_path.name, search_onnx=s_path.name)
        if check:
            description["onnx_max_abs_diff"] = check_onnx(template, search, t_path, s_path, info)
    if torchscript:
        with torch.no_grad():
            torch.jit.trace(template, (example["z"],), check_trace=False).save(str(out / "template.pt"))
            torch.jit.trace(search, search_args, check_trace=False).save(str(out / "search.pt"))
        description["files"].update(template_torchscript="template.pt", search_torchscript="search.pt")
    (out / "model.json").write_text(json.dumps(description, indent=2, default=_jsonable))
    return description


def check_onnx(template: nn.Module, search: nn.Module, t_path: Path, s_path: Path, info: dict[str, Any],
               trials: int = 2, seed: int = 0) -> dict[str, float]:
    """Largest |onnxruntime − PyTorch| over random inputs for each graph, and the outputs' largest |value|.

    Random weights on 0–255 inputs give large activations, so the relative error
    (``*_max_abs_diff / *_max_abs``) is the figure to judge float32 agreement by.
    """
    ort = _onnxruntime()
    t_sess = ort.InferenceSession(str(t_path), providers=["CPUExecutionProvider"])
    s_sess = ort.InferenceSession(str(s_path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(seed)
    e, s = info["exemplar_size"], info["instance_size"]
    stats = {"template_max_abs_diff": 0.0, "template_max_abs": 0.0, "search_max_abs_diff": 0.0, "search_max_abs": 0.0}

    def update(prefix: str, got: list[np.ndarray], ref: tuple[torch.Tensor, ...]) -> None:
        for a, b in zip(got, ref, strict=True):
            b = b.numpy()
            stats[f"{prefix}_max_abs_diff"] = max(stats[f"{prefix}_max_abs_diff"], float(np.abs(a - b).max()))
            stats[f"{prefix}_max_abs"] = max(stats[f"{prefix}_max_abs"], float(np.abs(b).max()))

    for _ in range(trials):
        z = torch.rand(1, 3, e, e, generator=gen) * 255
        x = torch.rand(1, 3, s, s, generator=gen) * 255
        with torch.no_grad():
            zf = template(z)
            ref = search(x, *zf)
        update("template", t_sess.run(None, {"z": z.numpy()}), zf)
        feeds = {"x": x.numpy(), **{f"zf{i}": t.numpy() for i, t in enumerate(zf)}}
        update("search", s_sess.run(None, feeds), ref)
    return stats


def export_tracker(name: str, out_dir: str | Path, weights: str | None = None, onnx: bool = True,
                   torchscript: bool = True, check: bool = True) -> dict[str, Any]:
    """Export the network of tracker ``name`` (with its weights) plus its settings."""
    from siamkit.trackers import create_tracker

    tracker = create_tracker(name, weights=weights, device="cpu")
    model = getattr(tracker, "model", None)
    if model is None:
        raise NotAvailableError(f"Tracker {name!r} has no exportable network.",
                                hint="Export works for siamkit's Siamese trackers.")
    config = getattr(tracker, "config", None)
    meta = {"tracker": name, "tracker_config": asdict(config) if is_dataclass(config) else None}
    return export_model(model, out_dir, onnx=onnx, torchscript=torchscript, meta=meta, check=check)


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise NotAvailableError("onnxruntime is not installed.", hint="pip install 'siamkit[export]'.") from None
    return onnxruntime


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, tuple):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")
