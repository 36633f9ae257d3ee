"""SiamFC running on exported graphs with onnxruntime and NumPy only (no PyTorch).

This is both a deployment example and an independent check of the export: it restates the
SiamFC algorithm of :mod:`siamkit.trackers.siamfc` in NumPy (crops with
:func:`siamkit.ops.crop.crop_numpy`, bicubic upsampling with OpenCV) and must reproduce the
PyTorch tracker's boxes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from siamkit.errors import NotAvailableError, WeightsError
from siamkit.ops.crop import crop_numpy
from siamkit.trackers.base import Tracker, TrackResult


class OnnxSiamFCTracker(Tracker):
    """SiamFC over ``template.onnx`` + ``search.onnx`` written by :func:`siamkit.export.export_model`."""

    name = "siamfc-onnx"

    def __init__(self, export_dir: str | Path):
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError:
            raise NotAvailableError("onnxruntime is not installed.", hint="pip install 'siamkit[export]'.") from None
        folder = Path(export_dir)
        description_file = folder / "model.json"
        if not description_file.is_file():
            raise WeightsError(
                f"{folder} holds no model.json.", hint="Create it with `siamkit export siamfc --onnx DIR`."
            )
        self.description: dict[str, Any] = json.loads(description_file.read_text())
        config = self.description.get("tracker_config") or {}
        if self.description.get("tracker") != "siamfc" or not config:
            raise WeightsError(f"{folder} is not a SiamFC export (tracker {self.description.get('tracker')!r}).")
        self.c = config
        options = ort.SessionOptions()
        providers = ["CPUExecutionProvider"]
        self.template_session = ort.InferenceSession(str(folder / "template.onnx"), options, providers=providers)
        self.search_session = ort.InferenceSession(str(folder / "search.onnx"), options, providers=providers)
        half = config["scale_num"] // 2
        self.factors = config["scale_step"] ** np.linspace(-half, half, config["scale_num"])
        self.upscale = config["response_size"] * config["response_up"]
        window = np.outer(np.hanning(self.upscale), np.hanning(self.upscale))
        self.window = window / window.sum()

    def _prepare(self, crop: np.ndarray) -> np.ndarray:
        chw = crop.transpose(2, 0, 1)
        if self.c["rgb"]:
            chw = chw[::-1]
        return np.ascontiguousarray(chw[None], dtype=np.float32)

    def _init(self, frame: np.ndarray, box: np.ndarray) -> None:
        c = self.c
        self.centre = box[:2] + (box[2:] - 1) / 2
        self.size = box[2:].astype(np.float64)
        p = c["context_amount"] * self.size.sum()
        self.z_sz = float(np.sqrt(np.prod(self.size + p)))
        self.x_sz = self.z_sz * c["instance_size"] / c["exemplar_size"]
        self.avg = frame.reshape(-1, 3).mean(0)
        self.frame_size = np.array([frame.shape[1], frame.shape[0]], np.float64)
        z = crop_numpy(frame, self.centre, self.z_sz, c["exemplar_size"], self.avg)
        self.features = self.template_session.run(None, {"z": self._prepare(z)})

    def _track(self, frame: np.ndarray) -> TrackResult:
        c = self.c
        responses = []
        for f in self.factors:
            x = crop_numpy(frame, self.centre, self.x_sz * f, c["instance_size"], self.avg)
            feeds = {"x": self._prepare(x), **{f"zf{i}": t for i, t in enumerate(self.features)}}
            score = self.search_session.run(None, feeds)[0][0, 0].astype(np.float64)
            responses.append(cv2.resize(score, (self.upscale, self.upscale), interpolation=cv2.INTER_CUBIC))
        responses = np.stack(responses)
        weights = np.full(len(self.factors), c["scale_penalty"])
        weights[len(self.factors) // 2] = 1.0
        penalised = responses * weights[:, None, None]
        scale = int(penalised.reshape(len(self.factors), -1).max(1).argmax())
        peak = float(responses[scale].max())
        chosen = penalised[scale] - penalised[scale].min()
        chosen = chosen / (chosen.sum() + 1e-16)
        mixed = (1 - c["window_influence"]) * chosen + c["window_influence"] * self.window
        row, col = np.unravel_index(int(mixed.argmax()), mixed.shape)
        f = self.factors[scale]
        disp = (np.array([col, row], np.float64) - (self.upscale - 1) / 2) * (c["stride"] / c["response_up"])
        self.centre = self.centre + disp * (self.x_sz * f / c["instance_size"])
        if c.get("clip_to_frame", True):
            self.centre = np.minimum(np.maximum(self.centre, 0), self.frame_size)
        factor = (1 - c["scale_lr"]) + c["scale_lr"] * f
        self.size, self.z_sz, self.x_sz = self.size * factor, self.z_sz * factor, self.x_sz * factor
        box = np.concatenate([self.centre - (self.size - 1) / 2, self.size])
        return TrackResult(box=box, score=peak)
