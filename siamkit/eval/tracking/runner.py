"""Run a tracker over a benchmark and score the saved results.

Running and scoring are separate (as in pytracking): :func:`run_evaluation` writes one result
file per sequence (OTB/pysot, GOT-10k or VOT layout, see :mod:`.results_io`) plus per-frame
timing, in parallel worker processes, skipping sequences whose result file already exists —
so an interrupted run resumes where it stopped. :func:`evaluate_run` reads only the saved
files (and the dataset's ground truth) and writes ``metrics.json``.

Protocols: ``ope`` (init on the first frame, never re-init), ``lasot`` (OPE scored with absent
frames as misses), ``got10k``, ``vot`` (supervised: re-init ``skip`` = 5 frames after a
failure, i.e. zero overlap with the GT) and ``vot-lt`` (OPE with confidences, long-term F1).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from siamkit.data.benchmarks import open_dataset
from siamkit.data.sequences import Dataset, Sequence
from siamkit.errors import ConfigError, DataError
from siamkit.eval.tracking import results_io as rio
from siamkit.utils.io import write_json
from siamkit.utils.progress import progress

log = logging.getLogger("siamkit.eval")
PROTOCOLS = ("ope", "lasot", "got10k", "vot", "vot-lt")
RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
_SAME_RUN_KEYS = ("tracker", "weights", "options", "dataset", "protocol", "max_frames", "skip")


@dataclass
class EvalJob:
    """Everything a worker needs to run one tracker on one dataset (picklable)."""

    tracker: str
    dataset: str
    out_dir: str
    protocol: str = "ope"
    weights: str | None = None
    device: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    max_frames: int | None = None
    skip: int = 5
    absent_policy: str | None = None  # OPE scoring of frames without a target: "skip" or "failure"

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"Unknown protocol {self.protocol!r}.", hint=f"Use one of: {', '.join(PROTOCOLS)}.")
        if self.max_frames is not None and self.max_frames < 2:
            raise ConfigError("max_frames must be at least 2 (the init frame and one tracked frame).")
        if self.absent_policy not in (None, "skip", "failure"):
            raise ConfigError(f"Unknown absent-frame policy {self.absent_policy!r}.", hint="Use skip or failure.")


def limit_frames(seq: Sequence, max_frames: int | None) -> Sequence:
    """The first ``max_frames`` frames of a sequence (for quick runs); unchanged when None."""
    if max_frames is None or max_frames >= len(seq):
        return seq
    n = max_frames

    def cut(a):
        return None if a is None else np.asarray(a)[:n]

    start, stop = seq.eval_range
    return dataclasses.replace(
        seq,
        gt=seq.gt[:n],
        frame_paths=None if seq.frame_paths is None else seq.frame_paths[:n],
        absent=cut(seq.absent),
        cover=cut(seq.cover),
        polygons=cut(seq.polygons),
        tags={k: v[:n] for k, v in seq.tags.items()},
        init_frame=min(seq.init_frame, n - 1),
        eval_range=(min(start, n), min(stop, n)),
        meta=dict(seq.meta),
    )


# --------------------------------------------------------------------------- one sequence
_TRACKERS: dict[tuple, Any] = {}


def _tracker_for(job: EvalJob):
    """One tracker per worker process and job (weights load once, ``init`` resets state)."""
    key = (job.tracker, job.weights, job.device, json.dumps(job.options, sort_keys=True))
    if key not in _TRACKERS:
        _TRACKERS[key] = _build_tracker(job)
    return _TRACKERS[key]


def _build_tracker(job: EvalJob):
    from siamkit.config import TRACKERS

    if job.tracker.startswith("opencv:"):
        # fast path: the OpenCV peers register without importing torch (worker start-up in ~1 s)
        import siamkit.trackers.peers  # noqa: F401

        if job.tracker in TRACKERS:
            return TRACKERS.build(job.tracker, weights=job.weights, device=job.device, **job.options)
    from siamkit.trackers import create_tracker

    return create_tracker(job.tracker, weights=job.weights, device=job.device, **job.options)


def run_ope(tracker, seq: Sequence, show_progress: bool | None = False) -> dict[str, np.ndarray]:
    """Init on ``seq.init_frame`` and track every later frame; frames before it repeat the init box."""
    n = len(seq)
    boxes = np.full((n, 4), np.nan)
    scores = np.zeros(n)
    times = np.zeros(n)
    init = seq.init_frame
    box0 = seq.init_box
    boxes[:init] = box0
    frames = progress(seq.frames(init), total=n - init, desc=seq.name, unit="frame", leave=False, enable=show_progress)
    for i, frame in enumerate(frames, start=init):
        start = time.perf_counter()
        if i == init:
            tracker.init(frame, box0)
            boxes[i], scores[i] = box0, 1.0
        else:
            result = tracker.track(frame)
            boxes[i], scores[i] = np.asarray(result.box, dtype=np.float64), float(result.score)
        times[i] = time.perf_counter() - start
    return {"boxes": boxes, "scores": scores, "times": times}


def run_supervised(tracker, seq: Sequence, skip: int = 5) -> dict[str, Any]:
    """VOT supervised run: on zero overlap write a failure ``[2]`` and re-init ``skip`` frames later."""
    from siamkit.errors import BoxError
    from siamkit.eval.tracking.vot import region_overlap

    width, height = seq.image_size()
    bound = (width - 1, height - 1)
    regions = seq.polygons if seq.polygons is not None else seq.gt
    traj: list[list[float]] = []
    times = np.zeros(len(seq))
    next_init = 0
    for i, frame in enumerate(seq.frames()):
        start = time.perf_counter()
        if i == next_init:
            try:
                tracker.init(frame, seq.gt[i])
                traj.append([1])
            except BoxError:  # no usable GT on this frame: try the next one
                traj.append([0])
                next_init += 1
        elif i > next_init:
            box = np.asarray(tracker.track(frame).box, dtype=np.float64)
            overlap = region_overlap(box, regions[i], bound)
            if overlap > 0 or np.isnan(overlap):
                traj.append(box.tolist())
            else:
                traj.append([2])
                next_init = i + skip
        else:
            traj.append([0])
        times[i] = time.perf_counter() - start
    return {"trajectory": traj, "times": times}


def result_path(job: EvalJob, name: str) -> Path:
    """The file whose presence marks ``name`` as finished."""
    if job.protocol in ("ope", "lasot"):
        return rio.ope_paths(job.out_dir, name)["boxes"]
    if job.protocol == "got10k":
        return rio.got10k_paths(job.out_dir, name)["boxes"]
    return rio.vot_paths(job.out_dir, name, experiment="longterm" if job.protocol == "vot-lt" else "baseline")["boxes"]


def run_sequence(
    job: EvalJob, name: str, dataset: Dataset | None = None, show_progress: bool | None = False
) -> dict[str, Any]:
    """Run ``job`` on one sequence and write its result files; returns a small summary."""
    dataset = dataset or open_dataset(job.dataset)
    seq = limit_frames(dataset[name], job.max_frames)
    tracker = _tracker_for(job)
    one_based = bool(seq.meta.get("one_based"))
    if job.protocol == "vot":
        out = run_supervised(tracker, seq, job.skip)
        rio.write_vot(job.out_dir, name, out["trajectory"], out["times"])
        failures = sum(1 for e in out["trajectory"] if len(e) == 1 and e[0] == 2)
        return {"name": name, "frames": len(seq), "failures": failures, "time": float(out["times"].sum())}
    out = run_ope(tracker, seq, show_progress)
    if job.protocol in ("ope", "lasot"):
        rio.write_ope(job.out_dir, name, out["boxes"], out["times"], out["scores"], one_based=one_based)
    elif job.protocol == "got10k":
        rio.write_got10k(job.out_dir, name, out["boxes"], out["times"])
    else:
        rio.write_longterm(job.out_dir, name, out["boxes"], out["scores"], out["times"])
    return {"name": name, "frames": len(seq), "time": float(out["times"].sum())}


def _init_worker(parent_pid: int | None = None) -> None:
    """Worker processes use one thread each (N workers must not oversubscribe the cores), and die
    with the parent: a killed ``siamkit eval`` must not leave orphans tracking on."""
    import os

    from siamkit.safety import die_with_parent

    die_with_parent(parent_pid)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import cv2

    cv2.setNumThreads(1)


def _worker(job: EvalJob, name: str) -> dict[str, Any]:
    return run_sequence(job, name)


# --------------------------------------------------------------------------- whole run
def _read_run_json(path: Path) -> dict[str, Any]:
    """``run.json`` as a dict, or a DataError saying it is corrupt (never a traceback)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} is corrupt ({exc}).",
                        hint="Delete it (and the results beside it) or use another --out folder.") from None
    if not isinstance(data, dict):
        raise DataError(f"{path} is corrupt (not a JSON object).", hint="Delete it or use another --out folder.")
    return data


