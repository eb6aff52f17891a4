"""Co-occurrence: every pair of sequences seen together in any isolate.

A pair (sequence X, sequence Y) that occurs in some isolate could be a positive, so it
must never be labelled negative anywhere (a contradictory label otherwise). Pairs
are unordered and keyed on sequence hashes, so identical proteins of different
isolates count as one sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import polars as pl


@dataclass
class HashCodes:
    """Sequence hashes as dense integer codes, and unordered pair keys on them."""

    hashes: np.ndarray  # code -> hash (str)

    @property
    def n(self) -> int:
        return len(self.hashes)

    def pair_key(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Order-free key of two hash codes (int64)."""
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        return lo * np.int64(self.n) + hi


def within_isolate_pairs(isolate: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, ...]:
    """All index pairs (i, j), i < j, of rows sharing an isolate: vectorised by group."""
    order = np.argsort(isolate, kind="stable")
    iso_sorted = isolate[order]
    starts = np.flatnonzero(np.r_[True, iso_sorted[1:] != iso_sorted[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    left, right = [], []
    for k in np.unique(sizes):
        if k < 2:
            continue
        group_starts = starts[sizes == k]
        ii, jj = np.triu_indices(k, 1)
        left.append(order[(group_starts[:, None] + ii[None, :]).ravel()])
        right.append(order[(group_starts[:, None] + jj[None, :]).ravel()])
    if not left:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    return np.concatenate(left), np.concatenate(right)


def build_cooccurrence(proteins: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """(table of co-occurring hash pairs with isolate counts, summary statistics).

    Columns: seq_hash_a, seq_hash_b (a < b), n_isolates; rows sorted by (seq_hash_a,
    seq_hash_b). Identical sequences within one isolate (a protein repeated) are not a pair.
    """
    # polars: a self-join on integer codes and a group-by, 2x faster than sorting stacked
    # keys with numpy, in half the working memory, at 100k isolates (BENCHMARKS.md)
    rows = pl.from_pandas(proteins[["seq_hash", "assembly_id"]]).select(
        pl.col("seq_hash").cast(pl.String), pl.col("assembly_id").cast(pl.String)
    )
    hashes = rows["seq_hash"].unique().sort()
    hash_code = pl.DataFrame({"seq_hash": hashes, "h": pl.int_range(len(hashes), eager=True)})
    isolates = rows["assembly_id"].unique()
    isolate_code = pl.DataFrame(
        {"assembly_id": isolates, "i": pl.int_range(len(isolates), eager=True)}
    )
    held = rows.join(hash_code, on="seq_hash").join(isolate_code, on="assembly_id")
    held = held.select("h", "i").unique()  # each isolate counts a pair once
    counted = (
        held.join(held, on="i", suffix="_b")
        .filter(pl.col("h") < pl.col("h_b"))
        .group_by("h", "h_b")
        .agg(n_isolates=pl.len().cast(pl.Int64))
        .sort("h", "h_b")
    )
    table = pl.DataFrame(
        {
            "seq_hash_a": hashes.gather(counted["h"]),
            "seq_hash_b": hashes.gather(counted["h_b"]),
            "n_isolates": counted["n_isolates"],
        }
    ).to_pandas()
    counts = counted["n_isolates"]
    stats = {
        "total_cooccur_pairs": int(len(table)),
        "pairs_in_multiple_isolates": int((counts > 1).sum()),
        "max_isolates_per_pair": int(counts.max()) if len(counts) else 0,
    }
    return table, stats
