"""Gallery search benchmark: build time, QPS and recall@10 of exact (flat), IVF and HNSW indexes.

Data are synthetic but clustered, like real embeddings: ``clusters`` random centres in D dims,
each point = centre + a ``latent``-dimensional Gaussian offset through a fixed random projection
+ small isotropic noise, then L2-normalised (cosine = inner product). I.i.d. Gaussian vectors have
no neighbourhood structure and make IVF recall meaningless; a small i.i.d. control shows that.

Recall@10 = |approximate top-10 ∩ exact top-10| / 10, averaged over the queries (queries are
fresh points from the same distribution, not gallery members).

    python benchmarks/gallery_search.py                       # 1M × 512 (≈ 2 GB per copy)
    python benchmarks/gallery_search.py --n 50000 --queries 200 --out /tmp/small.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import harness
import numpy as np

from siamkit.index import Gallery


def clustered(
    n: int, dim: int, clusters: int, latent: int, seed: int, spread: float = 0.5, chunk: int = 100_000
) -> np.ndarray:
    """``n`` unit vectors around ``clusters`` centres with ``latent``-dimensional spread (float32).

    Centres ~ N(0, I_D) (norm ≈ √D); offsets ~ N(0, spread²·I) along a shared random
    ``latent``-dimensional subspace (norm ≈ spread·√D), plus isotropic noise of std 0.1.
    """
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    proj = rng.standard_normal((latent, dim), dtype=np.float32) * np.float32(spread / np.sqrt(latent))
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        part = centres[rng.integers(0, clusters, m)]
        part += rng.standard_normal((m, latent), dtype=np.float32) @ proj
        part += np.float32(0.1) * rng.standard_normal((m, dim), dtype=np.float32)
        part /= np.linalg.norm(part, axis=1, keepdims=True)
        out[start : start + m] = part
    return out


def recall_at(truth: np.ndarray, got: np.ndarray, k: int) -> float:
    return float(np.mean([len(set(t[:k].tolist()) & set(g[:k].tolist())) / k for t, g in zip(truth, got, strict=True)]))


def timed_search(gallery: Gallery, queries: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """Row indices of the top-k and queries per second (one batched call, as a server would batch)."""
    t = time.perf_counter()
    _, idx = gallery.index.search(queries, k)  # raw FAISS call: ids → strings is not what we time
    dt = time.perf_counter() - t
    return idx, queries.shape[0] / dt


def run(args: argparse.Namespace, out: Path) -> dict:
    import faiss

    faiss.omp_set_num_threads(args.threads)
    t = time.perf_counter()
    both = clustered(args.n + args.queries, args.dim, args.clusters, args.latent, args.seed, args.spread)
    data, queries = both[: args.n], both[args.n :].copy()  # queries: same distribution, not in the gallery
    gen_s = time.perf_counter() - t
    print(f"data {data.shape} generated in {gen_s:.1f}s", flush=True)
    results: dict = {
        "n": args.n,
        "dim": args.dim,
        "queries": args.queries,
        "k": args.k,
        "data": f"clustered: {args.clusters} centres, {args.latent}-d spread {args.spread}, noise 0.1, unit norm",
        "metric": "inner product on unit vectors (cosine)",
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "faiss": faiss.__version__,
        "load_average_at_start": harness.load_average(),
        "runs": [],
    }

    def build(kind: str, **params) -> tuple[Gallery, float]:
        t0 = time.perf_counter()
        g = Gallery.from_arrays(data, ids=range(args.n), kind=kind, metric="ip", **params)
        return g, time.perf_counter() - t0

    kinds = set(args.kinds.split(","))
    flat, build_s = build("flat")  # always: it gives the exact top-k every recall is measured against
    truth, qps = timed_search(flat, queries, args.k)
    if "flat" in kinds:
        results["runs"].append({"kind": "flat", "n": args.n, "build_s": build_s, "qps": qps, "recall_at_10": 1.0})
    print(f"flat: build {build_s:.1f}s, {qps:.1f} QPS", flush=True)
    del flat

    ivf, build_s = build("ivf", nlist=args.nlist) if "ivf" in kinds else (None, 0.0)
    for nprobe in (1, 4, 16, 64) if ivf is not None else ():
        ivf.set_params(nprobe=nprobe)
        ivf._apply_search_params()
        idx, qps = timed_search(ivf, queries, args.k)
        run_ = {"kind": "ivf", "n": args.n, "nlist": args.nlist, "nprobe": nprobe, "build_s": build_s, "qps": qps}
        run_["recall_at_10"] = recall_at(truth, idx, args.k)
        results["runs"].append(run_)
        print(run_, flush=True)
    del ivf
    harness.save_partial(out, results, "hnsw and control still running")

    hnsw, build_s = (
        build("hnsw", hnsw_m=args.hnsw_m, ef_construction=args.ef_construction) if "hnsw" in kinds else (None, 0.0)
    )
    for ef in (16, 32, 64, 128, 256) if hnsw is not None else ():
        hnsw.set_params(ef_search=ef)
        hnsw._apply_search_params()
        idx, qps = timed_search(hnsw, queries, args.k)
        run_ = {"kind": "hnsw", "n": args.n, "M": args.hnsw_m, "ef_construction": args.ef_construction, "ef_search": ef}
        run_.update({"build_s": build_s, "qps": qps, "recall_at_10": recall_at(truth, idx, args.k)})
        results["runs"].append(run_)
        print(run_, flush=True)
    del hnsw
    harness.save_partial(out, results, "control still running")

    if "control" not in kinds:
        results["total_s"] = time.perf_counter() - t
        results["load_average_at_end"] = harness.load_average()
        return results
    # control at 100k: IVF (nlist = √n, nprobe 16) on clustered data vs on i.i.d. Gaussian data
    n_c = min(args.n, 100_000)
    nlist = int(round(np.sqrt(n_c)))
    control = {"n": n_c, "nlist": nlist, "nprobe": 16}
    rng = np.random.default_rng(args.seed + 1)
    iid = rng.standard_normal((n_c + args.queries, args.dim), dtype=np.float32)
    iid /= np.linalg.norm(iid, axis=1, keepdims=True)
    clus = clustered(n_c + args.queries, args.dim, args.clusters, args.latent, args.seed + 2, args.spread)
    for name, x in (("clustered", clus), ("iid_gaussian", iid)):
        exact = Gallery.from_arrays(x[:n_c], kind="flat", metric="ip")
        truth_c, _ = timed_search(exact, x[n_c:], args.k)
        approx = Gallery.from_arrays(x[:n_c], kind="ivf", metric="ip", nlist=nlist, nprobe=16)
        approx._apply_search_params()
        idx, _ = timed_search(approx, x[n_c:], args.k)
        control[f"recall_at_10_{name}"] = recall_at(truth_c, idx, args.k)
    control["note"] = "same IVF settings; i.i.d. Gaussian vectors have no cluster structure, so IVF recall collapses"
    results["iid_control"] = control
    print(control, flush=True)
    results["total_s"] = time.perf_counter() - t
    results["load_average_at_end"] = harness.load_average()
    return results


def main() -> None:
    p = harness.command_line(__doc__, threads=2)
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--queries", type=int, default=500)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--clusters", type=int, default=1000)
    p.add_argument("--latent", type=int, default=32)
    p.add_argument("--spread", type=float, default=0.5, help="within-cluster spread relative to the centres")
    p.add_argument("--nlist", type=int, default=1024, help="IVF cells (≈ √N keeps k-means training short)")
    p.add_argument("--hnsw-m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kinds", default="flat,ivf,hnsw,control", help="comma list of flat, ivf, hnsw, control")
    p.add_argument("--append", action="store_true", help="add these runs to the existing JSON at --out")
    args = p.parse_args()
    out = harness.output_path(args, "gallery_search.json")
    results = run(args, out)
    if args.append and out.is_file():
        old = json.loads(out.read_text())
        old["runs"] += results["runs"]
        old.setdefault("appended", []).append({k: v for k, v in results.items() if k != "runs"})
        results = old
    harness.save(out, results)


if __name__ == "__main__":
    main()
