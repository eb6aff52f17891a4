"""k-mer featurizer throughput: segpair's vectorised counter against a plain Python loop.

Both count overlapping k-mers of the same sequences (SIMULATED influenza-length
proteins for amino-acid 3-mers, their coding sequences for nucleotide 6-mers) into the
same vector and L2-normalise it; the results are checked equal; best of 3 runs each.

    .venv/bin/python benchmarks/kmer_throughput.py --n 2000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from segpair.embeddings.kmer import ALPHABETS, KmerEmbedder
from segpair.registry import load_registry
from segpair.simulator import SimulationConfig, simulate_population


def python_loop(seqs: list[str], alphabet: str, k: int) -> np.ndarray:
    """The obvious implementation: a dict of k-mer -> column, one k-mer at a time."""
    index = {}
    for i in range(len(alphabet) ** k):
        word, x = [], i
        for _ in range(k):
            word.append(alphabet[x % len(alphabet)])
            x //= len(alphabet)
        index["".join(reversed(word))] = i
    out = np.zeros((len(seqs), len(alphabet) ** k), dtype=np.float32)
    for r, s in enumerate(seqs):
        s = s.upper()
        for j in range(len(s) - k + 1):
            col = index.get(s[j : j + k])
            if col is not None:
                out[r, col] += 1
        norm = np.linalg.norm(out[r])
        if norm:
            out[r] /= norm
    return out


def best_of(repeats: int, fn):
    """(result, fastest wall time): the first call pays page faults of fresh arrays."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, min(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=2000, help="sequences per input kind")
    args = p.parse_args()
    flu = load_registry().get("flu_a")
    pop = simulate_population(flu, SimulationConfig(n_isolates=args.n // 8 + 1, seed=5))
    proteins = pop.proteins["prot_seq"].astype(str).tolist()[: args.n]
    cds = [s for s in pop.proteins["nt_seq"].astype(str).tolist() if s][: args.n]
    for kind, k, seqs in (("protein", 3, proteins), ("nucleotide", 6, cds)):
        embedder = KmerEmbedder(f"kmer_{kind}", kind, k)
        ours, t_ours = best_of(3, lambda e=embedder, s=seqs: e.embed(s).vectors)
        loop, t_loop = best_of(3, lambda s=seqs, a=ALPHABETS[kind], k=k: python_loop(s, a, k))
        np.testing.assert_allclose(ours, loop, atol=1e-5)
        mean_len = np.mean([len(s) for s in seqs])
        print(f"{kind} {k}-mers, {len(seqs)} sequences (mean length {mean_len:.0f}): "
              f"segpair {len(seqs) / t_ours:,.0f} seq/s, Python loop {len(seqs) / t_loop:,.0f} "
              f"seq/s, ratio {t_loop / t_ours:.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
