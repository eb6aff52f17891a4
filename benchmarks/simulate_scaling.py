"""How the simulator scales: isolates/s and peak memory at 10k, 30k and 100k isolates.

Each size runs in its own process, so peak RSS is that size's alone. Baseline in the
same run: the first size; the last column is time per isolate relative to it
(1.0 = linear scaling).

    .venv/bin/python benchmarks/simulate_scaling.py [--sizes 10000 30000 100000] [--virus flu_a]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _one(n: int, virus_name: str) -> None:
    from segpair.registry import load_registry
    from segpair.simulator import SimulationConfig, simulate_population

    virus = load_registry().get(virus_name)
    t0 = time.perf_counter()
    pop = simulate_population(virus, SimulationConfig(n_isolates=n, seed=1))
    seconds = time.perf_counter() - t0
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"n": n, "proteins": len(pop.proteins), "s": seconds, "rss": rss_mib}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    parser.add_argument("--virus", default="flu_a")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        _one(args.one, args.virus)
        return
    print(f"virus={args.virus}")
    print(f"{'isolates':>9} {'proteins':>9} {'seconds':>8} {'isolates/s':>11} "
          f"{'peak RSS MiB':>13} {'s/isolate vs first':>19}")  # fmt: skip
    base = None
    for n in args.sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(n), "--virus", args.virus],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        r = json.loads(out.stdout.strip().splitlines()[-1])
        per = r["s"] / n
        base = base or per
        print(
            f"{n:>9} {r['proteins']:>9} {r['s']:>8.1f} {n / r['s']:>11.0f} {r['rss']:>13.0f} "
            f"{per / base:>19.2f}"
        )


if __name__ == "__main__":
    main()
