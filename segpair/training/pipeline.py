"""From a segment_pairs table and a master cache to a trained, evaluated classifier."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from segpair.embeddings.cache import EmbeddingStore
from segpair.errors import InputDataError
from segpair.training.baselines import FittedBaseline, baseline_training_pairs, fit_baselines
from segpair.training.data import PairSet, plan_gather
from segpair.training.evaluate import MODEL, stratified_metrics, verdict
from segpair.training.metrics import binary_metrics
from segpair.training.train import (
    TrainConfig,
    TrainResult,
    predict_pairs,
    report_learning,
    train_pair_classifier,
)


@dataclass
class TrainingOutcome:
    result: TrainResult
    test_pairs: pd.DataFrame
    scores: dict[str, np.ndarray]  # scorer -> test scores (mlp, logreg, 1nn, knn, gbt)
    thresholds: dict[str, float]
    metrics: dict[str, dict[str, float]]  # scorer -> test metrics
    stratified: pd.DataFrame  # the MLP per stratum
    learning: dict
    sizes: dict[str, int]
    embeddings_in_memory: bool  # False: batches were read from the HDF5 cache
    verdict: dict  # the model against its best baseline, worst stratum, confusion counts
    baselines: dict[str, FittedBaseline]


def select_pairs(pairs: pd.DataFrame, schema_pairs: list[list[str]] | None) -> pd.DataFrame:
    if not schema_pairs:
        return pairs
    names = [f"{a}-{b}" for a, b in schema_pairs]
    present = set(pairs["schema_pair"].astype(str))
    absent = [n for n in names if n not in present]
    if absent:
        raise InputDataError(
            "training config",
            f"schema pairs {absent} are not in segment_pairs (it has {sorted(present)})",
            "train on schema pairs that segment_pairs was built with",
        )
    return pairs[pairs["schema_pair"].astype(str).isin(names)]


def split_rows(pairs: pd.DataFrame, store: EmbeddingStore, split: str):
    """(rows_a, rows_b, labels) of one split, as rows of the master cache."""
    part = pairs[pairs["split"] == split]
    if part.empty or part["label"].nunique() < 2:
        raise InputDataError(
            f"segment_pairs split {split!r}",
            f"has {len(part)} pairs and labels {sorted(part['label'].unique())}: cannot train "
            "or evaluate on it",
            "build segment_pairs with more isolates or other ratios",
        )
    have = set(store.index["brc_fea_id"])
    missing = sorted(set(part["brc_a"]) - have | set(part["brc_b"]) - have)
    if missing:
        raise InputDataError(
            f"{store.paths.h5.name} ({split} split)",
            f"no vector for {len(missing)} proteins of the pairs, e.g. {missing[:3]} (see "
            f"{store.paths.failed.name}; nucleotide embedders need nt_seq, which protein-only "
            "inputs lack)",
            "train with an embedder that covers these proteins (kmer_aa3 covers all)",
        )
    return (
        store.rows_of(part["brc_a"]),
        store.rows_of(part["brc_b"]),
        part["label"].to_numpy().astype(np.float32),
    )


def isolate_codes(pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of each pair's two isolates (one code per isolate across the table)."""
    both = pd.concat([pairs["assembly_a"].astype(str), pairs["assembly_b"].astype(str)])
    codes = pd.factorize(both)[0]
    return codes[: len(pairs)].astype(np.int64), codes[len(pairs) :].astype(np.int64)


def gather_splits(
    pairs: pd.DataFrame, store: EmbeddingStore, memory_budget_gb: float
) -> tuple[dict[str, PairSet], bool]:
    """Train/val/test pair sets, their vectors in memory when they fit the budget (each
    protein once), else read from the HDF5 cache batch by batch."""
    names = ("train", "val", "test")
    rows = {s: split_rows(pairs, store, s) for s in names}
    source, remapped, in_memory = plan_gather(store, [rows[s][:2] for s in names], memory_budget_gb)
    iso_a, iso_b = isolate_codes(pairs)
    split = pairs["split"].to_numpy()
    sets = {
        s: PairSet(source, *remapped[i], rows[s][2], iso_a[split == s], iso_b[split == s])
        for i, s in enumerate(names)
    }
    return sets, in_memory


def seen_in_training(pairs: pd.DataFrame) -> pd.Series:
    """Per pair: how many of its two sequences occur in the training split (0, 1, 2)."""
    train = pairs[pairs["split"] == "train"]
    known = set(train["seq_hash_a"].astype(str)) | set(train["seq_hash_b"].astype(str))
    return pairs["seq_hash_a"].astype(str).isin(known).astype(int) + pairs["seq_hash_b"].astype(
        str
    ).isin(known).astype(int)


def run_training(
    pairs: pd.DataFrame,
    store: EmbeddingStore,
    schema_pairs: list[list[str]] | None,
    config: TrainConfig,
    on_eval: Callable[[int, dict[str, float]], None] | None = None,
    memory_budget_gb: float = 8.0,
    baseline_max_train_pairs: int | None = 50_000,
) -> TrainingOutcome:
    chosen = select_pairs(pairs, schema_pairs)
    sets, in_memory = gather_splits(chosen, store, memory_budget_gb)
    train, val, test = sets["train"], sets["val"], sets["test"]
    result = train_pair_classifier(train, val, config, on_eval)
    scores = {MODEL: predict_pairs(result.model, test)}
    thresholds = {MODEL: result.threshold}
    baseline_train = baseline_training_pairs(train, baseline_max_train_pairs, config.seed)
    baselines = fit_baselines(
        baseline_train, val, config.interactions, config.threshold_metric, config.seed
    )
    for name, baseline in baselines.items():
        scores[name], thresholds[name] = baseline.score(test), baseline.threshold
    metrics = {k: binary_metrics(test.y, scores[k], thresholds[k]) for k in scores}
    test_pairs = chosen[chosen["split"] == "test"].reset_index(drop=True)
    test_pairs["seen_sequences"] = seen_in_training(chosen)[chosen["split"] == "test"].to_numpy()
    return TrainingOutcome(
        result=result,
        test_pairs=test_pairs,
        scores=scores,
        thresholds=thresholds,
        metrics=metrics,
        stratified=stratified_metrics(test_pairs, scores[MODEL], result.threshold),
        learning=report_learning(result, test.y, metrics[MODEL]),
        sizes={
            **{f"n_{s}": len(x) for s, x in sets.items()},
            "n_baseline_train": len(baseline_train),
        },  # fmt: skip
        embeddings_in_memory=in_memory,
        verdict=verdict(test_pairs, scores, thresholds),
        baselines=baselines,
    )
