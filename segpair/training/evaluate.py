"""Evaluation: overall, per schema pair, by metadata match of negatives and by whether the
sequences were seen in training; and the verdict of the model against its baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from segpair.training.metrics import binary_metrics

MATCH_FLAGS = ("same_subtype", "same_host", "same_year")
MODEL = "mlp"  # the trained model's name among the scorers
HARD_STRATUM = "negatives same_subtype=True"
MIN_STRATUM = 10  # strata with fewer pairs are too noisy to name as the worst


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
    if "seen_sequences" in test:
        for seen, label in ((0, "neither"), (1, "one"), (2, "both")):
            idx = np.flatnonzero(test["seen_sequences"].to_numpy() == seen)
            if len(idx) and len(np.unique(y[idx])) == 2:
                m = binary_metrics(y[idx], scores[idx], threshold)
                rows.append({"stratum": f"sequences seen in training: {label}", **m, "n": len(idx)})
    return pd.DataFrame(rows)


def rank_auc(y: np.ndarray, s: np.ndarray) -> float:
    """AUC-ROC by the rank-sum (Mann-Whitney) formula, ties averaged: roc_auc_score's
    value without its per-call overhead, for the bootstrap."""
    ranks = rankdata(s)
    pos = y == 1
    n1, n0 = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def paired_auc_difference(y, s1, s2, n_boot: int = 1000, seed: int = 0):
    """AUC(s1) - AUC(s2) on the same pairs, with a 95% bootstrap interval over pairs."""
    y = np.asarray(y).astype(int)
    s1, s2 = np.asarray(s1, dtype=np.float64), np.asarray(s2, dtype=np.float64)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(i):
            diffs.append(rank_auc(y[i], s1[i]) - rank_auc(y[i], s2[i]))
    point = roc_auc_score(y, s1) - roc_auc_score(y, s2)
    lo, hi = np.percentile(diffs, [2.5, 97.5]) if diffs else (np.nan, np.nan)
    return float(point), float(lo), float(hi)


def verdict(test: pd.DataFrame, scores: dict[str, np.ndarray], thresholds: dict) -> dict:
    """The model against its best baseline on the same test pairs (AUC difference and its
    bootstrap CI), its worst stratum, its AUC on same-subtype negatives, and its
    confusion counts. Says plainly when a baseline is better."""
    y = test["label"].to_numpy().astype(int)
    auc = {k: roc_auc_score(y, v) for k, v in scores.items()}
    best = max((k for k in scores if k != MODEL), key=lambda k: auc[k])
    diff, lo, hi = paired_auc_difference(y, scores[MODEL], scores[best])
    strata = stratified_metrics(test, scores[MODEL], thresholds[MODEL])
    named = strata[(strata["n"] >= MIN_STRATUM) & strata["auc_roc"].notna()]
    worst = named.loc[named["auc_roc"].idxmin()] if len(named) else None
    hard = strata.loc[strata["stratum"] == HARD_STRATUM, "auc_roc"]
    m = binary_metrics(y, scores[MODEL], thresholds[MODEL])
    beats = lo > 0
    summary = (f"the model beats its best baseline ({best}) by {diff:+.3f} AUC"
               if beats else f"the model does NOT beat its best baseline ({best}): "
               f"{diff:+.3f} AUC, 95% CI [{lo:+.3f}, {hi:+.3f}]")  # fmt: skip
    return {
        "model_auc": auc[MODEL], "best_baseline": best, "best_baseline_auc": auc[best],
        "auc_difference": diff, "auc_difference_ci_low": lo, "auc_difference_ci_high": hi,
        "beats_best_baseline": bool(beats),
        "worst_stratum": None if worst is None else str(worst["stratum"]),
        "worst_stratum_auc": None if worst is None else float(worst["auc_roc"]),
        "same_subtype_negatives_auc": float(hard.iloc[0]) if len(hard) else None,
        **{k: int(m[k]) for k in ("tp", "fp", "tn", "fn")}, "summary": summary,
    }  # fmt: skip


def auc_by_schema(test: pd.DataFrame, scores: dict[str, np.ndarray]) -> pd.DataFrame:
    """Test AUC of every scorer per schema pair (rows) - the heatmap's table."""
    y = test["label"].to_numpy().astype(int)
    rows = {}
    for schema, idx in test.groupby("schema_pair", observed=True).indices.items():
        if len(np.unique(y[idx])) == 2:
            rows[str(schema)] = {k: roc_auc_score(y[idx], v[idx]) for k, v in scores.items()}
    return pd.DataFrame.from_dict(rows, orient="index")
