"""Does an embedding carry isolate signal? Similarity diagnostics before any training.

- cosine similarity of positive vs negative pairs: means, Cohen's d (standardised
  difference; d < 0.5 is weak signal) and histogram overlap (> 80% is very weak), pooled
  and per schema pair (a conserved pair such as PB2-PB1 can hide behind HA-NA's signal);
- intra- vs inter-function similarity: how tightly each protein's embeddings cluster
  (> 0.95 = conserved; the model must then find isolate signal in small differences).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from segpair.analysis.plots import schema_pair_png
from segpair.atomic import atomic_path, write_text_atomic
from segpair.embeddings.base import row_cosines
from segpair.embeddings.cache import EmbeddingStore
from segpair.errors import InputDataError
from segpair.training.plots import similarity_png


@dataclass
class SimilarityDiagnostics:
    summary: dict[str, float]
    positive: np.ndarray  # cosine similarities of positive pairs (sampled)
    negative: np.ndarray
    per_function: pd.DataFrame  # function, n, intra_mean, intra_std
    # SCHEMA_PAIR_COLUMNS: the same statistics per schema pair, on the same sampled pairs
    per_schema_pair: pd.DataFrame


SCHEMA_PAIR_COLUMNS = ["schema_pair", "n_positive", "n_negative", "positive_mean",
                       "negative_mean", "cohens_d", "histogram_overlap"]  # fmt: skip


def histogram_overlap(x: np.ndarray, y: np.ndarray, bins: int = 50) -> float:
    """Shared area of the two normalised histograms (1 = identical distributions)."""
    lo, hi = min(x.min(), y.min()), max(x.max(), y.max())
    if hi <= lo:
        return 1.0
    hx, edges = np.histogram(x, bins=bins, range=(lo, hi), density=True)
    hy, _ = np.histogram(y, bins=bins, range=(lo, hi), density=True)
    return float(np.minimum(hx, hy).sum() * (edges[1] - edges[0]))


def cohens_d(x: np.ndarray, y: np.ndarray) -> float:
    pooled = np.sqrt(
        ((len(x) - 1) * x.var(ddof=1) + (len(y) - 1) * y.var(ddof=1)) / (len(x) + len(y) - 2)
    )
    return float((x.mean() - y.mean()) / pooled) if pooled > 0 else 0.0


def per_schema_pair_table(
    positive: np.ndarray, negative: np.ndarray, positive_pair: np.ndarray, negative_pair: np.ndarray
) -> pd.DataFrame:
    """The pooled statistics again, per schema pair (`*_pair`: each similarity's schema
    pair), highest Cohen's d first; NaN where a schema pair has under 2 positives or negatives."""
    rows = []
    for name in sorted(set(positive_pair) | set(negative_pair)):
        pos, neg = positive[positive_pair == name], negative[negative_pair == name]
        both = len(pos) >= 2 and len(neg) >= 2
        rows.append(
            {
                "schema_pair": str(name),
                "n_positive": len(pos),
                "n_negative": len(neg),
                "positive_mean": float(pos.mean()) if len(pos) else float("nan"),
                "negative_mean": float(neg.mean()) if len(neg) else float("nan"),
                "cohens_d": cohens_d(pos, neg) if both else float("nan"),
                "histogram_overlap": histogram_overlap(pos, neg) if both else float("nan"),
            }
        )
    table = pd.DataFrame(rows, columns=SCHEMA_PAIR_COLUMNS)
    return table.sort_values("cohens_d", ascending=False, na_position="last", ignore_index=True)


