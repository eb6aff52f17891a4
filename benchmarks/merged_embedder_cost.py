"""What the merged kmer_nt6_aa3 entry would add to the main job: the main job on one demo
partition as shipped (kmer_nt6_aa3 opt-in), then with kmer_nt6_aa3 put in the main job;
each in a fresh process, data root and instance; CPU time (user + system, this process:
the in-process executor runs every step here) and wall time.

    .venv/bin/python benchmarks/merged_embedder_cost.py --virus flu_a
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import subprocess
import sys
import tempfile
import time


def run_once(virus: str, merged_in_main_job: bool) -> None:
    import dagster as dg

    from segpair.embeddings.catalog import CATALOG
    from segpair_assets.definitions import build_definitions
    from segpair_assets.partitions import DATA_VERSION_PARTITIONS_NAME, partition_key

    catalog = CATALOG
    if merged_in_main_job:
        spec = dataclasses.replace(CATALOG.get("kmer_nt6_aa3"), in_main_job=True)
        catalog = CATALOG.with_spec(spec)
    with tempfile.TemporaryDirectory() as tmp, dg.instance_for_test(temp_dir=tmp) as instance:
        instance.add_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME, ["simulated_v1"])
        job = build_definitions(f"{tmp}/data", catalog=catalog).resolve_job_def("segpair_main_job")
        start = time.perf_counter()
        result = job.execute_in_process(
            instance=instance, partition_key=partition_key(virus, "simulated_v1")
        )
        wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    steps = {
        e.step_key: e.event_specific_data.duration_ms / 1000
        for e in result.all_events
        if e.event_type_value == "STEP_SUCCESS"
    }
    merged = sum(s for k, s in steps.items() if "kmer_nt6_aa3" in k)
    print(
        f"| {'in' if merged_in_main_job else 'out (as shipped)'} | {result.success} | "
        f"{usage.ru_utime + usage.ru_stime:.0f} s | {wall:.0f} s | {merged:.0f} s |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--virus", default="flu_a")
    parser.add_argument("--once", choices=["in", "out"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.once:
        run_once(args.virus, args.once == "in")
        return
    print(f"main job on {args.virus} x simulated_v1")
    print("| kmer_nt6_aa3 | success | CPU | wall | its steps |\n|---|---|---:|---:|---:|")
    for mode in ("out", "in"):
        subprocess.run(
            [sys.executable, __file__, "--virus", args.virus, "--once", mode],
            check=True, stderr=subprocess.DEVNULL,
        )  # fmt: skip


if __name__ == "__main__":
    main()
