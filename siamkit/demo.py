"""The built-in demo: track an object through a clip and show how well it went.

With no arguments it builds a clip from photographs that installed packages ship (exact
ground truth, see :mod:`siamkit.data.synthetic`), tracks the object with the best available
tracker, and writes the annotated video, the boxes, a GIF preview and a success plot.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from siamkit.utils.io import write_json

log = logging.getLogger("siamkit.demo")

# Peers used when no trained siamkit tracker is available (in this order).
FALLBACK_TRACKERS = ("nanotrack", "opencv:csrt", "opencv:kcf")
#: The shipped model that commands use when no tracker is named. Its validation AUC (0.539 on the 11 held-out
#: videos) is within 0.01 of the best Lite0 family's, and its search branch in onnxruntime int8 runs at over 4× CSRT's
#: frame rate on one CPU thread; the choice was not made on the test clips.
DEFAULT_TRACKER = "nanotrack_lite0"


def _validation_auc(entry: Any) -> float:
    recipe = entry.meta.get("recipe") or {}
    return float(recipe.get("validation_auc_tuned") or 0.0)


def best_tracker() -> tuple[str, str | None, str]:
    """(tracker, weights, why): :data:`DEFAULT_TRACKER` when it ships, else the shipped tracker with the best
    validation AUC (its recipe's, measured on videos held out from training, never on the test clips), else a peer."""
    from siamkit.trackers import available_trackers, usable_trackers
    from siamkit.zoo import list_models

    shipped = [e for e in list_models() if e.meta.get("tracker")]
    if shipped:
        default = [e for e in shipped if e.name == DEFAULT_TRACKER]
        best = default[0] if default else max(shipped, key=_validation_auc)
        return str(best.meta["tracker"]), best.name, f"the default shipped model ({best.name})"
    usable = usable_trackers()
    for name in FALLBACK_TRACKERS:
        if name in usable:
            return name, None, "no trained siamkit tracker ships in this build; using a peer"
    names = available_trackers()
    return names[0], None, "no usable tracker found; using the first registered one"


def default_tracker(weights: str | None = None) -> tuple[str, str | None, str]:
    """(tracker, weights, why) for a command run without a tracker name: the tracker the weights belong
    to, or without weights the default shipped one."""
    if weights:
        tracker, why = tracker_for_weights(weights)
        return tracker, weights, why
    return best_tracker()


def tracker_for_weights(weights: str) -> tuple[str, str]:
    """The tracker a siamkit weights file belongs to (its sidecar's ``meta.tracker`` or architecture)."""
    from siamkit.errors import ConfigError
    from siamkit.trackers import available_trackers
    from siamkit.zoo import resolve

    try:
        entry = resolve(weights)
    except Exception:
        raise ConfigError(
            f"Cannot tell which tracker {weights} belongs to.", hint="Name it with --tracker."
        ) from None
    name = str(entry.meta.get("tracker") or entry.architecture)
    if name not in available_trackers():
        raise ConfigError(f"{weights} is a {entry.architecture} model, not a tracker.", hint="Name it with --tracker.")
    return name, f"from the weights file {Path(str(weights)).name}"


def run_demo(
    out_dir: str | Path = "demo",
    video: str | Path | None = None,
    boxes: Sequence[Sequence[float]] | None = None,
    tracker: str | None = None,
    weights: str | None = None,
    device: str | None = None,
    num_frames: int = 90,
) -> dict[str, Any]:
    """Run the demo and return its summary (also written to ``out_dir/summary.json``)."""
    from siamkit.data.synthetic import make_demo_clip
    from siamkit.errors import BoxError
    from siamkit.trackers.session import track_source
    from siamkit.video import ArraySource

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        from siamkit.errors import ConfigError

        raise ConfigError(f"--out {out} is a file; the demo writes a folder.", hint="Name a folder.")
    out.mkdir(parents=True, exist_ok=True)
    truth = None
    if video is None:
        clip = make_demo_clip(num_frames=num_frames)
        source: Any = ArraySource(clip.frames, fps=25.0, name=clip.name)
        boxes = [clip.boxes[0].tolist()]
        truth = clip.boxes
        clip_name = clip.name
    else:
        if not boxes:
            raise BoxError("`--video` needs the initial box.", hint="Add --box x,y,w,h.")
        source, clip_name = str(video), Path(video).name
    reason = "chosen by you"
    if tracker is None:
        tracker, best_weights, reason = best_tracker()
        weights = weights or best_weights
    log.debug("demo: tracking %s with %s (%s)", clip_name, tracker, reason)
    run = track_source(source, boxes, tracker=tracker, weights=weights, device=device,
                       out_video=out / "out.mp4", save=out / "boxes.json")
    summary: dict[str, Any] = {
        "clip": clip_name,
        "tracker": tracker,
        "why_this_tracker": reason,
        "frames": int(run.boxes.shape[0]),
        "fps": round(run.fps, 2),
        "outputs": {"video": str(out / "out.mp4"), "boxes": str(out / "boxes.json")},
    }
    write_gif(out / "out.mp4", out / "preview.gif")
    summary["outputs"]["preview"] = str(out / "preview.gif")
    if truth is not None:
        from siamkit.eval.tracking.ope import score_sequence

        score = score_sequence(run.boxes[:, 0], truth[: len(run.boxes)], name=clip_name)
        summary.update({k: round(v, 4) for k, v in score.summary().items() if isinstance(v, float)})
        plot_success(score.success, tracker, out / "success.png")
        summary["outputs"]["success_plot"] = str(out / "success.png")
    write_json(out / "summary.json", summary)
    return summary


def write_gif(video: Path, gif: Path, every: int = 3, width: int = 320) -> None:
    """A small looping GIF preview of an annotated video."""
    import cv2
    from PIL import Image

    from siamkit.video import video_frames

    images = []
    for index, frame in enumerate(video_frames(video)):
        if index % every == 0:
            scale = width / frame.shape[1]
            small = cv2.resize(frame, (width, round(frame.shape[0] * scale)), interpolation=cv2.INTER_AREA)
            images.append(Image.fromarray(cv2.cvtColor(small, cv2.COLOR_BGR2RGB)))
    if images:
        images[0].save(gif, save_all=True, append_images=images[1:], duration=120, loop=0, optimize=True)


def plot_success(success: np.ndarray, label: str, path: Path) -> None:
    """Success plot (fraction of frames with IoU above each threshold) with the AUC in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    thresholds = np.linspace(0, 1, len(success))
    fig, ax = plt.subplots(figsize=(4.5, 3.5), dpi=120)
    ax.plot(thresholds, success, lw=2, label=f"{label} [{np.mean(success):.3f}]")
    ax.set(xlabel="overlap threshold", ylabel="success rate", xlim=(0, 1), ylim=(0, 1.02), title="Success plot (demo)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
