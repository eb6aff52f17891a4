"""Baselines trained on the same pairs, so every result says whether the model learns more
than a linear model, a near-duplicate lookup or a tree ensemble:

- `logreg`: L2 logistic regression on the interaction features;
- `1nn`: the nearest training pair (concatenated unit vectors), positive minus negative;
- `knn`: similarity-weighted vote of the k nearest training pairs, k chosen on val;
- `gbt`: gradient-boosted trees (scikit-learn's histogram GBM, LightGBM's algorithm) on
  interaction features of a 32-dim SVD projection fitted on training proteins.

Each is fitted once (`fit_baselines`) and then scores any pairs, so a model's baselines
can follow it to another data version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

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


@dataclass
class FittedBaseline:
    """A baseline fitted on training pairs, its threshold picked on val."""

    name: str
    score_block: Callable[[np.ndarray, np.ndarray], np.ndarray]
    threshold: float = 0.5

    def score(self, pairs: PairSet) -> np.ndarray:
        blocks = [self.score_block(a, b) for a, b, _ in as_pair_set(pairs).batches()]
        return np.concatenate(blocks).astype(np.float32) if blocks else np.empty(0, np.float32)


def _fit_logreg(train: PairSet, interactions, seed: int):
    a, b, y = train.arrays()
    clf = LogisticRegression(max_iter=2000, C=1.0, random_state=seed)
    clf.fit(pair_features(a, b, interactions), y)
    return lambda a, b: clf.predict_proba(pair_features(a, b, interactions))[:, 1]


def _concat_unit(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _unit(np.concatenate([_unit(a), _unit(b)], axis=1))


def _fit_1nn(train: PairSet):
    a, b, y = train.arrays()
    tx = np.concatenate([a, b], axis=1)
    # margin in [-2, 2] -> [0, 1], order kept
    return lambda a, b: (nearest_neighbour_margin(tx, y, np.concatenate([a, b], 1)) + 2) / 4


def knn_votes(tx: np.ndarray, ty: np.ndarray, q: np.ndarray, k: int, tau: float = 0.01):
    """Similarity-weighted share of positives among the k nearest training pairs (weights
    exp((cos - 1) / tau)); a small mean-similarity term breaks ties."""
    s = q @ tx.T
    k = min(k, s.shape[1])
    idx = np.argpartition(-s, k - 1, axis=1)[:, :k]
    near = np.take_along_axis(s, idx, 1)
    w = np.exp((near - 1) / tau)
    return (w * ty[idx]).sum(1) / np.maximum(w.sum(1), 1e-30) + 1e-3 * near.mean(1)


def _fit_knn(train: PairSet, val: PairSet, ks=(3, 5, 10, 25)):
    a, b, y = train.arrays()
    tx, ty = _concat_unit(a, b), y.astype(np.float32)
    va, vb, vy = val.arrays()
    q = _concat_unit(va, vb)

    def val_auc(k: int) -> float:
        return roc_auc_score(vy, knn_votes(tx, ty, q, k)) if len(np.unique(vy)) > 1 else 0.0

    k = max(ks, key=lambda k: (val_auc(k), -k))
    return lambda a, b: knn_votes(tx, ty, _concat_unit(a, b), k)


def _fit_gbt(train: PairSet, seed: int, dim: int = 32):
    from segpair.training.neighbours import SlotProjection

    a, b, y = train.arrays()
    proj = SlotProjection.fit(np.concatenate([a, b]), dim, seed)

    def features(a, b):
        with torch.inference_mode():
            return proj(torch.as_tensor(a), torch.as_tensor(b)).numpy()

    clf = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, max_leaf_nodes=15,
                                         min_samples_leaf=10, l2_regularization=1.0,
                                         random_state=seed)  # fmt: skip
    # One OpenMP thread: on ~100 features the threads mostly wait for each other, and
    # badly so beside other busy steps.
    with threadpool_limits(limits=1):
        clf.fit(features(a, b), y)

    def score(a, b):
        with threadpool_limits(limits=1):
            return clf.predict_proba(features(a, b))[:, 1]

    return score


def fit_baselines(
    train: PairSet, val: PairSet, interactions, threshold_metric: ThresholdMetric, seed: int = 0
) -> dict[str, FittedBaseline]:
    """Every baseline fitted on `train`, each threshold picked on `val`."""
    train, val = as_pair_set(train), as_pair_set(val)
    fitted = {
        "logreg": _fit_logreg(train, interactions, seed),
        "1nn": _fit_1nn(train),
        "knn": _fit_knn(train, val),
        "gbt": _fit_gbt(train, seed),
    }
    out = {}
    for name, block in fitted.items():
        baseline = FittedBaseline(name, block)
        baseline.threshold = select_threshold(val.y, baseline.score(val), threshold_metric)
        out[name] = baseline
    return out