def _has_results(job: EvalJob, record: dict[str, Any]) -> bool:
    """Whether the run ``record`` describes finished any sequence in ``job.out_dir``."""
    try:
        old = EvalJob(str(record.get("tracker")), str(record.get("dataset")), job.out_dir,
                      protocol=record.get("protocol", "ope"))
    except ConfigError:
        return True  # unknown layout: keep it, the user decides
    return any(result_path(old, str(n)).is_file() for n in record.get("sequences") or [])


def _check_run_file(job: EvalJob, names: list[str]) -> None:
    path = Path(job.out_dir) / RUN_FILE
    record = {k: getattr(job, k) for k in _SAME_RUN_KEYS}
    if path.is_file():
        old = _read_run_json(path)
        changed = [k for k in _SAME_RUN_KEYS if old.get(k) != record[k]]
        if changed and not _has_results(job, old):
            changed, old = [], {}  # a run that failed before finishing anything binds the folder to nothing
        if changed:
            raise ConfigError(
                f"{job.out_dir} holds results of a different run ({', '.join(changed)} differ).",
                hint="Use another --out folder, or delete the old results to start again.",
            )
        names = list(dict.fromkeys(old.get("sequences", []) + names))
    import siamkit

    extra = {"device": job.device, "absent_policy": job.absent_policy, "sequences": names}
    write_json(path, record | extra | {"siamkit_version": siamkit.__version__})


