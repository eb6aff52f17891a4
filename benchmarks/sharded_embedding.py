"""Sharded embedding of one partition: N worker processes, one hash-range shard each,
against one process computing everything, in the same run.

Each side builds the same master cache (plan -> shards -> commit for the sharded side,
`build_master_cache` for the baseline) from the same proteins with the same ESM-2
architecture (random weights). Torch threads are split evenly, so both sides use the
same cores: on a CPU machine this measures the sharding machinery's overhead and the
gain from running processes side by side, not extra hardware (on a cluster each shard
gets its own GPU). With `--device cuda` on a machine with several GPUs, shard i runs on
GPU i mod count (as the asset's shard steps do) against one process on one GPU. The
caches are checked equal (up to the precision's rounding on GPUs).

    .venv/bin/python benchmarks/sharded_embedding.py --isolates 60 --shards 2
    python benchmarks/sharded_embedding.py --device cuda --arch 650m --isolates 2000 \
        --shards "$(nvidia-smi -L | wc -l)"
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from embed_throughput import build_model  # beside this script

from segpair.embeddings.cache import CachePaths, EmbeddingStore
from segpair.embeddings.device import device_for_shard
from segpair.embeddings.language_models import LanguageModelEmbedder
from segpair.embeddings.pipeline import CacheMode, build_master_cache, prepare_master_cache
from segpair.embeddings.sharding import embed_shard, plan_shards
from segpair.registry import load_registry
from segpair.simulator import SimulationConfig, simulate_population


def quiet(_msg: str) -> None:
    pass


def proteins_of(isolates: int):
    flu = load_registry().get("flu_a")
    return simulate_population(flu, SimulationConfig(n_isolates=isolates, seed=3)).protein_final(
        flu
    )


def embedder(model_dir: Path, device: str = "cpu") -> LanguageModelEmbedder:
    # fp32 on CPU, bf16 on GPU: the same precision on every shard and the baseline
    precision = "fp32" if device == "cpu" else "bf16"
    return LanguageModelEmbedder("esm2", "esm2", str(model_dir), device=device,
                                 precision=precision)  # fmt: skip


def run_shard(args) -> float:
    model_dir, proteins, root, shard, n_shards, threads, device = args
    torch.set_num_threads(threads)
    paths = CachePaths.for_partition(root, "flu_a", "v1", "esm2")
    t0 = time.perf_counter()
    shard_embedder = embedder(model_dir, device_for_shard(device, shard))
    embed_shard(proteins, shard_embedder, paths, [], shard, n_shards, progress=quiet)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--isolates", type=int, default=60)
    p.add_argument("--shards", type=int, default=2)
    p.add_argument("--arch", default="small")
    p.add_argument("--device", default="cpu", help="cpu, or cuda: shard i on GPU i mod count")
    args = p.parse_args()
    one = "cuda:0" if args.device == "cuda" else args.device
    cores = os.cpu_count() or 1
    proteins = proteins_of(args.isolates)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "model").mkdir()
        model_dir = build_model(args.arch, tmp / "model")

        torch.set_num_threads(cores)
        single = CachePaths.for_partition(tmp / "single", "flu_a", "v1", "esm2")
        t0 = time.perf_counter()
        build_master_cache(proteins, embedder(model_dir, one), single, progress=quiet)
        t_single = time.perf_counter() - t0

        root = tmp / "sharded"
        paths = CachePaths.for_partition(root, "flu_a", "v1", "esm2")
        threads = max(1, cores // args.shards)
        t0 = time.perf_counter()
        plans = plan_shards(proteins, embedder(model_dir, one), paths, [], args.shards)
        t_plan = time.perf_counter() - t0
        jobs = [(model_dir, proteins, root, i, args.shards, threads, args.device)
                for i in range(args.shards)]  # fmt: skip
        with mp.get_context("spawn").Pool(args.shards) as pool:
            shard_seconds = pool.map(run_shard, jobs)
        t_shards = time.perf_counter() - t0 - t_plan
        t1 = time.perf_counter()
        prepare_master_cache(
            proteins, embedder(model_dir, one), paths, mode=CacheMode.COLLECT, progress=quiet
        ).commit()
        t_commit = time.perf_counter() - t1
        t_sharded = time.perf_counter() - t0

        with EmbeddingStore(single) as a, EmbeddingStore(paths) as b:
            ids = a.index["brc_fea_id"].tolist()
            diff = float(np.abs(a.gather(ids) - b.gather(ids)).max())

    n_unique = sum(p.to_compute for p in plans)
    gpus = torch.cuda.device_count() if args.device == "cuda" else 0
    print(f"arch={args.arch} device={args.device} gpus={gpus} cores={cores} "
          f"proteins={len(proteins)} unique={n_unique} "
          f"shards={args.shards} (per shard: {[p.to_compute for p in plans]}, "
          f"{threads} torch thread(s) each)")  # fmt: skip
    print(f"one process, {cores} threads:   {t_single:7.2f} s")
    print(f"{args.shards} shard processes:        {t_sharded:7.2f} s  (plan {t_plan:.2f} s, "
          f"shards {t_shards:.2f} s [each {', '.join(f'{s:.1f}' for s in shard_seconds)}], "
          f"commit {t_commit:.2f} s)")  # fmt: skip
    print(f"ratio sharded / single: {t_sharded / t_single:.2f}; max |difference| {diff:.2e}")


if __name__ == "__main__":
    main()