def similarity_diagnostics(
    pairs: pd.DataFrame, store: EmbeddingStore, max_pairs: int = 20_000, seed: int = 0
) -> SimilarityDiagnostics:
    rng = np.random.default_rng(seed)
    have = set(store.index["brc_fea_id"])
    usable = pairs[pairs["brc_a"].isin(have) & pairs["brc_b"].isin(have)]
    sims, schema = {}, {}
    for label, name in ((1, "positive"), (0, "negative")):
        part = usable[usable["label"] == label]
        if len(part) > max_pairs:
            part = part.iloc[rng.choice(len(part), max_pairs, replace=False)]
        sims[name] = row_cosines(store.gather(part["brc_a"]), store.gather(part["brc_b"]))
        schema[name] = part["schema_pair"].astype(str).to_numpy()
    pos, neg = sims["positive"], sims["negative"]
    if len(pos) < 2 or len(neg) < 2:
        raise InputDataError(
            store.paths.h5.name,
            f"no vector for most pairs' proteins ({len(pos)} positive, {len(neg)} negative pairs "
            "usable; nucleotide embedders need nt_seq, which protein-only inputs lack)",
            "run the diagnostics with an embedder that covers these proteins (kmer_aa3)",
        )

    # intra-function: random pairs of distinct proteins of one function; inter: of two functions
    proteins = pd.concat(
        [usable[["brc_a", "func_a"]].set_axis(["id", "function"], axis=1),
         usable[["brc_b", "func_b"]].set_axis(["id", "function"], axis=1)]
    ).drop_duplicates("id")  # fmt: skip
    proteins["function"] = proteins["function"].astype(str)
    rows = []
    for function, group in proteins.groupby("function"):
        ids = group["id"].to_numpy()
        if len(ids) < 2:
            continue
        k = min(2000, len(ids) * (len(ids) - 1) // 2)
        i, j = rng.integers(len(ids), size=(2, k))
        keep = i != j
        s = row_cosines(store.gather(ids[i[keep]]), store.gather(ids[j[keep]]))
        rows.append({"function": function, "proteins": len(ids),
                     "intra_mean": float(s.mean()), "intra_std": float(s.std())})  # fmt: skip
    ids, funcs = proteins["id"].to_numpy(), proteins["function"].to_numpy()
    i, j = rng.integers(len(ids), size=(2, 4000))
    keep = funcs[i] != funcs[j]
    inter = row_cosines(store.gather(ids[i[keep]]), store.gather(ids[j[keep]]))
    per_function = pd.DataFrame(rows)
    summary = {
        "positive_mean": float(pos.mean()),
        "negative_mean": float(neg.mean()),
        "cohens_d": cohens_d(pos, neg),
        "histogram_overlap": histogram_overlap(pos, neg),
        "intra_function_mean": float(per_function["intra_mean"].mean()) if rows else float("nan"),
        "inter_function_mean": float(inter.mean()) if len(inter) else float("nan"),
        "n_positive": int(len(pos)),
        "n_negative": int(len(neg)),
    }
    per_pair = per_schema_pair_table(pos, neg, schema["positive"], schema["negative"])
    return SimilarityDiagnostics(summary, pos, neg, per_function, per_pair)


def write_diagnostics(
    out_dir: Path, diag: SimilarityDiagnostics, title: str
) -> tuple[bytes, list[Path]]:
    """similarity.png, diagnostics.json, per_function_similarity.csv,
    per_schema_pair_similarity.csv and per_schema_pair_similarity.png (Cohen's d per schema
    pair) in `out_dir`, written atomically; returns the histogram PNG and the files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png = similarity_png(diag.positive, diag.negative, title)
    pngs = {
        "similarity.png": png,
        "per_schema_pair_similarity.png": schema_pair_png(diag.per_schema_pair, title),
    }
    for name, content in pngs.items():
        with atomic_path(out_dir / name) as tmp:
            tmp.write_bytes(content)
    write_text_atomic(out_dir / "diagnostics.json", json.dumps(diag.summary, indent=1))
    tables = {
        "per_function_similarity.csv": diag.per_function,
        "per_schema_pair_similarity.csv": diag.per_schema_pair,
    }
    for name, frame in tables.items():
        with atomic_path(out_dir / name) as tmp:
            frame.to_csv(tmp, index=False)
    names = ["similarity.png", "diagnostics.json", *tables, "per_schema_pair_similarity.png"]
    return png, [out_dir / n for n in names]
