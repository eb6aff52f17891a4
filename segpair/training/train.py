"""Training a pair classifier on frozen embeddings: seeded, early-stopped, thresholded.

Deterministic on CPU for a given seed: parameters, dropout and the epoch order all
come from one seeded generator. The learning sanity check is computed
here: the loss before any step must be near ln 2 (an untrained logit of ~0), and
`report_learning` compares the trained model with the majority-class baseline.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import nn

from segpair.training.data import PairSet, as_pair_set
from segpair.training.features import Interaction, SlotTransform
from segpair.training.metrics import ThresholdMetric, binary_metrics, select_threshold
from segpair.training.model import PairClassifier

StopMetric = Literal["loss", "f1", "auc"]


@dataclass
class TrainConfig:
    interactions: list[Interaction] = field(default_factory=lambda: ["concat", "diff", "prod"])
    slot_transform: SlotTransform = "none"
    hidden: list[int] = field(default_factory=lambda: [256, 64])
    dropout: float = 0.1
    lr: float = 1e-3
    weight_decay: float = 1e-2
    batch_size: int = 256
    max_epochs: int = 50
    patience: int = 8
    early_stopping_metric: StopMetric = "auc"
    threshold_metric: ThresholdMetric = "f1"
    seed: int = 42
    device: str = "cpu"


@dataclass
class TrainResult:
    model: PairClassifier
    history: list[dict[str, float]]
    best_epoch: int
    threshold: float
    initial_loss: float
    stopped_early: bool

    @property
    def initial_loss_near_ln2(self) -> bool:
        return abs(self.initial_loss - math.log(2)) < 0.1


def predict(model: PairClassifier, a: np.ndarray, b: np.ndarray, batch: int = 4096) -> np.ndarray:
    """Probabilities that each pair comes from one isolate."""
    return predict_pairs(model, PairSet.from_arrays(a, b, np.zeros(len(a))), batch)


def _logits(model: PairClassifier, pairs: PairSet, batch: int) -> Iterator:
    model.eval()
    device = next(model.parameters()).device
    with torch.inference_mode():
        for a, b, y in pairs.batches(batch):
            ta = torch.as_tensor(a, dtype=torch.float32, device=device)
            tb = torch.as_tensor(b, dtype=torch.float32, device=device)
            yield model(ta, tb), torch.as_tensor(y, dtype=torch.float32, device=device)


def predict_pairs(model: PairClassifier, pairs: PairSet, batch: int = 4096) -> np.ndarray:
    out = [torch.sigmoid(logits).cpu().numpy() for logits, _ in _logits(model, pairs, batch)]
    return np.concatenate(out) if out else np.empty(0, dtype=np.float32)


def _scores_and_loss(model: PairClassifier, pairs: PairSet, batch: int = 4096):
    """One pass over the pairs (one read when they are streamed): probabilities, mean BCE."""
    fn = nn.BCEWithLogitsLoss(reduction="sum")
    scores, total = [], 0.0
    for logits, y in _logits(model, pairs, batch):
        scores.append(torch.sigmoid(logits).cpu().numpy())
        total += float(fn(logits, y))
    out = np.concatenate(scores) if scores else np.empty(0, dtype=np.float32)
    return out, total / max(len(pairs), 1)


def train_pair_classifier(
    train: PairSet | tuple[np.ndarray, np.ndarray, np.ndarray],
    val: PairSet | tuple[np.ndarray, np.ndarray, np.ndarray],
    config: TrainConfig,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train on pairs (or (emb_a, emb_b, labels)); early-stop and pick the threshold on val."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    train, val = as_pair_set(train), as_pair_set(val)
    dim = train.dim
    model = PairClassifier(
        dim, config.interactions, config.hidden, config.dropout, config.slot_transform
    ).to(config.device)
    # Start from logit 0 (p = 0.5): the loss before training is then ln 2 by construction
    # unless something upstream is wrong (labels, features, or the loss).
    last = model.mlp[-1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    initial_loss = _scores_and_loss(model, train)[1]

    history: list[dict[str, float]] = []
    best_score, best_state, best_epoch, waited = -np.inf, None, 0, 0
    stopped_early = False
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        order = rng.permutation(len(train))
        total = 0.0
        for s in range(0, len(order), config.batch_size):
            idx = order[s : s + config.batch_size]
            a, b = train.batch(idx)
            ta = torch.as_tensor(a, dtype=torch.float32, device=config.device)
            tb = torch.as_tensor(b, dtype=torch.float32, device=config.device)
            ty = torch.as_tensor(train.y[idx], dtype=torch.float32, device=config.device)
            opt.zero_grad()
            loss = loss_fn(model(ta, tb), ty)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        val_scores, val_loss = _scores_and_loss(model, val)
        val_metrics = binary_metrics(val.y, val_scores, 0.5)
        row = {
            "train_loss": total / len(train),
            "val_loss": val_loss,
            "val_f1": val_metrics["f1"],
            "val_auc": val_metrics["auc_roc"],
        }
        history.append(row)
        if on_epoch:
            on_epoch(epoch, row)
        score = {"loss": -row["val_loss"], "f1": row["val_f1"], "auc": row["val_auc"]}[
            config.early_stopping_metric
        ]
        if score > best_score + 1e-6:
            best_score, best_state, best_epoch, waited = (
                score,
                copy.deepcopy(model.state_dict()),
                epoch,
                0,
            )
        else:
            waited += 1
            if waited >= config.patience:
                stopped_early = True
                break
    model.load_state_dict(best_state)
    threshold = select_threshold(val.y, predict_pairs(model, val), config.threshold_metric)
    return TrainResult(model, history, best_epoch, threshold, initial_loss, stopped_early)


def report_learning(result: TrainResult, y_test: np.ndarray, test_metrics: dict) -> dict:
    """Did it learn? Initial loss ~ ln 2, and test accuracy above the majority class."""
    majority = max(float(np.mean(y_test)), 1 - float(np.mean(y_test))) if len(y_test) else 0.0
    return {
        "initial_loss": result.initial_loss,
        "initial_loss_near_ln2": result.initial_loss_near_ln2,
        "majority_accuracy": majority,
        "beats_majority": test_metrics["accuracy"] > majority,
    }
