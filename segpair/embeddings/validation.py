"""Invariants of a committed master cache, shared by the asset check and the tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from segpair.embeddings.cache import EmbeddingStore
from segpair.validation import CheckOutcome


def check_cache(store: EmbeddingStore, proteins: pd.DataFrame, block: int = 4096) -> dict:
    """Exact dimension, finite values, one row per unique sequence key, index consistent
    with the stored keys, and every protein either mapped or listed as failed."""
    out: dict[str, CheckOutcome] = {}
    dim_attr = int(store.attrs.get("dim", -1))
    out["dimension"] = CheckOutcome(
        store.dim == dim_attr, f"emb has {dim_attr} columns, as the model metadata says",
        [f"emb is {store.n_rows} x {store.dim}, attrs say dim={dim_attr}"]
        if store.dim != dim_attr else [],
    )  # fmt: skip
    bad_rows = []
    for start in range(0, store.n_rows, block):
        chunk = store.emb[start : start + block].astype(np.float32)
        bad_rows += (start + np.flatnonzero(~np.isfinite(chunk).all(axis=1))).tolist()
    out["finite"] = CheckOutcome(not bad_rows, "no NaN or Inf in emb", bad_rows[:10])

    keys = store.keys()
    index = store.index
    dup_keys = pd.Series(keys)[pd.Series(keys).duplicated()].tolist()
    out["one_row_per_sequence"] = CheckOutcome(
        not dup_keys and index["cache_key"].nunique() == store.n_rows,
        "rows equal the unique sequence keys of the mapped proteins",
        dup_keys[:5] or [f"{index['cache_key'].nunique()} keys in index, {store.n_rows} rows"]
        if index["cache_key"].nunique() != store.n_rows else dup_keys[:5],
    )  # fmt: skip
    rows = index["row"].to_numpy()
    in_range = (rows >= 0) & (rows < store.n_rows)
    consistent = in_range.copy()
    consistent[in_range] = keys[rows[in_range]] == index["cache_key"].to_numpy()[in_range]
    out["index_matches_keys"] = CheckOutcome(
        bool(consistent.all()),
        "each protein's row holds its own sequence key",
        index.loc[~consistent, "brc_fea_id"].head(10).tolist(),
    )
    failed_ids: set[str] = set()
    if store.paths.failed.exists():
        failed = pd.read_csv(store.paths.failed, dtype=str, keep_default_na=False)
        failed_ids = set(failed.loc[failed["signature"] == store.signature, "brc_fea_id"])
    wanted = set(proteins["brc_fea_id"].astype(str))
    missing = sorted(wanted - set(index["brc_fea_id"]) - failed_ids)
    out["every_protein_accounted"] = CheckOutcome(
        not missing, "every protein_final id is mapped or in failed_ids.csv", missing[:10]
    )
    return out
