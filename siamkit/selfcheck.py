"""Environment report and a short self-check of the installation."""

from __future__ import annotations

import importlib
import platform
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def environment() -> dict[str, str]:
    """Versions of Python, siamkit and the packages it relies on, and the compute devices."""
    import siamkit

    info = {"python": platform.python_version(), "platform": platform.platform(), "siamkit": siamkit.__version__}
    for module, key in (
        ("torch", "torch"),
        ("numpy", "numpy"),
        ("cv2", "opencv"),
        ("faiss", "faiss"),
        ("safetensors", "safetensors"),
        ("onnxruntime", "onnxruntime"),
        ("fastapi", "fastapi"),
    ):
        try:
            info[key] = getattr(importlib.import_module(module), "__version__", "installed")
        except ImportError:
            info[key] = "not installed"
    try:
        import torch

        info["cuda"] = (
            f"{torch.cuda.device_count()} × {torch.cuda.get_device_name(0)}"
            if torch.cuda.is_available()
            else "not available (CPU only)"
        )
        info["threads"] = str(torch.get_num_threads())
    except ImportError:
        pass
    return info


def run_checks() -> list[Check]:
    """Quick checks that the core stack works end to end (a few hundred milliseconds)."""
    checks: list[Check] = []

    def check(name: str, fn) -> None:
        try:
            detail = fn()
            checks.append(Check(name, True, detail))
        except Exception as exc:  # a self-check reports every failure, whatever it is
            checks.append(Check(name, False, f"{type(exc).__name__}: {exc}"))

    def geometry() -> str:
        from siamkit.geometry import iou

        value = float(iou(np.array([0, 0, 10, 10.0]), np.array([5, 0, 10, 10.0])))
        assert abs(value - 1 / 3) < 1e-12, value
        return f"IoU of half-overlapping boxes = {value:.4f}"

    def correlation() -> str:
        import torch
        import torch.nn.functional as F

        z = torch.randn(1, 8, 3, 3)
        x = torch.randn(1, 8, 9, 9)
        out = F.conv2d(x, z)
        ref = (x[0, :, 3:6, 3:6] * z[0]).sum()
        assert torch.allclose(out[0, 0, 3, 3], ref, atol=1e-4)
        return f"cross-correlation map {tuple(out.shape[-2:])} matches a direct sum"

    def opencv() -> str:
        import cv2

        frame = np.zeros((48, 64, 3), np.uint8)
        cv2.rectangle(frame, (10, 10), (30, 30), (0, 255, 0), -1)
        assert frame[20, 20, 1] == 255
        trackers = [n for n in ("TrackerCSRT_create", "TrackerKCF_create") if hasattr(cv2, n)]
        return f"OpenCV {cv2.__version__}; contrib trackers: {', '.join(trackers) or 'none'}"

    def faiss_search() -> str:
        import faiss

        data = np.random.default_rng(0).standard_normal((100, 16)).astype("float32")
        index = faiss.IndexFlatL2(16)
        index.add(data)
        _, ids = index.search(data[:5], 1)
        assert ids[:, 0].tolist() == [0, 1, 2, 3, 4]
        return "exact search finds every vector itself"

    check("geometry", geometry)
    check("torch correlation", correlation)
    check("opencv", opencv)
    check("faiss", faiss_search)
    return checks
