"""Invariants of `protein_final`, shared by the asset check and the tests."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from segpair.cleaning import ALLOWED_RESIDUES, PROTEIN_FINAL_COLUMNS


@dataclass
class CheckOutcome:
    passed: bool
    description: str
    failing_examples: list[str]


def check_protein_final(df: pd.DataFrame) -> dict[str, CheckOutcome]:
    """Unique ids, non-empty sequences, allowed alphabet, consistent lengths and columns."""
    out: dict[str, CheckOutcome] = {}
    missing_cols = [c for c in PROTEIN_FINAL_COLUMNS if c not in df.columns]
    out["columns"] = CheckOutcome(
        not missing_cols, "all protein_final columns present", missing_cols
    )

    dup = df.loc[df["brc_fea_id"].duplicated(keep=False), "brc_fea_id"]
    out["unique_ids"] = CheckOutcome(
        dup.empty, "brc_fea_id is unique", sorted(dup.astype(str).unique())[:10]
    )

    seqs = df["esm2_ready_seq"].fillna("").astype(str)
    empty = df.loc[seqs.str.len() == 0, "brc_fea_id"]
    out["non_empty_sequences"] = CheckOutcome(
        empty.empty, "every esm2_ready_seq is non-empty", empty.astype(str).tolist()[:10]
    )

    allowed = "".join(sorted(ALLOWED_RESIDUES))
    bad = df.loc[seqs.str.contains(f"[^{allowed}]", regex=True), "brc_fea_id"]
    out["allowed_alphabet"] = CheckOutcome(
        bad.empty,
        "esm2_ready_seq uses only the 20 standard residues and X",
        bad.astype(str).tolist()[:10],
    )

    wrong_len = df.loc[seqs.str.len() != df["length"].astype("int64"), "brc_fea_id"]
    out["length_matches_sequence"] = CheckOutcome(
        wrong_len.empty, "length equals len(esm2_ready_seq)", wrong_len.astype(str).tolist()[:10]
    )
    return out
