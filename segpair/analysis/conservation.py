"""How conserved each segment's protein is: why conserved segments are harder to pair.

When most isolates carry the same or a nearly identical PB1, a PB1 says little about
which isolate it came from; HA and NA, under immune pressure, vary far more (seed 001,
"The Conservation Reality"). Two measures per function, from `protein_final` alone:

- pairwise identity between proteins of two different isolates: a seeded sample of at
  most `pairs_per_function` such pairs, each globally aligned (Biopython's
  `PairwiseAligner`, BLOSUM62, gap open -10, extend -0.5: EMBOSS needle's defaults);
  identity = identical aligned positions / alignment columns, gaps included, so two
  identical sequences score 1 and unrelated ones about 0.1-0.2. Pairs of one sequence
  hash are 1 without aligning;
- distinct sequences per 100 isolates: distinct proteins (sequence hash) and, where
  `nt_seq` is present, distinct coding sequences, over the isolates with that protein.

Output of `write_conservation` (atomically): `conservation.parquet` (the table below;
also as `conservation.csv` for the MLflow UI's preview, but pandas reads the function
"NA" there as missing), `pairwise_identity.parquet` (function, brc_a, brc_b, identity: the
sampled pairs, to replot) and `conservation.png`.

Table columns: segment, function, proteins, isolates, distinct_proteins,
distinct_proteins_per_100_isolates, distinct_cds_per_100_isolates (NaN without nt_seq),
identity_pairs (pairs sampled), identity_mean, identity_p05, identity_median,
identity_p95, identical_share (share of sampled pairs with identity 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from Bio import Align
from Bio.Align import substitution_matrices

from segpair.analysis.plots import conservation_png
from segpair.atomic import atomic_path


@dataclass
class ConservationConfig:
    pairs_per_function: int = 100  # alignments per function (a 2,000-residue pair: ~35 ms)
    seed: int = 0


@dataclass
class Conservation:
    table: pd.DataFrame  # one row per function (module docstring)
    identities: pd.DataFrame  # function, brc_a, brc_b, identity


def global_aligner() -> Align.PairwiseAligner:
    """Global protein alignment with EMBOSS needle's default scoring."""
    return Align.PairwiseAligner(
        mode="global",
        substitution_matrix=substitution_matrices.load("BLOSUM62"),
        open_gap_score=-10.0,
        extend_gap_score=-0.5,
    )


def pairwise_identity(a: str, b: str, aligner: Align.PairwiseAligner | None = None) -> float:
    """Identical positions of the optimal global alignment over its length (gaps count)."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    alignment = (aligner or global_aligner()).align(a, b)[0]
    return alignment.counts().identities / alignment.shape[1]


def _sample_pairs(isolates: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Up to `k` distinct index pairs (i < j) of proteins from different isolates: all of
    them when there are few, else drawn at random (fewer than `k` only when nearly every
    pair lies within one isolate, which `identity_pairs` then shows)."""
    n = len(isolates)
    if n * (n - 1) // 2 <= 4 * k:  # few: enumerate, then sample
        i, j = np.triu_indices(n, 1)
        ok = isolates[i] != isolates[j]
        pairs = np.stack([i[ok], j[ok]], axis=1)
        return pairs[np.sort(rng.permutation(len(pairs))[:k])]
    seen: set[tuple[int, int]] = set()
    for _round in range(50):
        i, j = rng.integers(n, size=(2, 2 * k))
        for a, b in zip(np.minimum(i, j), np.maximum(i, j), strict=True):
            if len(seen) < k and a != b and isolates[a] != isolates[b]:
                seen.add((int(a), int(b)))
        if len(seen) == k:
            break
    return np.array(sorted(seen), dtype=np.int64).reshape(-1, 2)


def _distinct_cds(group: pd.DataFrame) -> float:
    if "nt_seq" not in group:
        return float("nan")
    cds = group["nt_seq"].astype("string").fillna("").str.upper()
    cds = cds[cds != ""]
    return float(cds.nunique()) if len(cds) else float("nan")


def measure_conservation(
    proteins: pd.DataFrame, config: ConservationConfig | None = None
) -> Conservation:
    """Per function (in the order of `proteins`, i.e. segment order): identity between
    isolates' proteins on a seeded sample of pairs, and distinct sequences per 100 isolates."""
    config = config or ConservationConfig()
    rng = np.random.default_rng(config.seed)
    aligner = global_aligner()
    rows, sampled = [], []
    for function, group in proteins.groupby("function", sort=False):
        seqs = group["esm2_ready_seq"].astype(str).to_numpy()
        ids = group["brc_fea_id"].astype(str).to_numpy()
        pairs = _sample_pairs(
            group["assembly_id"].astype(str).to_numpy(), config.pairs_per_function, rng
        )
        identity = np.array([pairwise_identity(seqs[i], seqs[j], aligner) for i, j in pairs])
        sampled.append(
            pd.DataFrame(
                {
                    "function": function,
                    "brc_a": ids[pairs[:, 0]],
                    "brc_b": ids[pairs[:, 1]],
                    "identity": identity,
                }
            )
        )
        isolates = group["assembly_id"].nunique()
        distinct = group["seq_hash"].nunique()
        quantiles = (
            np.quantile(identity, [0.05, 0.5, 0.95]) if len(identity) else [float("nan")] * 3
        )
        rows.append(
            {
                "segment": str(group["segment"].iloc[0]),
                "function": str(function),
                "proteins": len(group),
                "isolates": isolates,
                "distinct_proteins": distinct,
                "distinct_proteins_per_100_isolates": 100 * distinct / isolates,
                "distinct_cds_per_100_isolates": 100 * _distinct_cds(group) / isolates,
                "identity_pairs": len(identity),
                "identity_mean": float(identity.mean()) if len(identity) else float("nan"),
                "identity_p05": float(quantiles[0]),
                "identity_median": float(quantiles[1]),
                "identity_p95": float(quantiles[2]),
                "identical_share": float((identity == 1.0).mean())
                if len(identity)
                else float("nan"),
            }
        )
    return Conservation(pd.DataFrame(rows), pd.concat(sampled, ignore_index=True))


def write_conservation(out_dir: Path, result: Conservation, title: str) -> dict[str, Path]:
    """conservation.parquet and .csv, pairwise_identity.parquet and conservation.png in
    `out_dir`, each written atomically; returns the files by name."""
    png = conservation_png(result.identities, result.table, title)
    writers = {
        "conservation.parquet": lambda tmp: result.table.to_parquet(tmp, index=False),
        "conservation.csv": lambda tmp: result.table.to_csv(tmp, index=False),
        "pairwise_identity.parquet": lambda tmp: result.identities.to_parquet(tmp, index=False),
        "conservation.png": lambda tmp: tmp.write_bytes(png),
    }
    for name, write in writers.items():
        with atomic_path(out_dir / name) as tmp:
            write(tmp)
    return {name: out_dir / name for name in writers}
