"""Compare trackers from saved results only: ranked tables (text, Markdown, JSON) and plots.

Each run folder (written by ``siamkit eval``) is re-scored from its result files and the
dataset's ground truth; when the dataset is no longer reachable its ``metrics.json`` is used.
Trackers are ranked like the published plots: OPE by success AUC (value in the legend),
precision plots by precision at 20 px, GOT-10k by AO, VOT by EAO, VOT-LT by F-score.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from siamkit.data.benchmarks import open_dataset
from siamkit.errors import DataError
from siamkit.eval.tracking.ope import NORM_THRESHOLDS, OVERLAP_THRESHOLDS, PIXEL_THRESHOLDS
from siamkit.eval.tracking.runner import METRICS_FILE, evaluate_run, load_run
from siamkit.utils.io import atomic_write, write_json

log = logging.getLogger("siamkit.eval")

# protocol → (rank key, [(column title, key path, format)])
COLUMNS: dict[str, tuple[str, list[tuple[str, tuple[str, ...], str]]]] = {
    "ope": (
        "overall.success_auc",
        [
            ("AUC", ("overall", "success_auc"), "{:.3f}"),
            ("P@20px", ("overall", "precision_20px"), "{:.3f}"),
            ("nP@0.20", ("overall", "norm_precision_at_0.20"), "{:.3f}"),
            ("nP-AUC", ("overall", "norm_precision_auc"), "{:.3f}"),
            ("SR0.5", ("overall", "success_0.5"), "{:.3f}"),
        ],
    ),
    "got10k": (
        "ao",
        [("AO", ("ao",), "{:.3f}"), ("SR0.5", ("sr_0.5",), "{:.3f}"), ("SR0.75", ("sr_0.75",), "{:.3f}")],
    ),
    "vot": (
        "eao",
        [
            ("EAO", ("eao",), "{:.3f}"),
            ("A", ("accuracy",), "{:.3f}"),
            ("R", ("robustness",), "{:.3f}"),
            ("lost", ("lost_number",), "{:.0f}"),
        ],
    ),
    "vot-lt": (
        "f1",
        [("F1", ("f1",), "{:.3f}"), ("Pr", ("precision",), "{:.3f}"), ("Re", ("recall",), "{:.3f}")],
    ),
}
COLUMNS["lasot"] = COLUMNS["ope"]


def _get(metrics: dict[str, Any], path: tuple[str, ...] | str) -> float:
    value: Any = metrics
    for key in path.split(".") if isinstance(path, str) else path:
        value = value.get(key) if isinstance(value, dict) else None
    return float(value) if isinstance(value, (int, float)) else float("nan")


def load_results(dirs: list[str | Path]) -> list[dict[str, Any]]:
    """Metrics of each run folder, re-scored from saved files (``metrics.json`` as fallback)."""
    out = []
    for folder in dirs:
        folder = Path(folder)
        run = load_run(folder)
        try:
            dataset = open_dataset(run["dataset"])
        except DataError as exc:  # ground truth gone: fall back to the scores saved with the run
            cached = folder / METRICS_FILE
            if not cached.is_file():
                raise
            log.warning("%s: dataset unavailable, using saved %s (%s)", folder, METRICS_FILE, exc)
            metrics = json.loads(cached.read_text())
        else:
            metrics = evaluate_run(folder, dataset=dataset, write=False)
        metrics["folder"] = str(folder)
        out.append(metrics)
    labels = [(m["protocol"], m["tracker"]) for m in out]
    for m in out:  # the folder name tells apart runs of the same tracker under one protocol
        unique = labels.count((m["protocol"], m["tracker"])) == 1
        m["label"] = m["tracker"] if unique else f"{m['tracker']} ({Path(m['folder']).name})"
    return out


def rank(results: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Results grouped by protocol, each group sorted best first."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault(r["protocol"], []).append(r)
    for protocol, group in groups.items():
        key = COLUMNS[protocol][0]
        group.sort(key=lambda r: -np.nan_to_num(_get(r, key), nan=-np.inf))
    return groups


def table_rows(protocol: str, group: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    header = ["#", "tracker"] + [c[0] for c in COLUMNS[protocol][1]] + ["FPS", "seqs"]
    rows = []
    for i, r in enumerate(group, start=1):
        cells = [str(i), r["label"]]
        for _title, path, fmt in COLUMNS[protocol][1]:
            v = _get(r, path)
            cells.append("—" if np.isnan(v) else fmt.format(v))
        fps = _get(r, ("fps",))
        cells += ["—" if np.isnan(fps) else f"{fps:.1f}", str(r.get("n_sequences", ""))]
        rows.append(cells)
    return header, rows


def _title(protocol: str, group: list[dict[str, Any]]) -> str:
    datasets = sorted({r["dataset"] for r in group})
    frames = {r.get("max_frames") for r in group}
    limit = f", first {frames.pop()} frames" if len(frames) == 1 and None not in frames else ""
    extra = ""
    if protocol == "vot":
        spans = {tuple(r.get("eao_interval") or ()) for r in group}
        extra = ", EAO over sequence lengths " + " / ".join(f"{a}–{b}" for a, b in sorted(s for s in spans if s))
    return f"{protocol} on {', '.join(datasets)}{limit}{extra}"


def to_text(groups: dict[str, list[dict[str, Any]]]) -> str:
    parts = []
    for protocol, group in groups.items():
        header, rows = table_rows(protocol, group)
        widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]
        lines = [_title(protocol, group), "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def to_markdown(groups: dict[str, list[dict[str, Any]]]) -> str:
    parts = ["# Tracking results", "", "Computed by `siamkit report` from saved result files only."]
    for protocol, group in groups.items():
        header, rows = table_rows(protocol, group)
        parts += ["", f"## {_title(protocol, group)}", "", "| " + " | ".join(header) + " |"]
        parts.append("|" + "|".join("---" for _ in header) + "|")
        parts += ["| " + " | ".join(row) + " |" for row in rows]
        attrs = sorted({a for r in group for a in (r.get("attributes") or {})})
        if attrs and protocol in ("ope", "lasot"):
            parts += ["", "Success AUC per attribute:", "", "| tracker | " + " | ".join(attrs) + " |"]
            parts.append("|---|" + "|".join("---" for _ in attrs) + "|")
            for r in group:
                cells = [f"{_get(r, ('attributes', a, 'success_auc')):.3f}" for a in attrs]
                parts.append(f"| {r['label']} | " + " | ".join(c.replace("nan", "—") for c in cells) + " |")
    return "\n".join(parts) + "\n"


def to_json(groups: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for protocol, group in groups.items():
        out[protocol] = [
            {
                "rank": i,
                "tracker": r["tracker"],
                "label": r["label"],
                "folder": r["folder"],
                "dataset": r["dataset"],
                "fps": r.get("fps"),
                **{title: _get(r, path) for title, path, _ in COLUMNS[protocol][1]},
                "metrics": {k: v for k, v in r.items() if k not in ("sequences", "folder", "label")},
            }
            for i, r in enumerate(group, start=1)
        ]
    return out


def plot(groups: dict[str, list[dict[str, Any]]], out_dir: str | Path) -> list[Path]:
    """Success and precision plots (PNG and SVG) per protocol; legends carry the ranking score."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    written: list[Path] = []
    for protocol, group in groups.items():
        specs = []
        if protocol in ("ope", "lasot"):
            specs = [
                (
                    "success",
                    OVERLAP_THRESHOLDS,
                    "success_curve",
                    ("overall", "success_auc"),
                    "Overlap threshold",
                    "Success rate",
                ),
                (
                    "precision",
                    PIXEL_THRESHOLDS,
                    "precision_curve",
                    ("overall", "precision_20px"),
                    "Location error threshold (px)",
                    "Precision",
                ),
                (
                    "norm_precision",
                    NORM_THRESHOLDS,
                    "norm_precision_curve",
                    ("overall", "norm_precision_auc"),
                    "Normalised location error threshold",
                    "Normalised precision",
                ),
            ]
        elif protocol == "got10k":
            specs = [("success", np.linspace(0, 1, 101), "success_curve", ("ao",), "Overlap threshold", "Success rate")]
        elif protocol == "vot":
            specs = [
                (
                    "expected_overlap",
                    None,
                    "expected_overlap_curve",
                    ("eao",),
                    "Sequence length (frames)",
                    "Expected overlap",
                )
            ]
        for kind, xs, curve_key, score_path, xlabel, ylabel in specs:
            ordered = sorted(group, key=lambda r: -np.nan_to_num(_get(r, score_path), nan=-1))
            fig, ax = plt.subplots(figsize=(6, 4.5))
            for r in ordered:
                container = r.get("overall", r)
                curve = np.asarray(container.get(curve_key) or r.get(curve_key) or [], dtype=np.float64)
                if curve.size == 0:
                    continue
                x = np.arange(curve.size) if xs is None else xs
                ax.plot(x, curve, label=f"[{_get(r, score_path):.3f}] {r['label']}", linewidth=1.8)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.set_ylim(0, 1.02)
            ax.grid(alpha=0.3)
            ax.set_title(f"{kind.replace('_', ' ').capitalize()} plots — {_title(protocol, group)}", fontsize=9)
            ax.legend(loc="lower left" if kind == "success" else "lower right", fontsize=8)
            fig.tight_layout()
            for ext in ("png", "svg"):
                path = out_dir / f"{protocol}_{kind}.{ext}"
                atomic_write(path, lambda p, e=ext, f=fig: f.savefig(p, format=e, dpi=120))
                written.append(path)
            plt.close(fig)
    return written


