"""Pair-classifier training throughput: embeddings gathered in memory vs streamed from HDF5.

Writes a master cache of random unit vectors (N proteins x D, fp16 like the real caches)
and a pair table over them, then trains the asset's default MLP for a few epochs twice
through `segpair.training.pipeline.run_training`: once gathered into memory (each protein
once), once streamed from the HDF5 file batch by batch (memory budget ~0). Prints
training pairs/s per epoch for both and the ratio, measured in the same run.

    .venv/bin/python benchmarks/training_throughput.py --proteins 50000 --pairs 200000 --dim 1280
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from segpair.embeddings.cache import CachePaths, EmbeddingStore, commit_cache
from segpair.training.pipeline import run_training
from segpair.training.train import TrainConfig


def write_cache(folder: Path, n: int, dim: int, rng) -> CachePaths:
    paths = CachePaths(folder, "bench")
    keys = [f"k{i}" for i in range(n)]
    index = pd.DataFrame({"brc_fea_id": [f"p{i}" for i in range(n)], "row": np.arange(n),
                          "cache_key": keys, "seq_hash": keys})  # fmt: skip

    def blocks(size=8192):
        for s in range(0, n, size):
            x = rng.standard_normal((min(size, n - s), dim)).astype(np.float32)
            yield x / np.linalg.norm(x, axis=1, keepdims=True)

    commit_cache(paths, keys, blocks(), index, {"signature": "bench"}, "float16", dim)
    return paths


def pair_table(n_proteins: int, n_pairs: int, rng) -> pd.DataFrame:
    a = rng.integers(0, n_proteins, n_pairs)
    b = rng.integers(0, n_proteins, n_pairs)
    split = rng.choice(["train", "val", "test"], n_pairs, p=[0.8, 0.1, 0.1])
    return pd.DataFrame({
        "brc_a": [f"p{i}" for i in a], "brc_b": [f"p{i}" for i in b],
        "label": rng.integers(0, 2, n_pairs), "split": split, "schema_pair": "A-B",
    })  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--proteins", type=int, default=50_000)
    p.add_argument("--pairs", type=int, default=200_000)
    p.add_argument("--dim", type=int, default=1280)
    p.add_argument("--steps", type=int, default=400)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        paths = write_cache(Path(tmp), args.proteins, args.dim, rng)
        pairs = pair_table(args.proteins, args.pairs, rng)
        print(
            f"cache {args.proteins} x {args.dim} fp16 written in {time.perf_counter() - t0:.1f} s"
        )
        # the interaction MLP reads embeddings every step (the neighbour model reads them once)
        config = TrainConfig(model="interaction_mlp", batch_size=256, steps=args.steps,
                             eval_every=args.steps // 4, min_steps=args.steps)  # fmt: skip
        rates = {}
        for label, budget in (("in memory", 64.0), ("streamed from HDF5", 1e-9)):
            epoch_times = []
            last = [time.perf_counter()]

            def on_eval(_step, _row, times=epoch_times, last=last):
                now = time.perf_counter()
                times.append(now - last[0])
                last[0] = now

            with EmbeddingStore(paths) as store:
                t0 = time.perf_counter()
                last[0] = t0
                out = run_training(pairs, store, None, config, on_eval, memory_budget_gb=budget,
                                   baseline_max_train_pairs=2000)  # fmt: skip
                total = time.perf_counter() - t0
            n_train = out.sizes["n_train"]
            # the first interval also includes gathering (in memory) and the initial-loss pass
            rate = config.eval_every * config.batch_size / float(np.median(epoch_times))
            rates[label] = rate
            print(f"{label:>20}: {n_train} training pairs, {rate:,.0f} pairs/s "
                  f"(median of {len(epoch_times)} intervals), {total:.1f} s in all "
                  f"(in memory: {out.embeddings_in_memory})")  # fmt: skip
        ratio = rates["in memory"] / rates["streamed from HDF5"]
        print(f"in memory / streamed = {ratio:.2f}x")


if __name__ == "__main__":
    main()