def _check_ground_truth(dataset: Dataset, names: list[str]) -> None:
    """Refuse sequences whose ground truth is shorter than their video (they were silently cut)."""
    for name in names:
        dropped = dataset[name].meta.get("dropped_frames")
        if dropped:
            raise DataError(
                f"{name}: the ground truth has {dropped} box(es) fewer than the video has frames.",
                hint="Complete the ground-truth file, or move the extra frames out of the sequence folder.",
            )


def run_evaluation(
    job: EvalJob, sequences: list[str] | None = None, workers: int = 1, show_progress: bool | None = None
) -> dict[str, Any]:
    """Run the pending sequences (in ``workers`` processes), then score everything saved.

    Returns the metrics dict (also written to ``out_dir/metrics.json``).
    """
    from siamkit.safety import check_output_dir

    dataset = open_dataset(job.dataset)
    names = list(dataset.names) if not sequences else dataset.select(list(sequences)).names
    _check_ground_truth(dataset, names)
    check_output_dir(job.out_dir, "results")  # before any work: an unwritable folder fails now
    Path(job.out_dir).mkdir(parents=True, exist_ok=True)
    _check_run_file(job, names)
    pending = [n for n in names if not result_path(job, n).is_file()]
    if len(pending) < len(names):
        log.info("resuming: %d of %d sequences already done", len(names) - len(pending), len(names))
    bar = progress(total=len(pending), desc=f"{job.tracker} on {dataset.name}", unit="seq", enable=show_progress)
    try:
        if workers <= 1 or len(pending) <= 1:
            for name in pending:  # in-process: a per-frame bar too (workers keep quiet)
                run_sequence(job, name, dataset, show_progress=show_progress)
                bar.update(1)
        else:
            context = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(min(workers, len(pending)), mp_context=context, initializer=_init_worker,
                                       initargs=(os.getpid(),))
            try:
                futures = {pool.submit(_worker, job, name): name for name in pending}
                for future in as_completed(futures):
                    future.result()
                    bar.update(1)
            except BaseException:  # Ctrl-C or a failed sequence: drop queued work, keep finished files
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            pool.shutdown()
    finally:
        bar.close()
    return evaluate_run(job.out_dir, dataset=dataset, sequences=names)


