"""ROC and CMC plots (several named curves per figure) and a grid of one-shot trials (PNG, Agg backend).

Plots are drawn from saved numbers (the dicts and arrays the metric functions return), never
from typed-in values.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from siamkit.errors import DataError
from siamkit.utils.io import atomic_write


def _figure():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _roc_points(value: Any) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(value, Mapping):
        far, tar = value.get("far"), value.get("tar")
    elif isinstance(value, (tuple, list)) and len(value) >= 2:
        far, tar = value[0], value[1]
    else:
        far = tar = None
    if far is None or tar is None:
        raise DataError("Each ROC curve must be (far, tar[, thresholds]) or a mapping with 'far' and 'tar'.")
    far, tar = np.asarray(far, dtype=np.float64), np.asarray(tar, dtype=np.float64)
    if far.shape != tar.shape or far.ndim != 1 or far.size < 2:
        raise DataError(f"ROC far and tar must be equal-length 1-D arrays; got {far.shape} and {tar.shape}.")
    return far, tar


def _save(fig, path: str | Path) -> Path:
    plt = _figure()
    path = Path(path)
    if path.suffix.lower() != ".png":
        path = path.with_suffix(".png")
    atomic_write(path, lambda p: fig.savefig(p, dpi=120, bbox_inches="tight", format="png"))
    plt.close(fig)
    return path


def plot_roc(
    curves: Mapping[str, Any],
    path: str | Path,
    log_far: bool = True,
    title: str = "ROC",
) -> Path:
    """Plot TAR against FAR for each named curve (``name → (far, tar)`` from ``roc_curve``).

    ``log_far`` uses a logarithmic FAR axis (the usual view for verification at low FAR); FAR = 0
    points are dropped from that view. The legend shows each curve's AUC.
    """
    if not curves:
        raise DataError("No ROC curves to plot.")
    plt = _figure()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for name, value in curves.items():
        far, tar = _roc_points(value)
        auc = float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2.0))
        keep = far > 0 if log_far else np.ones_like(far, dtype=bool)
        ax.plot(far[keep], tar[keep], label=f"{name} (AUC {auc:.3f})", linewidth=1.5)
    if log_far:
        ax.set_xscale("log")
    else:
        ax.plot([0, 1], [0, 1], color="0.7", linestyle=":", linewidth=1)
    ax.set_xlabel("false accept rate (FAR)")
    ax.set_ylabel("true accept rate (TAR)")
    ax.set_ylim(0, 1.01)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_cmc(curves: Mapping[str, Any], path: str | Path, max_rank: int | None = 20, title: str = "CMC") -> Path:
    """Plot matching rate against rank for each named CMC (``name → cmc array`` or an ``evaluate_reid`` dict)."""
    if not curves:
        raise DataError("No CMC curves to plot.")
    plt = _figure()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for name, value in curves.items():
        cmc = np.asarray(value["cmc"] if isinstance(value, Mapping) else value, dtype=np.float64).reshape(-1)
        if cmc.size == 0:
            raise DataError(f"CMC curve {name!r} is empty.")
        if max_rank:
            cmc = cmc[:max_rank]
        ranks = np.arange(1, cmc.size + 1)
        ax.plot(ranks, cmc, marker="o", markersize=3, label=f"{name} (R1 {100 * cmc[0]:.1f}%)", linewidth=1.5)
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate")
    ax.set_ylim(0, 1.01)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_oneshot_trials(trials, path: str | Path, shots: int = 1, title: str = "one-shot trials") -> Path:
    """A grid of one-shot trials: per row the query, then the support set, with the chosen match framed.

    ``trials``: ``(support_images, query_image, answer, chosen)`` with support images ordered class by
    class (``shots`` each), ``answer``/``chosen`` class indices. The chosen class is framed green when
    right and red when wrong; when wrong, the right class is framed blue.
    """
    if not trials:
        raise DataError("No one-shot trials to plot.")
    plt = _figure()
    cols = 1 + max(len(t[0]) for t in trials)
    fig, axes = plt.subplots(len(trials), cols, figsize=(0.75 * cols, 0.85 * len(trials)), squeeze=False)
    for row, (support, query, answer, chosen) in enumerate(trials):
        panels = [query, *support]
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if col >= len(panels):
                ax.axis("off")
                continue
            image = np.asarray(panels[col])
            ax.imshow(image if image.ndim == 2 else image[:, :, ::-1], cmap="gray" if image.ndim == 2 else None)
            cls = (col - 1) // shots
            colour = None
            if col == 0:
                ax.set_title("query", fontsize=6)
            elif cls == chosen:
                colour = "tab:green" if chosen == answer else "tab:red"
            elif cls == answer:
                colour = "tab:blue"
            if colour:
                for spine in ax.spines.values():
                    spine.set_visible(True)
                    spine.set_color(colour)
                    spine.set_linewidth(2.5)
    fig.suptitle(f"{title} (green: chosen and right, red: chosen and wrong, blue: right)", fontsize=8)
    return _save(fig, path)
