"""Render the README's result tables from ``benchmarks/results/*.json`` (never typed by hand).

    python benchmarks/readme_tables.py          # rewrite the tables in README.md
    python benchmarks/readme_tables.py --check  # exit 1 when README.md is out of date

Each table sits between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->`` markers.
A table whose JSON file is missing renders as a short note saying so.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f} %"


def num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def held_out_clips() -> list[str]:
    """Clips no shipped tracker was trained on (from the zoo sidecars' ``held_out`` lists)."""
    from siamkit.zoo import PACKAGE_ZOO, read_sidecar

    sets = [set(read_sidecar(p).meta.get("held_out") or []) for p in sorted(PACKAGE_ZOO.glob("*.yaml"))]
    sets = [s for s in sets if s]
    return sorted(set.intersection(*sets)) if sets else []


def tracking_accuracy(d: dict) -> str:
    sys.path.insert(0, str(ROOT))
    held = held_out_clips()
    trackers = sorted(d["trackers"].items(), key=lambda kv: -kv[1]["success_auc"])
    rows = []
    for name, m in trackers:
        per_seq = m.get("sequences", {})
        held_auc = [per_seq[c]["success_auc"] for c in held if c in per_seq]
        rows.append([f"`{name}`", num(m["success_auc"]), num(m["precision_20px"]),
                     num(sum(held_auc) / len(held_auc)) if held_auc else "–", num(m.get("fps"), 1)])
    header = ["tracker", "success AUC (12 clips)", "precision @20 px", f"AUC on the {len(held)} held-out clips",
              "FPS (CPU)"]
    note = (f"Held-out clips ({', '.join(held)}): no shipped siamkit model was trained on them; the other six "
            "were training data for the shipped models, so compare trained models on the held-out column.")
    return table(header, rows) + f"\n\n{note} {d['note']}"


def siamfc_heldout(d: dict) -> str:
    rows = [[name, num(m["success_auc"]), num(m["precision_20px"]), num(m.get("fps"), 1)]
            for name, m in d["trackers"].items()]
    held = ", ".join(d["held_out_sequences"])
    recipe = d.get("recipe", {})
    return (table(["tracker", "success AUC", "precision @20 px", "FPS (CPU)"], rows)
            + f"\n\nHeld-out clips (never trained on): {held}. Trained for {recipe.get('steps', '?')} steps in "
            f"{recipe.get('wall_time_s', 0) / 60:.0f} min on {recipe.get('device', '?')}.")


def cpu_heldout(d: dict) -> str:
    trackers = d["trackers"]
    csrt_fps = (trackers.get("opencv:csrt") or {}).get("fps")
    rows = []
    for name, m in trackers.items():
        if "skipped" in m:
            rows.append([name, "–", "–", "–", f"skipped ({m['skipped'][:60]})"])
            continue
        ratio = f"{m['fps'] / csrt_fps:.2f}×" if m.get("fps") and csrt_fps else "–"
        rows.append([name, num(m["success_auc"]), num(m["precision_20px"]), num(m.get("fps"), 1), ratio])
    held = ", ".join(d["held_out_sequences"])
    recipe = d.get("recipe") or {}
    met = [n for n, v in d.get("verdict", {}).items() if v["meets_target"]]
    verdict = (f"Target (beat CSRT's AUC at ≥ 2× its FPS) met by: {', '.join(met)}." if met
               else "Target (beat CSRT's AUC at ≥ 2× its FPS) not met by any siamkit row.")
    cost = d.get("int8_auc_cost")
    int8 = (f" int8 changes the light model's AUC by {-cost:+.3f} against onnxruntime fp32 (goal: lose ≤ 0.005)."
            if cost is not None else "")
    return (table(["tracker", "success AUC", "precision @20 px", "FPS (CPU, 1 thread)", "FPS / CSRT's"], rows)
            + f"\n\nHeld-out clips (never trained on): {held}. {verdict}{int8} The light model trained for "
            f"{recipe.get('steps', '?')} steps in {recipe.get('wall_time_s', 0) / 60:.0f} min on "
            f"{recipe.get('device', '?')}. {d['note'][:1].upper() + d['note'][1:]}.")


def test_clips(d: dict) -> str:
    trackers = d["trackers"]
    csrt_fps = trackers["opencv:csrt"].get("fps")
    rows = []
    for name, m in sorted(trackers.items(), key=lambda kv: -kv[1]["success_auc"]):
        ratio = f"{m['fps'] / csrt_fps:.2f}×" if m.get("fps") and csrt_fps else "–"
        rows.append([name, num(m["success_auc"]), num(m["precision_20px"]), num(m.get("fps"), 1), ratio])
    recipe = d.get("recipe") or {}
    verdicts = d.get("verdict", {})
    met = [n for n, v in verdicts.items() if v["meets_goal"]]
    goal = "Goal (AUC ≥ CSRT's and ≥ cv2.TrackerNano's, at ≥ 2× CSRT's FPS)"
    verdict = f"{goal} met by: {', '.join(met)}." if met else f"{goal} not met by any siamkit row."
    load = d["machine"]
    return (table(["tracker", "success AUC", "precision @20 px", f"FPS (CPU, {load['threads']} thread(s))",
                   "FPS / CSRT's"], rows)
            + f"\n\nAll {len(d['clips'])} shared clips, scored once (the test set: nothing was trained, tuned or "
            f"selected on them). {verdict} Load average {load['load_average_1m_at_start']}–"
            f"{load['load_average_1m_at_end']} on {load['cpus']} cores, {load['threads']} thread(s) per tracker. "
            f"Recipe: `{recipe.get('config', '?')}`, {recipe.get('steps', '?')} steps "
            f"(cached features), {recipe.get('total_wall_time_s', 0) / 60:.0f} min of training and tuning on CPU.")


def test_clips_families(d: dict) -> str:
    """Every trained tracker family on the test clips: AUC and FPS in PyTorch and onnxruntime, beside the peers."""
    trackers, verdicts = d["trackers"], d.get("verdict", {})
    csrt = trackers["opencv:csrt"]
    families = [name for name in trackers if "," not in name and not name.startswith("opencv:")]
    rows = []
    for name in sorted(families, key=lambda n: -trackers[n]["success_auc"]):
        m, ort = trackers[name], trackers.get(f"{name}, onnxruntime fp32", {})
        ort_fps = num(ort.get("fps"), 1) if "skipped" not in ort else "does not run¹"
        v = verdicts.get(name, {})
        rows.append([f"`{name}`", f"`{Path(d['weights'][name]).stem}`", num(m["success_auc"]),
                     num(m["precision_20px"]), f"{v.get('auc_ratio_vs_csrt', 0):.2f}×",
                     "yes" if v.get("meets_family_goal") else "**no**", num(m.get("fps"), 1), ort_fps])
    for name in sorted(n for n in trackers if n.startswith("opencv:")):
        m = trackers[name]
        rows.append([f"`{name.split(' ')[0]}`", "–", num(m["success_auc"]), num(m["precision_20px"]),
                     f"{m['success_auc'] / csrt['success_auc']:.2f}×", "–", num(m.get("fps"), 1), "–"])
    load = d["machine"]
    return (table(["tracker", "weights", "success AUC", "precision @20 px", "AUC / CSRT's", "≥ 0.9× CSRT",
                   f"FPS torch ({load['threads']} threads)", "FPS onnxruntime"], rows)
            + "".join(f"\n\n¹ {name.split(',')[0]} in onnxruntime: {m['skipped']}" for name, m in trackers.items()
                      if "skipped" in m)
            + f"\n\nAll {len(d['clips'])} shared clips, scored once per model (the test set: nothing was trained, "
            f"tuned or selected on them), all rows in one run on {load['cpus']} cores, {load['threads']} threads per "
            f"tracker, load average {load['load_average_1m_at_start']}–{load['load_average_1m_at_end']}.")


def davis_masks(d: dict) -> str:
    """SiamMask's masks on the DAVIS validation videos at the chosen threshold: J, F, J&F and its box's J."""
    t = d["thresholds"].index(d["best_threshold"])
    rows = [[f"`{r['sequence']}`", str(r["frames"]), num(r["J"][t]), num(r["F"][t]), num(r["JF"][t]), num(r["box_J"])]
            for r in d["sequences"]]
    rows.append(["**mean**", str(sum(r["frames"] for r in d["sequences"])), num(d["mean"]["J"][t]),
                 num(d["mean"]["F"][t]), num(d["mean"]["JF"][t]), num(d["box_J"])])
    tried = ", ".join(f"{v:g}" for v in d["thresholds"])
    return (table(["DAVIS video (held out)", "frames scored", "J (mask IoU)", "F (contour)", "J&F",
                   "J of its own box"], rows)
            + f"\n\nMask threshold {d['best_threshold']:g}, chosen on these videos among {tried} (best mean J&F); "
            "tracked from the first frame's box, never re-initialised, frames 2…N scored.")


def metric_learning(d: dict) -> str:
    """Shipped similarity models on their test splits (scored once) beside the baselines of the same run."""
    tasks = {
        "omniglot": ("Omniglot 20-way one-shot, Lake's all_runs (evaluation alphabets)",
                     "Koch et al. 2015: 92.0 %; humans 95.5 %"),
        "faces": ("ORL faces verification, 10 unseen subjects", "3.33 % EER (published anchor)"),
        "signatures": ("BHSig260 subset, genuine vs skilled forgery, 2 unseen writers",
                       "SigNet on full BHSig260: ~14-15 % EER"),
        "reid": ("Market-1501 subset re-ID, 75 unseen ids", "not comparable with official Market-1501"),
    }
    rows = []
    for name, (task, anchor) in tasks.items():
        r = d["models"].get(name)
        if r is None:
            continue
        m, base, g = r["model"], r["baselines"], r["goal"]
        v = r.get("validation") or {}
        if name == "omniglot":
            test = f"accuracy {pct(m['accuracy'])}; drawers swapped {pct(m['swapped']['accuracy'])}"
            baseline = f"pixels {pct(base['baseline:pixels']['accuracy'])}"
            val = f"{pct(v.get('accuracy'))} ({v.get('trials')} random trials, {len(v.get('alphabets', []))} alphabets)"
        elif name == "reid":
            p, rr, h = m["plain"], m["re_ranked"], base["baseline:histogram"]
            test = (f"rank-1 {pct(p['rank1'])}, mAP {pct(p['mAP'])}; re-ranked {pct(rr['rank1'])} / "
                    f"{pct(rr['mAP'])}")
            baseline = (f"colour histogram {pct(h['plain']['rank1'])} / {pct(h['plain']['mAP'])} "
                        f"(re-ranked {pct(h['re_ranked']['rank1'])} / {pct(h['re_ranked']['mAP'])})")
            val = f"rank-1 {pct(v['plain']['rank1'])}, mAP {pct(v['plain']['mAP'])}" if "plain" in v else "–"
        else:
            test = f"EER {pct(m['eer'])}, AUC {num(m['auc'])}, TAR@FAR=1e-2 {pct(m['tar_at_far']['0.01'])}"
            baseline = f"pixels: EER {pct(base['baseline:pixels']['eer'])}"
            val = f"EER {pct(v.get('eer'))}" if "eer" in v else "–"
        short = g["short_by_points"]
        if isinstance(short, dict):
            short = max(x for variant in short.values() for x in variant.values())
        verdict = "met" if g["met"] else f"not met (short by {short:.1f} points)"
        minutes = (r["recipe"].get("train_wall_time_s") or 0) / 60
        rows.append([task, f"`{name}`", test, baseline, f"{g['target']}: {verdict}", val,
                     f"{minutes:.0f} min, {r['recipe'].get('steps')} steps", anchor])
    machine = d["machine"]
    return (table(["task", "model", "test (scored once)", "baseline (same run)", "goal", "validation (selection)",
                   "training (1 CPU thread)", "compare with"], rows)
            + f"\n\n{d['note']} Load average {machine['load_average_1m_at_start']}–"
            f"{machine['load_average_1m_at_end']} on {machine['cpus']} cores. Plots: `benchmarks/results/similarity/`."
            )


def loss_speed(d: dict) -> str:
    rows = [[r["loss"], r["batch"], num(r["siamkit_ms"], 1), num(r["pml_ms"], 1), f"{r['ratio_pml_over_siamkit']:.2f}×",
             "yes" if r["values_agree"] else "no"] for r in d["results"]]
    return table(["loss", "B", "siamkit ms", "pytorch-metric-learning ms", "speed-up", "same value"], rows) + (
        f"\n\nForward + backward, D = {d['results'][0]['dim']}, CPU, {d['meta']['threads']} thread(s), medians.")


def gallery_search(d: dict) -> str:
    def params(r: dict) -> str:
        return ", ".join(f"{k}={r[k]}" for k in ("nlist", "nprobe", "M", "ef_construction", "ef_search") if k in r)

    rows = [[r["kind"], params(r), num(r["build_s"], 0), num(r["qps"], 0), num(r["recall_at_10"])] for r in d["runs"]]
    return table(["index", "parameters", "build s", "queries/s", "recall@10"], rows) + (
        f"\n\n{d['n']:,} × {d['dim']} vectors ({d['data']}), {d['threads']} CPU threads.")


def nanotrack_parity(d: dict) -> str:
    s = d["summary"]

    def iou_with(row: dict, ref: str, digits: int = 3) -> str:
        return num(row.get(f"mean_iou_vs_{ref}"), digits)

    rows = []
    for v in (1, 2, 3):
        ours, orig = s.get(f"siamkit_v{v}"), s.get(f"original_v{v}", {})
        if ours:
            rows.append([f"siamkit `nanotrack`, v{v} weights (preset `v{v}`)", num(ours["mean_auc"]),
                         iou_with(orig, f"siamkit_v{v}", 6) if orig else "–", "–", num(ours["fps_overall"], 1)])
    if "opencv" in s:
        rows.append(["OpenCV `cv2.TrackerNano` (v2 ONNX graphs)", num(s["opencv"]["mean_auc"]), "–", "1 (reference)",
                     num(s["opencv"]["fps_overall"], 1)])
        like = s["siamkit_opencv"]
        rows.append(["siamkit `nanotrack`, v2 weights, preset `opencv`", num(like["mean_auc"]), "–",
                     f"{iou_with(like, 'opencv', 6)} "
                     f"({pct(like.get('identical_frames_vs_opencv'))} of boxes identical)",
                     num(like["fps_overall"], 1)])
    text = table(["tracker", "mean AUC (12 clips)", "mean IoU with the original PyTorch tracker (same version)",
                  "mean IoU with cv2.TrackerNano", "FPS (1 thread)"], rows)
    steps = [k.split(":", 2)[2] for k in s if k.startswith("step:only:")]
    if steps:
        step_rows = []
        for step in steps:
            only, but = s[f"step:only:{step}"], s[f"step:all_but:{step}"]
            step_rows.append([f"`{step}`", num(only["mean_auc"]), iou_with(only, "siamkit_v2"), num(but["mean_auc"]),
                              iou_with(but, "opencv")])
        text += ("\n\nWhere cv2.TrackerNano departs from the original (v2; `siamkit.trackers.nanotrack.OPENCV_STEPS`, "
                 "`constants` = its window influence 0.455, penalty k 0.055, lr 0.37), one step at a time:\n\n")
        text += table(["OpenCV step", "AUC: original + this step", "IoU with the original",
                       "AUC: OpenCV − this step", "IoU with OpenCV"], step_rows)
    parity = d.get("onnx_parity") or {}
    if parity and "skipped" not in parity:
        parts = [f"v{k[1:]}: logits {v['logits']:.1e}, log-distances {v['log_distances']:.1e}, features "
                 f"{max(v['template_features'], v['search_features']):.1e} (peak {v['feature_peak']:.0f})"
                 for k, v in sorted(parity.items())]
        text += ("\n\nsiamkit's networks vs the authors' ONNX graphs in onnxruntime (largest absolute difference "
                 "on real crops): " + "; ".join(parts) + ".")
    pub = d.get("published") or {}
    if pub:
        rows = []
        for clip, entry in pub.items():
            for source, row in entry["sources"].items():
                cells = [f"`{clip}` ({entry['benchmark']}, ×{entry['scale']:g})", source, str(row["compared_frames"]),
                         num(row["auc_vs_gt"])]
                for v in (1, 2, 3):
                    r = row.get(f"siamkit_v{v}")
                    cells.append("–" if r is None else f"{num(r['mean_iou'])} / {num(r['mean_centre_error_px'], 1)}")
                rows.append(cells)
        text += ("\n\nAgainst the authors' published raw results (their boxes mapped onto our trimmed, downscaled "
                 "clips; mean IoU / mean centre error in our pixels, frames 2…):\n\n")
        text += table(["clip", "published run", "frames", "its AUC vs our GT", "siamkit v1", "siamkit v2",
                       "siamkit v3"], rows)
    return text


def tracking_speed(d: dict) -> str:
    def per_s(m: dict, key: str) -> str:
        return num((m.get(key) or {}).get("per_s"), 1)

    rows = [[f"`{m['tracker']}`", m["device"], m["dtype"], per_s(m, "e2e_b1"), per_s(m, "network_b1"),
             per_s(m, "e2e_b8"), num((m.get("e2e_b8") or m.get("e2e_b1") or {}).get("peak_mem_mb"), 0)]
            for m in d["models"]]
    text = table(["tracker", "device", "precision", "frames/s (1 target)", "network forwards/s",
                  f"target-frames/s ({d['batch_targets']} targets)", "peak MB"], rows)
    peers = ", ".join(f"`{k}` {num(v.get('per_s'), 1)} frames/s" for k, v in d.get("peers", {}).items())
    text += f"\n\n{d['frame_size'][0]}×{d['frame_size'][1]} frames, {d['threads']} CPU threads. Peers: {peers}."
    for name, r in d.get("pysot", {}).items():
        sync = r.get("agreement_gt_synced", {})
        text += (f"\n\nSide by side with pysot ({name}, same random weights, same frames): siamkit/pysot speed "
                 f"{r['speed_ratio']:.2f}× ({num(r['e2e_siamkit']['per_s'], 1)} vs {num(r['e2e_pysot']['per_s'], 1)} "
                 f"frames/s); boxes agree to {num(sync.get('mean_centre_px'))} px mean centre distance "
                 f"(IoU {num(sync.get('mean_iou'))}) when both restart from the same box each frame.")
        for key in ("siamkit_ort_fp32", "siamkit_ort_int8"):
            if f"e2e_{key}" in r:
                agree = r.get(f"agreement_gt_synced_{key}", {})
                text += (f" With the search branch in onnxruntime {key[-4:]}: {r[f'speed_ratio_{key}']:.2f}× pysot "
                         f"({num(r[f'e2e_{key}']['per_s'], 1)} frames/s), boxes {num(agree.get('mean_centre_px'))} px "
                         f"from pysot's (IoU {num(agree.get('mean_iou'))}).")
    return text + f"\n\n{d['note']}"


def pair_loader(d: dict) -> str:
    rows = [[r["targets"], r["workers"], num(r["pairs_per_s"], 1)] for r in d["runs"]]
    return table(["targets", "DataLoader workers", "pairs/s"], rows) + f"\n\n{d['note']}"


def zoo(_: dict | None) -> str:
    sys.path.insert(0, str(ROOT))
    from siamkit.zoo import PACKAGE_ZOO, read_sidecar

    rows = []
    for sidecar in sorted(PACKAGE_ZOO.glob("*.yaml")):
        e = read_sidecar(sidecar)
        size = e.weights.stat().st_size / 1e6 if e.weights and e.weights.exists() else 0
        metrics = e.meta.get("metrics") or {}
        shown = ", ".join(f"{k} {num(v)}" for k, v in metrics.items() if isinstance(v, float) and k in
                          ("accuracy", "auc", "eer", "rank1", "mAP", "success_auc", "precision_20px"))
        rows.append([f"`{e.name}`", e.meta.get("task", e.meta.get("tracker", "")), f"{size:.2f} MB", shown])
    return table(["zoo name", "task", "size", "measured"], rows)


def parity(d: dict) -> str:
    """Parity with the reference implementations (benchmarks/parity.py), plus NanoTrack's rows if measured."""
    rows = []
    for r in d["rows"]:
        commit = r.get("peer_commit") or "?"
        repo, _, sha = commit.partition("@")
        iou = num(r["min_mask_iou"], 4) if r.get("min_mask_iou") is not None else "–"
        rows.append([f"`{r['tracker']}`", f"{repo} @ `{sha[:7]}`", f"{r['max_box_px']:.1e}", iou, r["compared"]])
    nano = load("nanotrack_parity")
    for v in (1, 2, 3):
        orig = (nano or {}).get("summary", {}).get(f"original_v{v}") or {}
        dist = orig.get(f"max_centre_dist_vs_siamkit_v{v}")
        if dist is not None:
            clips = len(nano.get("clips", {}))
            repo, _, sha = d.get("peer_commits", {}).get("NanoTrack", "HonglinChu/SiamTrackers@").partition("@")
            rows.append([f"`nanotrack` v{v}", f"{repo} @ `{sha[:7]}` (NanoTrack)", f"{dist:.1e} (centre)", "–",
                         f"the authors' v{v} weights, {clips} clips; mean IoU "
                         f"{num(orig.get(f'mean_iou_vs_siamkit_v{v}'), 6)} (benchmarks/nanotrack_parity.py)"])
    note = (f"\n\nClip: {d['clip']}; weights: {d['weights']}. Tolerances: box ≤ {d['tolerance']['max_box_px']} px, "
            f"mask IoU ≥ {d['tolerance']['min_mask_iou']}.")
    skipped = "".join(f"\n\nNot measured: {s['peer']} ({s['reason']})." for s in d.get("skipped", []))
    return table(["tracker", "reference @ commit", "max box difference (px)", "min mask IoU", "what is compared"],
                 rows) + note + skipped


RENDERERS: dict[str, tuple[str | None, Callable[[dict | None], str]]] = {
    "zoo": (None, zoo),
    "tracking_accuracy": ("tracking_accuracy", tracking_accuracy),
    "siamfc_heldout": ("siamfc_cpu_heldout", siamfc_heldout),
    "cpu_heldout": ("cpu_heldout", cpu_heldout),
    "test_clips": ("test_clips_nanotrack_lite0", test_clips),
    "test_clips_families": ("test_clips_families", test_clips_families),
    "davis_masks": ("davis_masks", davis_masks),
    "nanotrack_parity": ("nanotrack_parity", nanotrack_parity),
    "parity": ("parity", parity),
    "tracking_speed": ("tracking_speed", tracking_speed),
    "metric_learning": ("similarity", metric_learning),
    "loss_speed": ("loss_speed", loss_speed),
    "gallery_search": ("gallery_search", gallery_search),
    "pair_loader": ("pair_loader", pair_loader),
}


def render(readme: str) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in RENDERERS:
            return match.group(0)
        source, fn = RENDERERS[name]
        data = load(source) if source else None
        body = fn(data) if (data is not None or source is None) else f"_No results yet: run `benchmarks/{source}.py`._"
        return f"<!-- table:{name} -->\n{body}\n<!-- /table:{name} -->"

    return re.sub(r"<!-- table:(\w+) -->.*?<!-- /table:\1 -->", replace, readme, flags=re.S)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that README.md is up to date")
    args = parser.parse_args()
    current = README.read_text()
    updated = render(current)
    if args.check:
        if updated != current:
            print("README.md tables are out of date: run python benchmarks/readme_tables.py")
            return 1
        return 0
    README.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
