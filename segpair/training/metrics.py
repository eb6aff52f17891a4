"""Binary classification metrics and threshold selection by F-beta."""

from __future__ import annotations

from typing import Literal

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    matthews_corrcoef,
    precision_recall_curve,
    roc_auc_score,
)

ThresholdMetric = Literal["f1", "f0.5", "f2", "fixed"]
BETA = {"f1": 1.0, "f0.5": 0.5, "f2": 2.0}


def select_threshold(y_true: np.ndarray, scores: np.ndarray, metric: ThresholdMetric) -> float:
    """The score threshold maximising F-beta on these labels; 0.5 for metric 'fixed'."""
    if metric == "fixed" or len(np.unique(y_true)) < 2:
        return 0.5
    beta2 = BETA[metric] ** 2
    precision, recall, thresholds = precision_recall_curve(y_true, scores)
    p, r = precision[:-1], recall[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(p + r > 0, (1 + beta2) * p * r / (beta2 * p + r), 0.0)
    return float(thresholds[int(np.nanargmax(f))])


def binary_metrics(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Accuracy, precision, recall, F1, AUC-ROC, AUC-PR, MCC and the confusion counts."""
    y_true = np.asarray(y_true).astype(int)
    pred = (np.asarray(scores) >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y_true, pred, labels=[0, 1]).ravel()
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    both = len(np.unique(y_true)) == 2
    return {
        "accuracy": float((tp + tn) / max(len(y_true), 1)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0,
        "auc_roc": float(roc_auc_score(y_true, scores)) if both else float("nan"),
        "auc_pr": float(average_precision_score(y_true, scores)) if both else float("nan"),
        "mcc": float(matthews_corrcoef(y_true, pred)) if both else 0.0,
        "tp": int(tp),
        "fp": int(fp),
        "tn": int(tn),
        "fn": int(fn),
        "threshold": float(threshold),
    }
