"""Vector tables at scale: build time, index time, query latency (exact vs ANN) and recall@10
of the ANN index against exact search, on SIMULATED vectors.

Vectors: `--dim` (default 1280, ESM-2 650M's width) float32 rows drawn around a
hierarchy of centres (64 "families", e.g. function x subtype, each with 32 "lineages"),
L2-normalised, so each query has a dense neighbourhood as protein embeddings do; queries
are new draws from the same process (a new sequence, not a row of the table). Rows carry
the metadata columns of a real table. Everything goes through segpair.vectors: the table
is written by `write_vector_table` (the asset's path, minus the HDF5 read), searched by
`VectorTable.nearest` (exact: every row scanned; ANN: the index, ANN_NPROBES partitions,
ANN_REFINE_FACTOR x k candidates re-ranked exactly).

Per size: build (rows written, no index), exact latency (single queries, p50/p95), the
exact top-10 of every query (the ground truth), then per index type: index build time,
ANN latency (p50/p95), recall@10 (also without the exact re-ranking: the index alone),
and the speed-up over exact search in the same run. At `--compare-at` rows (100k) IVF_SQ,
IVF_PQ and IVF_HNSW_SQ are compared; other sizes get the default index only.

    .venv/bin/python benchmarks/vector_search.py              # 50k, 100k and 1M rows, ~25 min
    .venv/bin/python benchmarks/vector_search.py --quick      # 20k rows x 256 dims, ~1 min
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from segpair.vectors.search import VectorTable
from segpair.vectors.table import (
    METADATA_COLUMNS,
    VectorTablePaths,
    VectorTableSettings,
    create_ann_index,
    row_digests,
    rows_digest,
    write_vector_table,
)

FAMILIES, LINEAGES = 64, 32
FUNCTIONS = ["PB2", "PB1", "PA", "HA", "NP", "NA", "M1", "NS1"]


class SimulatedVectors:
    """Deterministic vectors by row number: any block can be drawn again alone."""

    def __init__(self, dim: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.dim = dim
        self.families = rng.normal(size=(FAMILIES, dim)).astype(np.float32)
        self.lineages = rng.normal(size=(FAMILIES, LINEAGES, dim)).astype(np.float32)
        self.seed = seed

    def draw(self, rows: np.ndarray, salt: int = 0) -> np.ndarray:
        rng = np.random.default_rng([self.seed, salt, int(rows[0]) if len(rows) else 0])
        family = rows % FAMILIES
        lineage = rng.integers(0, LINEAGES, len(rows))
        x = (
            self.families[family]
            + 0.7 * self.lineages[family, lineage]
            + 0.5 * rng.normal(size=(len(rows), self.dim)).astype(np.float32)
        )
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def simulated_rows(n: int) -> pd.DataFrame:
    i = np.arange(n)
    rows = pd.DataFrame(
        {
            "brc_fea_id": pd.array([f"P{j:08d}" for j in i], dtype="string"),
            "assembly_id": pd.array([f"I{j // 8:07d}" for j in i], dtype="string"),
            "isolate_name": pd.array([None] * n, dtype="string"),
            "segment": pd.array(np.array(FUNCTIONS)[i % 8], dtype="string"),
            "function": pd.array(np.array(FUNCTIONS)[i % 8], dtype="string"),
            "subtype": pd.array([f"H{j % 16 + 1}N{j % 9 + 1}" for j in i % 144], dtype="string"),
            "host": pd.array(np.array(["Human", "Duck", "Swine"])[i % 3], dtype="string"),
            "year": pd.array(2000 + i % 25, dtype="Int32"),
            "seq_hash": pd.array([f"{j:032x}" for j in i], dtype="string"),
            "row_number": i,
        }
    )
    rows["row_digest"] = row_digests(rows[METADATA_COLUMNS])
    return rows


def latencies(vectors: VectorTable, queries: np.ndarray, exact: bool, **search):
    """Seconds per single query, and each query's top-10 ids."""
    seconds, found = [], []
    for q in queries:
        t0 = time.perf_counter()
        hits = vectors.nearest(q[None, :], k=10, exact=exact, **search)
        seconds.append(time.perf_counter() - t0)
        found.append(hits["brc_fea_id"].tolist())
    return np.array(seconds), found


def recall_at_10(found: list[list[str]], truth: list[list[str]]) -> float:
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)]))


