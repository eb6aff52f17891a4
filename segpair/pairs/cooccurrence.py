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


@dataclass
class HashCodes:
    """Sequence hashes as dense integer codes, and unordered pair keys on them."""

    hashes: np.ndarray  # code -> hash (str)

    @classmethod
    def from_series(cls, seq_hash: pd.Series) -> tuple[HashCodes, np.ndarray]:
        codes, uniques = pd.factorize(seq_hash, sort=True)
        return cls(np.asarray(uniques, dtype=object)), codes.astype(np.int64)

    @property
    def n(self) -> int:
        return len(self.hashes)

    def pair_key(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Order-free key of two hash codes (int64)."""
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        return lo * np.int64(self.n) + hi

    def unpack(self, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return key // self.n, key % self.n


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

    Columns: seq_hash_a, seq_hash_b (a < b), n_isolates. Identical sequences within one
    isolate (a protein repeated) are not a pair.
    """
    codes_of, codes = HashCodes.from_series(proteins["seq_hash"].astype(str))
    isolate = pd.factorize(proteins["assembly_id"].astype(str))[0]
    i, j = within_isolate_pairs(isolate, codes)
    keep = codes[i] != codes[j]
    keys = codes_of.pair_key(codes[i][keep], codes[j][keep])
    iso = isolate[i][keep].astype(np.int64)
    # count distinct isolates per key
    both = np.unique(np.stack([keys, iso]), axis=1)
    uniq, counts = np.unique(both[0], return_counts=True)
    a, b = codes_of.unpack(uniq)
    table = pd.DataFrame(
        {
            "seq_hash_a": codes_of.hashes[a].astype(str),
            "seq_hash_b": codes_of.hashes[b].astype(str),
            "n_isolates": counts.astype(np.int64),
        }
    )
    stats = {
        "total_cooccur_pairs": int(len(table)),
        "pairs_in_multiple_isolates": int((counts > 1).sum()),
        "max_isolates_per_pair": int(counts.max()) if len(counts) else 0,
    }
    return table, stats
