"""Simple baselines trained on the same pairs, so every result says whether the MLP learns
more than a linear model or near-duplicate lookup."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from segpair.training.data import PairSet, as_pair_set
from segpair.training.features import Interaction, interaction_features
from segpair.training.metrics import ThresholdMetric, select_threshold


def pair_features(a: np.ndarray, b: np.ndarray, interactions: list[Interaction]) -> np.ndarray:
    with torch.inference_mode():
        return interaction_features(
            torch.as_tensor(a, dtype=torch.float32),
            torch.as_tensor(b, dtype=torch.float32),
            interactions,
        ).numpy()


def baseline_training_pairs(train: PairSet, max_pairs: int | None, seed: int) -> PairSet:
    """The training pairs the baselines fit on: all, or a seeded stratified-by-chance subsample
    when there are more than `max_pairs` (sklearn and 1-NN hold them in memory)."""
    if max_pairs is None or len(train) <= max_pairs:
        return train
    idx = np.sort(np.random.default_rng(seed).choice(len(train), max_pairs, replace=False))
    return train.subset(idx)


def logistic_regression(
    train: PairSet,
    val: PairSet,
    test: PairSet,
    interactions,
    threshold_metric: ThresholdMetric,
    seed: int = 0,
) -> tuple[np.ndarray, float]:
    """(test scores, threshold picked on val) of an L2 logistic regression on the features."""
    train, val, test = map(as_pair_set, (train, val, test))
    a, b, y = train.arrays()
    clf = LogisticRegression(max_iter=2000, C=1.0, random_state=seed)
    clf.fit(pair_features(a, b, interactions), y)

    def score(pairs: PairSet) -> np.ndarray:
        blocks = [clf.predict_proba(pair_features(a, b, interactions))[:, 1]
                  for a, b, _ in pairs.batches()]  # fmt: skip
        return np.concatenate(blocks) if blocks else np.empty(0)

    return score(test), select_threshold(val.y, score(val), threshold_metric)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def nearest_neighbour_margin(train_x, train_y, query_x, block: int = 2048) -> np.ndarray:
    """For each query: cosine similarity to the nearest training positive minus that to the
    nearest training negative (> 0 leans positive)."""
    tx, qx = _unit(train_x), _unit(query_x)
    pos, neg = tx[train_y == 1], tx[train_y == 0]
    out = np.empty(len(qx), dtype=np.float32)
    for s in range(0, len(qx), block):
        q = qx[s : s + block]
        out[s : s + block] = (q @ pos.T).max(axis=1) - (q @ neg.T).max(axis=1)
    return out


def one_nearest_neighbour(
    train: PairSet, val: PairSet, test: PairSet, threshold_metric: ThresholdMetric
) -> tuple[np.ndarray, float]:
    """(test scores in [0, 1], threshold picked on val) of 1-NN on concatenated embeddings."""
    train, val, test = map(as_pair_set, (train, val, test))
    a, b, y = train.arrays()
    tx = np.concatenate([a, b], axis=1)

    def score(pairs: PairSet) -> np.ndarray:
        margins = [nearest_neighbour_margin(tx, y, np.concatenate([a, b], axis=1))
                   for a, b, _ in pairs.batches()]  # fmt: skip
        margin = np.concatenate(margins) if margins else np.empty(0, np.float32)
        return (margin + 2) / 4  # margin in [-2, 2] -> [0, 1], order kept

    return score(test), select_threshold(val.y, score(val), threshold_metric)
