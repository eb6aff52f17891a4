"""polars against pandas on the data path, side by side (issue 17).

Stages, each run as the pandas code the port replaced (`benchmarks/pandas_baseline.py`)
and as segpair's code (polars inside, pandas at the boundaries):

- protein_final: cleaning the raw protein records (`build_protein_final`);
- cooccurrence_sets: `build_cooccurrence`;
- segment_pairs: the pair build, default config (`build_segment_pairs`);
- leakage_checks: segment_pairs' asset checks, every leakage check (`leakage_report` in
  sequence mode) and `proteins_without_embedding`;
- isolate_pairs: the scoring path's enumeration of every cross-segment pair in each
  isolate, all function pairs (`isolate_pairs`);
- mark_seen_pairs: the scoring asset's lookup of each scored pair in segment_pairs.

Input: SIMULATED flu_a, seed 1, `--isolates` isolates (8 segments). The simulator writes
the raw records in its own process; protein_final, cooccurrence_sets and segment_pairs
are then built once (the inputs of the later stages), as the assets hand them over:
whole tables, the sequences included. Each stage x variant runs in a fresh process:
input loaded (not timed), memory freed while reading it handed back to the OS ("input
MiB": the process's RSS then), the peak RSS reset, the stage timed, its peak RSS reported
(the input's resident memory counts, the transient cost of reading it does not), the
output pickled. The parent checks that both variants' outputs are identical: same
columns, dtypes, rows in the same order, same statistics.

    .venv/bin/python benchmarks/polars_vs_pandas.py [--isolates 100000] [--stages ...]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

STAGES = ("protein_final", "cooccurrence_sets", "segment_pairs", "leakage_checks",
          "isolate_pairs", "mark_seen_pairs")  # fmt: skip
VARIANTS = ("pandas", "polars")


def _status_mib(field: str) -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split(f"{field}:")[1].split()[0]) / 1024


def _peak_mib() -> float:
    """The process's peak RSS (VmHWM, what _reset_peak resets; ru_maxrss elsewhere)."""
    try:
        return _status_mib("VmHWM")
    except (OSError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _release_free_memory() -> None:
    """Hand memory freed while reading the input back to the OS (Arrow's pool, glibc):
    otherwise glibc would give pandas the read's freed pages at no cost in RSS, while
    polars, with its own allocator, shows each page it takes."""
    import ctypes

    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _reset_peak() -> bool:
    """Start the peak RSS afresh (Linux: clear_refs 5), so that reading the stage's input
    does not count; False where that is not possible (the peak then includes it)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _prepare(n: int, work: Path) -> None:
    """Raw records, protein_final and cooccurrence_sets of `n` simulated isolates."""
    from segpair.cleaning import build_protein_final
    from segpair.pairs.cooccurrence import build_cooccurrence
    from segpair.pairs.segment_pairs import build_segment_pairs
    from segpair.readers.common import records_frame
    from segpair.registry import load_registry
    from segpair.simulator import SimulationConfig, simulate_population

    virus = load_registry().get("flu_a")
    pop = simulate_population(virus, SimulationConfig(n_isolates=n, seed=1))
    rows = pop.proteins.merge(pop.isolates[["assembly_id", "subtype", "host", "year"]])
    del pop
    rows = rows.assign(source="sim", product=rows["function"])
    records = records_frame(rows.to_dict("records"))
    del rows
    records.to_parquet(work / "records.parquet")
    proteins, _ = build_protein_final(records, virus)
    proteins.to_parquet(work / "protein_final.parquet")
    cooccurrence = build_cooccurrence(proteins)[0]
    cooccurrence.to_parquet(work / "cooccurrence.parquet")
    build_segment_pairs(proteins, cooccurrence, virus)[0].to_parquet(work / "segment_pairs.parquet")


def _leakage_checks(leakage, pairs, cooccurrence, embedded_ids) -> dict:
    """Every leakage check of segment_pairs (the sequence-mode set) and the embedding check."""
    outcomes = leakage.leakage_report(pairs, cooccurrence, "sequence")
    outcomes["proteins_embedded"] = leakage.proteins_without_embedding(pairs, embedded_ids)
    return outcomes


def _stage(stage: str, variant: str, work: Path) -> tuple:
    """(function, arguments) of one stage, its input read."""
    import pandas as pd

    import segpair.cleaning
    import segpair.pairs.cooccurrence
    import segpair.pairs.leakage
    import segpair.pairs.segment_pairs
    import segpair.scoring
    from segpair.registry import load_registry

    sys.path.insert(0, str(Path(__file__).parent))
    import pandas_baseline

    virus = load_registry().get("flu_a")
    if variant == "pandas":
        cleaning = cooccurrence = segment_pairs = scoring = leakage = pandas_baseline
    else:
        cleaning, cooccurrence = segpair.cleaning, segpair.pairs.cooccurrence
        segment_pairs, scoring = segpair.pairs.segment_pairs, segpair.scoring
        leakage = segpair.pairs.leakage

    def read(name: str, **kwargs) -> pd.DataFrame:
        return pd.read_parquet(work / f"{name}.parquet", **kwargs)

    if stage == "protein_final":
        return cleaning.build_protein_final, (read("records"), virus)
    if stage == "cooccurrence_sets":
        return cooccurrence.build_cooccurrence, (read("protein_final"),)
    if stage == "segment_pairs":
        return segment_pairs.build_segment_pairs, (read("protein_final"), read("cooccurrence"),
                                                   virus)  # fmt: skip
    if stage == "isolate_pairs":
        return scoring.isolate_pairs, (read("protein_final"), virus, None, False)
    if stage == "mark_seen_pairs":  # the scores of every within-isolate pair
        scores = segpair.scoring.isolate_pairs(read("protein_final"), virus, None).assign(score=0.5)
        return scoring.mark_seen_pairs, (scores, read("segment_pairs"))
    ids = read("protein_final", columns=["brc_fea_id"])["brc_fea_id"]
    return partial(_leakage_checks, leakage), (read("segment_pairs"), read("cooccurrence"), ids)


def _run_stage(stage: str, variant: str, work: Path) -> None:
    """One stage in this process: load its input, time it, pickle (output, statistics)."""
    import pandas as pd

    function, args = _stage(stage, variant, work)
    _release_free_memory()
    input_mib, reset = _status_mib("VmRSS"), _reset_peak()
    start = time.perf_counter()
    result = function(*args)
    seconds = time.perf_counter() - start
    peak = _peak_mib()
    if isinstance(result, pd.DataFrame | dict):
        table, stats = (result, None) if isinstance(result, pd.DataFrame) else (None, [result])
    else:
        table, stats = result[0], result[1:]
    with open(work / f"{stage}.{variant}.pkl", "wb") as out:
        pickle.dump((table, _comparable(stats)), out, protocol=pickle.HIGHEST_PROTOCOL)
    rows = len(table) if table is not None else len(args[0])
    print(json.dumps({"seconds": seconds, "peak_mib": peak, "input_mib": input_mib,
                      "rows": rows, "input_in_peak": not reset}))  # fmt: skip


def _comparable(stats):
    """Statistics as plain values (dict key order kept, so issue order counts too)."""
    if stats is None:
        return None
    out = []
    for item in stats:
        if dataclasses.is_dataclass(item):
            item = {k: getattr(item, k) for k in item.__dataclass_fields__}
        if isinstance(item, dict) and "issues" in item:  # a CleaningReport
            issues = item.pop("issues")
            item["issue_counts"] = list(issues.counts.items())
            item["issue_examples"] = list(issues.examples.items())
        out.append(json.dumps(item, sort_keys=False, default=str))
    return out


def _difference(stage: str, work: Path) -> str:
    """'' when both variants' outputs are identical, else what differs."""
    import pandas as pd

    (a, stats_a), (b, stats_b) = (
        pickle.loads((work / f"{stage}.{v}.pkl").read_bytes()) for v in VARIANTS
    )
    if a is None or b is None:
        return "" if a is b and stats_a == stats_b else f"results differ: {stats_a} vs {stats_b}"
    try:
        pd.testing.assert_frame_equal(a, b, check_exact=True, check_categorical=True)
    except AssertionError as err:
        return str(err).splitlines()[0] + " " + " ".join(str(err).splitlines()[1:4])
    for column in a.columns:
        if isinstance(a[column].dtype, pd.CategoricalDtype):
            ca, cb = a[column].cat.categories, b[column].cat.categories
            if ca.dtype != cb.dtype:
                return f"{column}: categories of dtype {ca.dtype} vs {cb.dtype}"
    if stats_a != stats_b:
        return f"statistics differ: {stats_a} vs {stats_b}"
    return ""


HEADER = (
    f"{'stage':<18} {'rows out':>10} {'pandas s':>9} {'polars s':>9} {'ratio':>6} "
    f"{'pandas MiB':>11} {'polars MiB':>11} {'ratio':>6} {'input MiB':>10}  identical"
)


def _row(stage: str, pd_: dict, pl_: dict, diff: str) -> str:
    """Ratios are pandas / polars: above 1, polars is faster or leaner."""
    return (
        f"{stage:<18} {pl_['rows']:>10,} {pd_['seconds']:>9.1f} {pl_['seconds']:>9.1f} "
        f"{pd_['seconds'] / pl_['seconds']:>5.1f}x {pd_['peak_mib']:>11,.0f} "
        f"{pl_['peak_mib']:>11,.0f} {pd_['peak_mib'] / pl_['peak_mib']:>5.2f}x "
        f"{pd_['input_mib']:>10,.0f}  {'yes' if not diff else 'NO: ' + diff}"
    )


def _child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True,
                         text=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--isolates", type=int, default=100_000)
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument(
        "--workdir", type=Path, help="keep the simulated inputs here, reuse them next time"
    )
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        _prepare(args.isolates, args.workdir)
        return
    if args.stage:
        _run_stage(args.stage, args.variant, args.workdir)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        stamp = work / f"inputs_{args.isolates}.done"
        if not stamp.exists():
            t0 = time.perf_counter()
            subprocess.run([sys.executable, __file__, "--prepare", "--isolates",
                            str(args.isolates), "--workdir", str(work)], check=True)  # fmt: skip
            stamp.write_text("")
            print(f"inputs: {args.isolates} isolates simulated in {time.perf_counter() - t0:.0f} s")
        print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        print(HEADER)
        for stage in args.stages:
            runs = {v: _child("--stage", stage, "--variant", v, "--workdir", str(work))
                    for v in VARIANTS}  # fmt: skip
            print(_row(stage, runs["pandas"], runs["polars"], _difference(stage, work)), flush=True)
            if any(r["input_in_peak"] for r in runs.values()):
                print("  (peak RSS could not be reset: it includes reading the input)")
        print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
