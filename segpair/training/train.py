"""Training a pair classifier on frozen embeddings: seeded, early-stopped, thresholded.

Deterministic on CPU for a given seed: parameters, dropout and the epoch order all
come from one seeded generator. The learning sanity check of seed 001 is computed
here: the loss before any step must be near ln 2 (an untrained logit of ~0), and
`report_learning` compares the trained model with the majority-class baseline.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import nn

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
    model.eval()
    device = next(model.parameters()).device
    out = []
    with torch.inference_mode():
        for s in range(0, len(a), batch):
            ta = torch.as_tensor(a[s : s + batch], dtype=torch.float32, device=device)
            tb = torch.as_tensor(b[s : s + batch], dtype=torch.float32, device=device)
            out.append(torch.sigmoid(model(ta, tb)).cpu().numpy())
    return np.concatenate(out) if out else np.empty(0, dtype=np.float32)


def _loss(model, a, b, y, batch=4096) -> float:
    model.eval()
    device = next(model.parameters()).device
    total, n = 0.0, 0
    fn = nn.BCEWithLogitsLoss(reduction="sum")
    with torch.inference_mode():
        for s in range(0, len(a), batch):
            ta = torch.as_tensor(a[s : s + batch], dtype=torch.float32, device=device)
            tb = torch.as_tensor(b[s : s + batch], dtype=torch.float32, device=device)
            ty = torch.as_tensor(y[s : s + batch], dtype=torch.float32, device=device)
            total += float(fn(model(ta, tb), ty))
            n += len(ty)
    return total / max(n, 1)


def train_pair_classifier(
    train: tuple[np.ndarray, np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray, np.ndarray],
    config: TrainConfig,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train on (emb_a, emb_b, labels); early-stop and pick the threshold on val."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    a_tr, b_tr, y_tr = train
    a_va, b_va, y_va = val
    dim = a_tr.shape[1]
    model = PairClassifier(
        dim, config.interactions, config.hidden, config.dropout, config.slot_transform
    ).to(config.device)
    # Start from logit 0 (p = 0.5): the loss before training is then ln 2 by construction
    # unless something upstream is wrong (seed 001's initialisation check).
    last = model.mlp[-1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    initial_loss = _loss(model, a_tr, b_tr, y_tr)

    history: list[dict[str, float]] = []
    best_score, best_state, best_epoch, waited = -np.inf, None, 0, 0
    stopped_early = False
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        order = rng.permutation(len(y_tr))
        total = 0.0
        for s in range(0, len(order), config.batch_size):
            idx = order[s : s + config.batch_size]
            ta = torch.as_tensor(a_tr[idx], dtype=torch.float32, device=config.device)
            tb = torch.as_tensor(b_tr[idx], dtype=torch.float32, device=config.device)
            ty = torch.as_tensor(y_tr[idx], dtype=torch.float32, device=config.device)
            opt.zero_grad()
            loss = loss_fn(model(ta, tb), ty)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        val_scores = predict(model, a_va, b_va)
        val_metrics = binary_metrics(y_va, val_scores, 0.5)
        row = {
            "train_loss": total / len(y_tr),
            "val_loss": _loss(model, a_va, b_va, y_va),
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
    threshold = select_threshold(y_va, predict(model, a_va, b_va), config.threshold_metric)
    return TrainResult(model, history, best_epoch, threshold, initial_loss, stopped_early)


def report_learning(result: TrainResult, y_test: np.ndarray, test_metrics: dict) -> dict:
    """Seed 001's learning verification: initial loss ~ ln 2, and better than the majority."""
    majority = max(float(np.mean(y_test)), 1 - float(np.mean(y_test))) if len(y_test) else 0.0
    return {
        "initial_loss": result.initial_loss,
        "initial_loss_near_ln2": result.initial_loss_near_ln2,
        "majority_accuracy": majority,
        "beats_majority": test_metrics["accuracy"] > majority,
    }