def run_size(n: int, dim: int, n_queries: int, n_exact: int, index_types, root: Path) -> list:
    sim = SimulatedVectors(dim)
    rows = simulated_rows(n)
    paths = VectorTablePaths(root / f"n{n}", "simulated")
    fields = {
        "embedder": "simulated",
        "signature": f"sim{dim}",
        "dim": dim,
        "cache_content_id": "simulated",
        "rows_digest": rows_digest(rows),
        "description": {"family": "simulated"},
    }
    t0 = time.perf_counter()
    no_index = VectorTableSettings(ann_min_rows=n + 1, reuse_earlier_tables=False)
    report = write_vector_table(
        paths, rows, lambda b: sim.draw(b["row_number"].to_numpy()), fields, [], no_index
    )
    build_s = time.perf_counter() - t0
    size_gb = sum(f.stat().st_size for f in report.path.rglob("*") if f.is_file()) / 1e9
    print(f"{n} x {dim}: built in {build_s:.1f} s ({size_gb:.2f} GB)", flush=True)
    queries = sim.draw(np.arange(n_queries), salt=1)
    vectors = VectorTable(paths)
    t0 = time.perf_counter()
    truth = vectors.nearest(queries, k=10, exact=True)  # one scan for all queries
    truth_s = time.perf_counter() - t0
    truth = [truth.loc[truth["query"] == q, "brc_fea_id"].tolist() for q in range(n_queries)]
    exact_s, _ = latencies(vectors, queries[:n_exact], exact=True)
    exact = {"p50": float(np.median(exact_s)), "p95": float(np.percentile(exact_s, 95))}
    print(
        f"  exact: p50 {exact['p50'] * 1e3:.0f} ms, p95 {exact['p95'] * 1e3:.0f} ms "
        f"({n_exact} queries); all {n_queries} in one scan {truth_s:.1f} s",
        flush=True,
    )
    results = []
    for index_type in index_types:
        t0 = time.perf_counter()
        create_ann_index(vectors.table, index_type)
        index_s = time.perf_counter() - t0
        vectors.current = dataclasses.replace(vectors.current, index_type=index_type)
        ann_s, found = latencies(vectors, queries, exact=False)
        recall = recall_at_10(found, truth)
        _s, unrefined = latencies(vectors, queries, exact=False, refine_factor=0)
        ann = {"p50": float(np.median(ann_s)), "p95": float(np.percentile(ann_s, 95))}
        results.append(
            {
                "rows": n,
                "dim": dim,
                "index": index_type,
                "table_gb": round(size_gb, 2),
                "build_s": round(build_s, 1),
                "index_s": round(index_s, 1),
                "exact_p50_ms": round(exact["p50"] * 1e3, 1),
                "exact_p95_ms": round(exact["p95"] * 1e3, 1),
                "ann_p50_ms": round(ann["p50"] * 1e3, 1),
                "ann_p95_ms": round(ann["p95"] * 1e3, 1),
                "speedup_p50": round(exact["p50"] / ann["p50"], 1),
                "recall_at_10": round(recall, 3),
                "recall_at_10_unrefined": round(recall_at_10(unrefined, truth), 3),
            }
        )
        print(
            f"  {index_type}: index {index_s:.1f} s, p50 {ann['p50'] * 1e3:.1f} ms, "
            f"p95 {ann['p95'] * 1e3:.1f} ms, recall@10 {recall:.3f}, "
            f"{exact['p50'] / ann['p50']:.0f}x faster than exact",
            flush=True,
        )
    shutil.rmtree(paths.folder, ignore_errors=True)
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[50_000, 100_000, 1_000_000])
    p.add_argument(
        "--compare-at",
        type=int,
        default=100_000,
        help="the size at which IVF_SQ, IVF_PQ and IVF_HNSW_SQ are compared",
    )
    p.add_argument("--dim", type=int, default=1280)
    p.add_argument("--queries", type=int, default=100, help="ANN queries (recall, latency)")
    p.add_argument("--exact-queries", type=int, default=10, help="single exact queries timed")
    p.add_argument("--quick", action="store_true", help="20k rows x 256 dims, default index")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args()
    if args.quick:
        args.sizes, args.dim, args.queries, args.exact_queries = [20_000], 256, 50, 10
    default = VectorTableSettings().index_type
    everything = [default, *[t for t in ("IVF_PQ", "IVF_HNSW_SQ") if t != default]]
    results = []
    with tempfile.TemporaryDirectory(prefix="segpair_vectors_") as tmp:
        for n in args.sizes:
            types = everything if n == args.compare_at else [default]
            results += run_size(n, args.dim, args.queries, args.exact_queries, types, Path(tmp))
    print()
    print(pd.DataFrame(results).to_markdown(index=False))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
