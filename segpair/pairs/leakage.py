"""Leakage checks on a segment_pairs table: each returns examples of what leaked."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from segpair.validation import CheckOutcome


def _long(pairs: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    return pd.concat(
        [
            pairs[[a, "split"]].set_axis(["value", "split"], axis=1),
            pairs[[b, "split"]].set_axis(["value", "split"], axis=1),
        ],
        ignore_index=True,
    )


def _in_several_splits(values: pd.DataFrame) -> list[str]:
    n = values.groupby("value")["split"].nunique()
    return n[n > 1].index.astype(str).tolist()


def pair_key_in_two_splits(pairs: pd.DataFrame) -> CheckOutcome:
    bad = _in_several_splits(pairs[["pair_key", "split"]].set_axis(["value", "split"], axis=1))
    return CheckOutcome(not bad, "no sequence pair appears in two splits", bad[:10])


def isolate_in_two_splits(pairs: pd.DataFrame) -> CheckOutcome:
    bad = _in_several_splits(_long(pairs, "assembly_a", "assembly_b"))
    return CheckOutcome(not bad, "no isolate appears in two splits", bad[:10])


def sequence_in_two_splits(pairs: pd.DataFrame) -> CheckOutcome:
    bad = _in_several_splits(_long(pairs, "seq_hash_a", "seq_hash_b"))
    return CheckOutcome(not bad, "no sequence appears in two splits", bad[:10])


def negative_cooccurs(pairs: pd.DataFrame, cooccurrence: pd.DataFrame) -> CheckOutcome:
    lo = cooccurrence[["seq_hash_a", "seq_hash_b"]].min(axis=1)
    hi = cooccurrence[["seq_hash_a", "seq_hash_b"]].max(axis=1)
    blocked = set(lo + "|" + hi)
    neg = pairs[pairs["label"] == 0]
    hit = neg["pair_key"].isin(blocked)
    bad = (neg.loc[hit, "brc_a"].astype(str) + "+" + neg.loc[hit, "brc_b"].astype(str)).tolist()
    return CheckOutcome(not bad, "no negative pairs two sequences that co-occur", bad[:10])


def proteins_without_embedding(pairs: pd.DataFrame, embedded_ids: Iterable[str]) -> CheckOutcome:
    have = set(embedded_ids)
    used = pd.unique(pd.concat([pairs["brc_a"], pairs["brc_b"]]))
    missing = [p for p in used if p not in have]
    return CheckOutcome(
        not missing, "every protein in a pair has an embedding in the master cache", missing[:10]
    )


def leakage_report(pairs: pd.DataFrame, cooccurrence: pd.DataFrame, split_mode: str) -> dict:
    out = {
        "pair_key_in_one_split": pair_key_in_two_splits(pairs),
        "isolate_in_one_split": isolate_in_two_splits(pairs),
        "negatives_never_cooccur": negative_cooccurs(pairs, cooccurrence),
    }
    if split_mode == "sequence":
        out["sequence_in_one_split"] = sequence_in_two_splits(pairs)
    return out
