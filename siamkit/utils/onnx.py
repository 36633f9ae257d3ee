"""onnxruntime sessions on the CPU for ONNX graphs, with the spatial sizes freed when asked.

Published backbone graphs (NanoTrack's) fix their input at 255×255, while the same network embeds
the 127 px template: :func:`dynamic_spatial_dims` makes height and width of every 4-D input and
output symbolic (the graphs have no shape-dependent node), so one session serves both sizes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def dynamic_spatial_dims(model: Any) -> bytes:
    """The ONNX ``model`` (an ``onnx.ModelProto``) serialised with symbolic height and width.

    Every 4-D input and output gets ``h{i}``/``w{i}``; the recorded shapes of intermediate values
    are dropped (onnxruntime infers them again).
    """
    import itertools

    for i, value in enumerate(itertools.chain(model.graph.input, model.graph.output)):
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4:
            dims[2].dim_param, dims[3].dim_param = f"h{i}", f"w{i}"
    del model.graph.value_info[:]
    return model.SerializeToString()


def cpu_session(graph: str | Path | bytes, threads: int = 1, dynamic_spatial: bool = False) -> Any:
    """An ``onnxruntime.InferenceSession`` on the CPU, quiet (errors only), with ``threads`` intra-op threads."""
    import onnxruntime as ort

    if dynamic_spatial:
        import onnx

        graph = dynamic_spatial_dims(onnx.load(str(graph)))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    source = graph if isinstance(graph, bytes) else str(graph)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


__all__ = ["cpu_session", "dynamic_spatial_dims"]
