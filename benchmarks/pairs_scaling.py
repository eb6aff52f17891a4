"""Pair-dataset build at scale: co-occurrence sets + segment pairs for 10k, 30k, 100k
isolates x 8 influenza segments (SIMULATED), time and peak memory.

The simulator runs in its own process and writes the protein table; the build runs in
a fresh process so its peak RSS is its own (loading the table included). Baseline in
the same run: the first size; the last column is time per isolate relative to it.
Goal (issue 4): < 60 s and < 4 GiB at 100k isolates on 2 cores.

    .venv/bin/python benchmarks/pairs_scaling.py [--sizes 10000 30000 100000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _simulate(n: int, out: Path) -> None:
    from segpair.registry import load_registry
    from segpair.simulator import SimulationConfig, simulate_population

    virus = load_registry().get("flu_a")
    pop = simulate_population(virus, SimulationConfig(n_isolates=n, seed=1))
    p = pop.proteins.merge(pop.isolates[["assembly_id", "subtype", "host", "year"]])
    p["seq_hash"] = [hashlib.md5(s.encode()).hexdigest() for s in p["prot_seq"]]
    p.drop(columns=["prot_seq", "nt_seq"]).to_parquet(out)


def _build(table: Path) -> None:
    import pandas as pd

    from segpair.pairs.cooccurrence import build_cooccurrence
    from segpair.pairs.segment_pairs import build_segment_pairs
    from segpair.registry import load_registry

    proteins = pd.read_parquet(table)
    t0 = time.perf_counter()
    cooc, _ = build_cooccurrence(proteins)
    t1 = time.perf_counter()
    pairs, stats, _ = build_segment_pairs(proteins, cooc, load_registry().get("flu_a"))
    t2 = time.perf_counter()
    print(json.dumps({
        "proteins": len(proteins), "cooc_pairs": len(cooc), "pairs": len(pairs),
        "t_cooc": t1 - t0, "t_pairs": t2 - t1,
        "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    parser.add_argument("--simulate", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.simulate:
        _simulate(args.simulate, args.out)
        return
    if args.build:
        _build(args.build)
        return
    header = ["isolates", "proteins", "co-occur", "pairs", "cooc s", "pairs s", "total s"]
    print(" ".join(f"{h:>9}" for h in header), f"{'peak RSS MiB':>13} {'s/isolate vs 1st':>17}")
    base = None
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            table = Path(tmp) / f"proteins_{n}.parquet"
            subprocess.run([sys.executable, __file__, "--simulate", str(n), "--out", str(table)],
                           check=True)  # fmt: skip
            out = subprocess.run([sys.executable, __file__, "--build", str(table)],
                                 check=True, capture_output=True, text=True)  # fmt: skip
            r = json.loads(out.stdout.strip().splitlines()[-1])
            total = r["t_cooc"] + r["t_pairs"]
            base = base or total / n
            print(f"{n:>9} {r['proteins']:>9} {r['cooc_pairs']:>9} {r['pairs']:>9} "
                  f"{r['t_cooc']:>9.1f} {r['t_pairs']:>9.1f} {total:>9.1f} {r['rss']:>13.0f} "
                  f"{total / n / base:>17.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
