"""Incremental data versions: a new version sharing 95% of its sequences with the previous one
computes only the new 5%.

Simulates a data version (SIMULATED flu proteins), builds its master cache, then makes a
second version in which a share of the proteins (default 5%) carry a new sequence. The
second version's cache is built twice in the same run: reusing the first version's cache
(what the asset does) and recomputing everything (`force_recompute`, the baseline).
Embedder: ESM-2 of the released 8M architecture with random weights on this machine's
device (compute-bound, like a real model), or the k-mer featurizer with `--embedder kmer`.

    .venv/bin/python benchmarks/incremental_versions.py --isolates 150 --new-share 0.05
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from embed_throughput import build_model  # same folder: run as a script

from segpair.cleaning import build_protein_final
from segpair.embeddings.cache import CachePaths
from segpair.embeddings.kmer import KmerEmbedder
from segpair.embeddings.language_models import LanguageModelEmbedder
from segpair.embeddings.pipeline import CacheMode, build_master_cache
from segpair.readers import read_data_version
from segpair.registry import load_registry
from segpair.simulator import SimulationConfig, simulate_population, write_data_version

AMINO = np.array(list("ACDEFGHIKLMNPQRSTVWY"))


def second_version(proteins, share: float, rng):
    """A copy in which `share` of the proteins carry a new sequence (one substitution)."""
    v2 = proteins.copy()
    picked = rng.choice(len(v2), int(round(share * len(v2))), replace=False)
    seqs = v2["esm2_ready_seq"].astype(str).to_numpy()
    for i in picked:
        pos = rng.integers(len(seqs[i]))
        seqs[i] = seqs[i][:pos] + str(rng.choice(AMINO)) + seqs[i][pos + 1 :]
    v2["esm2_ready_seq"] = seqs
    return v2, len(picked)


def timed(proteins, embedder, paths, previous=(), force=False):
    t0 = time.perf_counter()
    report = build_master_cache(
        proteins, embedder, paths, list(previous), CacheMode.of(force), progress=lambda m: None
    )
    return time.perf_counter() - t0, report


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--isolates", type=int, default=150)
    p.add_argument("--new-share", type=float, default=0.05)
    p.add_argument("--embedder", choices=["esm2-8m", "kmer"], default="esm2-8m")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    virus = load_registry().get("flu_a")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        config = SimulationConfig(n_isolates=args.isolates, seed=1)
        write_data_version(simulate_population(virus, config), tmp / "raw" / "v1", virus, config)
        records = read_data_version(tmp / "raw" / "v1", virus)[0].records
        v1, _ = build_protein_final(records, virus)
        v2, n_new = second_version(v1, args.new_share, rng)
        if args.embedder == "kmer":
            embedder = KmerEmbedder()
        else:
            (tmp / "m").mkdir()
            embedder = LanguageModelEmbedder("esm2", "esm2", str(build_model("small", tmp / "m")))
        n_unique = v2["esm2_ready_seq"].nunique()
        print(f"SIMULATED flu, {args.isolates} isolates: {len(v2)} proteins, {n_unique} unique "
              f"sequences; {n_new} proteins changed in v2; embedder {args.embedder}")  # fmt: skip

        t_v1, _ = timed(v1, embedder, CachePaths(tmp / "emb" / "v1", "esm2"))
        previous = [CachePaths(tmp / "emb" / "v1", "esm2")]
        t_inc, inc = timed(v2, embedder, CachePaths(tmp / "emb" / "v2", "esm2"), previous)
        t_full, full = timed(v2, embedder, CachePaths(tmp / "emb" / "v2_full", "esm2"), force=True)
        print(f"v1 from scratch:             {t_v1:7.2f} s")
        print(f"v2 full recompute (baseline): {t_full:7.2f} s, computed {full.computed}")
        print(f"v2 reusing v1:               {t_inc:7.2f} s, computed {inc.computed}, "
              f"reused {inc.n_unique_keys - inc.computed}")  # fmt: skip
        print(f"incremental / full = {t_inc / t_full:.1%} (goal <= 10%)")


if __name__ == "__main__":
    main()