def make_report(dirs: list[str | Path], out_dir: str | Path | None = None, plots: bool = True) -> dict[str, Any]:
    """Tables (+ plots when ``out_dir`` is given) comparing the run folders ``dirs``."""
    if not dirs:
        raise DataError("No result folders given.", hint="Pass one or more folders written by `siamkit eval`.")
    groups = rank(load_results(dirs))
    report = {"text": to_text(groups), "markdown": to_markdown(groups), "json": to_json(groups), "files": []}
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(out_dir / "report.md", lambda p: p.write_text(report["markdown"]))
        write_json(out_dir / "report.json", report["json"])
        report["files"] = [out_dir / "report.md", out_dir / "report.json"]
        if plots:
            report["files"] += plot(groups, out_dir)
    return report


def format_summary(metrics: dict[str, Any]) -> str:
    """One-line summary of a run's metrics for the terminal."""
    protocol = metrics["protocol"]
    parts = [f"{metrics['tracker']} · {protocol} · {metrics.get('n_sequences')} sequences"]
    for title, path, fmt in COLUMNS[protocol][1]:
        v = _get(metrics, path)
        if not np.isnan(v):
            parts.append(f"{title} {fmt.format(v)}")
    fps = _get(metrics, ("fps",))
    if not np.isnan(fps):
        parts.append(f"FPS {fps:.1f}")
    return " · ".join(parts)
