"""Parity with the reference implementations: the comparisons of ``tests/parity`` (one copy, in
``tests/parity/peers.py``), measured and written to ``benchmarks/results/parity.json``.

    python benchmarks/parity.py --publish   (without --publish: runs/benchmarks/parity.json)

Each row: siamkit tracker, reference project and its commit (from ``../shared/peers-src/README.md``),
the largest box-corner difference over the tracked frames (px), SiamMask's smallest mask IoU, and what
is compared. A peer whose sources are absent is listed under ``skipped`` with the reason.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from pathlib import Path

import harness

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path[:0] = [str(harness.REPO / "tests"), str(harness.REPO / "tests" / "parity")]

import conftest  # noqa: E402  (thread settings, PEERS_SRC)
import peer_setup  # noqa: E402
import peers  # noqa: E402


def peer_commits() -> dict[str, str]:
    """folder → ``owner/repo @ commit`` from the peers-src README's table."""
    readme = conftest.PEERS_SRC / "README.md"
    found = {}
    if readme.is_file():
        for m in re.finditer(r"^\| `([^`]+)/` \| (\S+) @ ([0-9a-f]{40})", readme.read_text(), re.M):
            found[m.group(1)] = f"{m.group(2)}@{m.group(3)}"
    return found


def comparisons():
    """(environment, [compare function]) per reference project, in the README's order."""
    return [
        (peers.pysot_env, [lambda env, d, n=n: peers.compare_pysot(n, env, d) for n in peers.PYSOT_CASES]),
        (peers.siamban_env, [peers.compare_siamban]),
        (peers.siamfc_env, [peers.compare_siamfc]),
        (peers.dasiamrpn_env, [lambda env, d, n=n: peers.compare_dasiamrpn(n, env, d) for n in peers.DASIAMRPN_CASES]),
    ]


def main() -> int:
    args = harness.command_line(__doc__, threads=1).parse_args()
    out = harness.output_path(args, "parity.json")
    harness.use_threads(args.threads)
    load_at_start = harness.load_average()
    commits = peer_commits()
    rows, skipped = [], []
    with tempfile.TemporaryDirectory() as workdir:
        for env_fn, cases in comparisons():
            try:
                with env_fn() as env:
                    for fn in cases:
                        t0 = time.perf_counter()
                        r = fn(env, Path(workdir))
                        rows.append(
                            {
                                "tracker": r.tracker,
                                "peer": r.peer,
                                "peer_commit": commits.get(r.peer),
                                "frames": len(r.ours),
                                "max_box_px": r.max_box_px,
                                "min_mask_iou": r.min_mask_iou,
                                "travel_px": r.travel_px,
                                "compared": r.compared,
                                "extra": {k: v for k, v in r.extra.items() if not isinstance(v, list)},
                                "seconds": time.perf_counter() - t0,
                            }
                        )
                        print(f"{r.tracker:20s} {r.peer:16s} max box {r.max_box_px:.2e} px", flush=True)
            except BaseException as err:  # pytest's Skipped (peer absent) is a BaseException
                if type(err).__name__ != "Skipped":
                    raise
                skipped.append({"peer": env_fn.__name__, "reason": str(err)})
    result = {
        "what": "siamkit vs the reference implementations on the same weights and frames (tests/parity)",
        "clip": f"{peer_setup.CLIP}, first frame initialises, {peer_setup.FRAMES - 1} tracked",
        "weights": "the peer's model with fixed random weights made peaked (tests/parity/peer_setup.py), imported",
        "tolerance": {"max_box_px": 0.5, "min_mask_iou": 0.99},
        "peer_commits": commits,
        "rows": rows,
        "skipped": skipped,
        "environment": harness.machine(args.threads, load_at_start),
    }
    harness.save(out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