# --------------------------------------------------------------------------- scoring saved files
def load_run(out_dir: str | Path) -> dict[str, Any]:
    path = Path(out_dir) / RUN_FILE
    if not path.is_file():
        raise DataError(
            f"{out_dir} is not an evaluation folder ({RUN_FILE} missing).", hint="Run `siamkit eval` first."
        )
    run = _read_run_json(path)
    missing = [k for k in ("tracker", "dataset", "protocol") if k not in run]
    if missing:
        raise DataError(f"{path} is corrupt (no {', '.join(missing)}).", hint="Run `siamkit eval` again.")
    return run


def _fps(times_by_seq: dict[str, np.ndarray | None]) -> float:
    """Tracked frames per second of tracking time (init frames excluded)."""
    frames, total = 0, 0.0
    for t in times_by_seq.values():
        if t is None or len(t) < 2:
            continue
        frames += len(t) - 1
        total += float(np.sum(t[1:]))
    return frames / total if total > 0 else float("nan")


def evaluate_run(
    out_dir: str | Path, dataset: Dataset | None = None, sequences: list[str] | None = None, write: bool = True
) -> dict[str, Any]:
    """Score the saved results of one run folder (reads ``run.json`` for tracker, dataset, protocol)."""
    from siamkit.eval.tracking import got10k, ope, vot

    run = load_run(out_dir)
    dataset = dataset or open_dataset(run["dataset"])
    names = sequences or run.get("sequences") or dataset.names
    job = EvalJob(
        run["tracker"], run["dataset"], str(out_dir), protocol=run["protocol"], max_frames=run.get("max_frames")
    )
    missing = [n for n in names if not result_path(job, n).is_file()]
    if missing:
        raise DataError(
            f"{out_dir}: no results for {len(missing)} sequence(s): {', '.join(missing[:10])}.",
            hint="Run `siamkit eval` again with the same --out to finish them.",
        )
    seqs = {n: limit_frames(dataset[n], job.max_frames) for n in names}
    protocol = job.protocol
    times: dict[str, np.ndarray | None] = {}
    if protocol in ("ope", "lasot"):
        preds = {}
        for n, s in seqs.items():
            saved = rio.read_ope(out_dir, n, one_based=bool(s.meta.get("one_based")))
            preds[n], times[n] = saved["boxes"], saved["times"]
        view = _SeqView(seqs)
        policy = run.get("absent_policy") or ("failure" if protocol == "lasot" else "skip")
        metrics = ope.evaluate_ope(preds, view, absent_policy=policy)
    elif protocol == "got10k":
        preds = {}
        for n in names:
            saved = rio.read_got10k(out_dir, n)
            preds[n], times[n] = saved["boxes"], saved["times"]
        metrics = got10k.evaluate_got10k(preds, _SeqView(seqs), times)
    elif protocol == "vot":
        runs, gts, bounds = {}, {}, {}
        for n, s in seqs.items():
            runs[n] = [rio.read_vot(out_dir, n)]
            t = rio.vot_paths(out_dir, n)["time"]
            times[n] = rio._values(t) if t.is_file() else None
            gts[n] = s.polygons if s.polygons is not None else s.gt
            w, h = s.image_size()
            bounds[n] = (w - 1, h - 1)
        metrics = vot.evaluate_vot(runs, gts, bounds, skip=run.get("skip", 5))
    else:
        preds, scores, gts = {}, {}, {}
        for n, s in seqs.items():
            saved = rio.read_longterm(out_dir, n)
            preds[n], scores[n], times[n] = saved["boxes"], saved["scores"], saved["times"]
            gts[n] = np.where(s.visible()[:, None], s.gt, np.nan)
        metrics = vot.evaluate_longterm(preds, scores, gts)
    metrics = {
        "tracker": run["tracker"],
        "weights": run.get("weights"),
        "dataset": run["dataset"],
        "protocol": protocol,
        "max_frames": run.get("max_frames"),
        "fps": _fps(times),
        "n_sequences": len(names),
    } | {k: v for k, v in metrics.items() if k != "protocol"}
    if write:
        write_json(Path(out_dir) / METRICS_FILE, metrics)
    return metrics


class _SeqView:
    """Dataset-like mapping over already-limited sequences."""

    def __init__(self, seqs: dict[str, Sequence]):
        self._seqs = seqs

    def __getitem__(self, name: str) -> Sequence:
        return self._seqs[name]
