"""Invariants of a committed master cache, shared by the asset check and the tests; and
validate-only runs of an embedder (a sample embedded and checked, nothing written)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from segpair.embeddings.base import Embedder, row_cosines
from segpair.embeddings.cache import EmbeddingStore
from segpair.embeddings.pipeline import input_sequences
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


# ---------------------------------------------------------------- validate-only runs

VALIDATION_SAMPLE = 64  # sequences a validate-only run embeds when max_sequences is unset


@dataclass
class EngineTrial:
    """A validate-only run of an embedder on a partition's sample: nothing is written."""

    sequences: int
    embedded: int
    seconds: float
    tokens: int
    engine: str
    outcomes: dict[str, CheckOutcome]
    failure_examples: list[str]

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outcomes.values())


def validation_sample(proteins: pd.DataFrame, input_kind: str, n: int) -> pd.DataFrame:
    """Up to `n` proteins with distinct inputs, taken in turn from each function (so the
    sample spans the segments), in table order within a function."""
    seqs = input_sequences(proteins, input_kind)
    table = proteins.assign(_input=seqs)[seqs != ""].drop_duplicates("_input")
    functions = table["function"].astype(str) if "function" in table else pd.Series("", table.index)
    turn = functions.groupby(functions, sort=False).cumcount()
    return table.loc[turn.sort_values(kind="stable").index[:n]]


def validate_engine(
    proteins: pd.DataFrame, embedder: Embedder, n_sequences: int = VALIDATION_SAMPLE
) -> EngineTrial:
    """Embed a sample of the partition and check what a full run would store: every
    sequence embedded, the model's dimension, finite values, the same vector alone as in
    a batch (batching and packing keep sequences apart), and, as the seeds' validation
    does, proteins of one function closer to each other than to other functions (mean
    cosine). Nothing is staged or committed."""
    sample = validation_sample(proteins, embedder.input_kind, n_sequences)
    texts = sample["_input"].tolist()
    t0 = time.perf_counter()
    out = embedder.embed(texts)
    seconds = time.perf_counter() - t0
    vectors = out.vectors.astype(np.float32)
    ids = sample["brc_fea_id"].astype(str).tolist()
    failed = [f"{ids[i]}: {why}" for i, why in sorted(out.failed.items())]
    outcomes = {
        "every_sequence_embedded": CheckOutcome(
            not out.failed, f"all {len(texts)} sample sequences embedded", failed[:10]
        ),
        "dimension": CheckOutcome(
            vectors.shape[1:] == (embedder.dim,),
            f"vectors have the model's {embedder.dim} dimensions",
            [f"got {vectors.shape[1:]}"] if vectors.shape[1:] != (embedder.dim,) else [],
        ),
        "finite": CheckOutcome(
            bool(np.isfinite(vectors).all()),
            "no NaN or Inf",
            [ids[out.ok[i]] for i in np.flatnonzero(~np.isfinite(vectors).all(1))][:10],
        ),  # fmt: skip
        "batch_invariant": _batch_invariance(embedder, texts, out),
    }
    functions = sample["function"].astype(str).to_numpy() if "function" in sample else None
    if functions is not None and len(set(functions[out.ok])) > 1:
        outcomes["closer_within_function"] = _function_separation(vectors, functions[out.ok])
    runtime = getattr(embedder, "runtime", None)
    return EngineTrial(
        len(texts), len(out.ok), seconds, out.tokens,
        runtime()["engine"] if runtime else "", outcomes, failed[:5],
    )  # fmt: skip


def _batch_invariance(embedder: Embedder, texts: list[str], out, k: int = 4) -> CheckOutcome:
    """The first `k` embedded sequences alone against their vectors from the batch."""
    picks = list(range(min(k, len(out.ok))))
    alone = [embedder.embed([texts[out.ok[i]]]).vectors for i in picks]
    if not picks or any(len(a) == 0 for a in alone):
        return CheckOutcome(False, "sequences embedded alone as in a batch", ["none embedded"])
    a, b = np.concatenate(alone), out.vectors[picks]
    cos = row_cosines(a, b)
    return CheckOutcome(
        bool(cos.min() >= 0.999),
        "a sequence's vector alone equals its vector in the batch (cosine >= 0.999)",
        [f"cosine {c:.5f} for sample sequence {i}" for i, c in enumerate(cos) if c < 0.999],
    )


def _function_separation(vectors: np.ndarray, functions: np.ndarray) -> CheckOutcome:
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-30)
    sims = unit @ unit.T
    same = functions[:, None] == functions[None, :]
    off_diagonal = ~np.eye(len(functions), dtype=bool)
    within, between = sims[same & off_diagonal], sims[~same]
    if not len(within):
        return CheckOutcome(True, "one protein per function in the sample: not measured", [])
    w, b = float(within.mean()), float(between.mean())
    return CheckOutcome(
        w > b,
        f"proteins of one function closer than of different functions: mean cosine "
        f"{w:.3f} within vs {b:.3f} between",
        [] if w > b else [f"within {w:.3f} <= between {b:.3f} (untrained weights?)"],
    )
