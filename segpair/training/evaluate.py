"""Stratified evaluation: overall, per schema pair, and by metadata match of negatives."""

from __future__ import annotations

import numpy as np
import pandas as pd

from segpair.training.metrics import binary_metrics

MATCH_FLAGS = ("same_subtype", "same_host", "same_year")


def stratified_metrics(test: pd.DataFrame, scores: np.ndarray, threshold: float) -> pd.DataFrame:
    """One row per stratum: overall, each schema pair, and for each metadata flag all
    positives with the negatives that match (or do not match) on it. Matched negatives
    are the hard ones: isolates alike in subtype, host or year."""
    y = test["label"].to_numpy().astype(int)
    rows = [{"stratum": "all", **binary_metrics(y, scores, threshold), "n": len(y)}]
    for schema, idx in test.groupby("schema_pair", observed=True).indices.items():
        rows.append(
            {
                "stratum": f"schema={schema}",
                **binary_metrics(y[idx], scores[idx], threshold),
                "n": len(idx),
            }  # fmt: skip
        )
    pos = y == 1
    for flag in MATCH_FLAGS:
        if flag not in test:
            continue
        values = test[flag].to_numpy().astype(bool)
        for wanted in (True, False):
            mask = pos | (~pos & (values == wanted))
            if (~pos & mask).sum() == 0:
                continue
            rows.append(
                {
                    "stratum": f"negatives {flag}={wanted}",
                    **binary_metrics(y[mask], scores[mask], threshold),
                    "n": int(mask.sum()),
                }  # fmt: skip
            )
    return pd.DataFrame(rows)
