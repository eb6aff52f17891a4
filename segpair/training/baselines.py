"""Simple baselines trained on the same pairs, so every result says whether the MLP learns
more than a linear model or near-duplicate lookup."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from segpair.training.features import Interaction, interaction_features
from segpair.training.metrics import ThresholdMetric, select_threshold


def pair_features(a: np.ndarray, b: np.ndarray, interactions: list[Interaction]) -> np.ndarray:
    with torch.inference_mode():
        return interaction_features(
            torch.as_tensor(a, dtype=torch.float32),
            torch.as_tensor(b, dtype=torch.float32),
            interactions,
        ).numpy()


def logistic_regression(train, val, test, interactions, threshold_metric: ThresholdMetric, seed=0):
    """(test scores, threshold picked on val) of an L2 logistic regression on the features."""
    x_tr = pair_features(train[0], train[1], interactions)
    clf = LogisticRegression(max_iter=2000, C=1.0, random_state=seed)
    clf.fit(x_tr, train[2])
    val_scores = clf.predict_proba(pair_features(val[0], val[1], interactions))[:, 1]
    test_scores = clf.predict_proba(pair_features(test[0], test[1], interactions))[:, 1]
    return test_scores, select_threshold(val[2], val_scores, threshold_metric)


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


def one_nearest_neighbour(train, val, test, threshold_metric: ThresholdMetric):
    """(test scores in [0, 1], threshold picked on val) of 1-NN on concatenated embeddings."""
    tx = np.concatenate([train[0], train[1]], axis=1)
    scores = {}
    for name, (a, b, _y) in (("val", val), ("test", test)):
        margin = nearest_neighbour_margin(tx, train[2], np.concatenate([a, b], axis=1))
        scores[name] = (margin + 2) / 4  # margin in [-2, 2] -> [0, 1], order kept
    return scores["test"], select_threshold(val[2], scores["val"], threshold_metric)
