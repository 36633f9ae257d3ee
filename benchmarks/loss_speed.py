"""Forward+backward speed of siamkit's metric losses next to pytorch-metric-learning (PML).

Pairs compared (same definitions, so the loss values must agree):

* batch-hard triplet: ``BatchHardTripletLoss.preset("pml")`` vs PML ``TripletMarginLoss(margin=0.05)``
  fed by ``BatchHardMiner()`` (L2 on normalised embeddings, average over non-zero triplets);
* contrastive: ``ContrastiveLoss.preset("pml")`` vs PML ``ContrastiveLoss()`` on all pairs (pos margin 0,
  neg margin 1, each term averaged over non-zero pairs, then summed);
* all-triplet margin loss ``TripletLoss.preset("pml")`` (B ≤ 1024): siamkit's closed form (sorted
  negatives + prefix sums, never enumerates triplets) vs PML's ``TripletMarginLoss(margin=0.05)``,
  which enumerates every (a, p, n) through a B³ mask.

P×K batches (K = 4), D = 512, float32, random Gaussian embeddings. Medians over repeats after one
warm-up, the contenders alternating run by run; ``ratio`` = PML time / siamkit time.
PML is installed only for this benchmark:

    pip install --no-deps --target benchmarks/.peers/pml pytorch-metric-learning
    OMP_NUM_THREADS=1 python benchmarks/loss_speed.py --threads 1
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time

import harness
import torch

from siamkit.losses.metric import BatchHardTripletLoss, ContrastiveLoss, TripletLoss

PEERS = harness.REPO / "benchmarks" / ".peers" / "pml"


def load_pml():
    """Import pytorch-metric-learning from benchmarks/.peers/pml (None when not installed there)."""
    if PEERS.is_dir() and str(PEERS) not in sys.path:
        sys.path.insert(0, str(PEERS))
    try:
        import pytorch_metric_learning as pml
        from pytorch_metric_learning import losses, miners
    except ImportError:
        return None
    return pml, losses, miners


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def run_once(fn, emb: torch.Tensor, labels: torch.Tensor, device: str) -> tuple[float, float, torch.Tensor]:
    """Milliseconds of one forward+backward, the loss value and the gradient."""
    x = emb.detach().clone().requires_grad_(True)
    sync(device)
    t = time.perf_counter()
    loss = fn(x, labels)
    loss.backward()
    sync(device)
    return (time.perf_counter() - t) * 1000, float(loss.detach()), x.grad


def time_interleaved(fns: list, emb: torch.Tensor, labels: torch.Tensor, repeats: int, device: str) -> list[tuple]:
    """Median ms, value and gradient of each function; runs alternate so that load changes on a
    shared machine hit every contender alike. The first round is a warm-up."""
    times: list[list[float]] = [[] for _ in fns]
    last: list[tuple] = [()] * len(fns)
    for r in range(repeats + 1):
        for i, fn in enumerate(fns):
            ms, value, grad = run_once(fn, emb, labels, device)
            if r:
                times[i].append(ms)
            last[i] = (value, grad)
    return [(statistics.median(t), v, g) for t, (v, g) in zip(times, last, strict=True)]


def make_batch(b: int, dim: int, k: int, device: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(b, dim, generator=g)
    labels = torch.arange(b // k).repeat_interleave(k)
    return emb.to(device), labels.to(device)


def main() -> None:
    ap = harness.command_line(__doc__, threads=1)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096])
    ap.add_argument("--repeats", type=int, nargs="+", default=[15, 5, 3], help="repeats per size")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--all-triplets-max", type=int, default=1024, help="largest B for the all-triplet comparison")
    ap.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda if available")
    args = ap.parse_args()
    out = harness.output_path(args, "loss_speed.json")
    load_at_start = harness.load_average()
    torch.set_num_threads(args.threads)
    devices = args.devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    repeats = dict(zip(args.sizes, args.repeats + [args.repeats[-1]] * len(args.sizes), strict=False))
    peer = load_pml()

    ours = {
        "batch_hard_triplet": BatchHardTripletLoss.preset("pml"),
        "contrastive": ContrastiveLoss.preset("pml"),
        "all_triplets": TripletLoss.preset("pml"),
    }
    theirs = {}
    if peer is not None:
        _, losses, miners = peer
        tml, miner = losses.TripletMarginLoss(margin=0.05), miners.BatchHardMiner()
        contrastive = losses.ContrastiveLoss()
        theirs = {
            "batch_hard_triplet": lambda x, y: tml(x, y, miner(x, y)),
            "contrastive": contrastive,
            "all_triplets": losses.TripletMarginLoss(margin=0.05),
        }

    rows = []
    for device in devices:
        for b in args.sizes:
            emb, labels = make_batch(b, args.dim, args.k, device, seed=b)
            for name, loss in ours.items():
                if name == "all_triplets" and b > args.all_triplets_max:
                    continue  # PML enumerates all B³ (a, p, n) combinations: minutes per call beyond this
                n = repeats[b]
                fns = [loss.to(device)] + ([theirs[name]] if name in theirs else [])
                timed = time_interleaved(fns, emb, labels, n, device)
                ms, value, grad = timed[0]
                row = {"loss": name, "device": device, "batch": b, "dim": args.dim, "k": args.k, "repeats": n,
                       "siamkit_ms": round(ms, 3), "siamkit_value": value,
                       "load_avg_1min": harness.load_average()}
                if name in theirs:
                    pms, pvalue, pgrad = timed[1]
                    row.update({
                        "pml_ms": round(pms, 3), "pml_value": pvalue, "ratio_pml_over_siamkit": round(pms / ms, 3),
                        "value_abs_diff": abs(value - pvalue),
                        "values_agree": abs(value - pvalue) <= 1e-4 * max(1.0, abs(pvalue)),
                        "grad_max_abs_diff": float((grad - pgrad).abs().max()),
                    })
                rows.append(row)
                print({k: v for k, v in row.items() if k not in ("dim", "k")}, flush=True)

    meta = {
        **harness.machine(args.threads, load_at_start), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "machine": platform.machine(), "cpu_count": os.cpu_count(),
        "pml_version": peer[0].__version__ if peer else None,
        "cuda_device": torch.cuda.get_device_name(0) if "cuda" in devices else None,
        "note": "shared machine: load_avg_1min per row is the 1-minute load average when the row finished; "
                "absolute times inflate with load, the interleaved ratio much less",
        "timing": "median ms of forward+backward after one warm-up, contenders interleaved; float32; P×K labels",
    }
    harness.save(out, {"meta": meta, "results": rows})


if __name__ == "__main__":
    main()
