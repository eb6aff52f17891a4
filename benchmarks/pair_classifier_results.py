"""Test AUC/F1 of the MLP, logistic regression and 1-NN per schema pair and embedder,
on a data version the pipeline has materialized (segment_pairs + master caches).

Each (schema pair, embedder) gets its own model, trained with the asset's defaults.
The baselines are measured in the same run on the same pairs.

    .venv/bin/python benchmarks/pair_classifier_results.py --data-root data \
        --virus flu_a --data-version simulated_v1 --schema HA-NA PB2-PB1
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from segpair.embeddings.pipeline import open_store
from segpair.report import markdown_table
from segpair.training.pipeline import run_training
from segpair.training.train import TrainConfig


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data-root", default="data")
    p.add_argument("--virus", default="flu_a")
    p.add_argument("--data-version", default="simulated_v1")
    p.add_argument("--schema", nargs="+", default=["HA-NA", "PB2-PB1"])
    p.add_argument("--embedders", nargs="+", default=["kmer_aa3", "kmer_nt6"])
    args = p.parse_args()
    pairs = pd.read_parquet(
        f"{args.data_root}/processed/{args.virus}/{args.data_version}/segment_pairs.parquet"
    )
    rows = []
    for schema in args.schema:
        a, b = schema.split("-", 1)
        for emb in args.embedders:
            t0 = time.perf_counter()
            with open_store(args.data_root, args.virus, args.data_version, emb) as store:
                out = run_training(pairs, store, [[a, b]], TrainConfig())
            row = {"schema": schema, "embedder": emb, **out.sizes,
                   "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
            for scorer, m in out.metrics.items():
                row[f"{scorer}_auc"] = round(m["auc_roc"], 3)
                row[f"{scorer}_f1"] = round(m["f1"], 3)
            rows.append(row)
            print(row, flush=True)
    print(markdown_table(pd.DataFrame(rows), max_rows=100))


if __name__ == "__main__":
    main()
