"""Training a pair classifier on frozen embeddings: seeded, step-budgeted, thresholded.

Training is budgeted in optimizer steps, not epochs: a 100-pair set gets as many updates
as a 100k-pair one (the batch is the whole set when it is smaller than `batch_size`),
under AdamW with a one-cycle cosine learning rate. The model is evaluated on the
validation pairs every `eval_every` steps; the best evaluation's weights are kept, and
after `min_steps` training stops once `patience` evaluations bring no improvement. With
`early_stopping_metric="none"` (seed 001's `null`) the whole budget runs and the final
weights are kept; validation still picks the threshold and draws the learning curve.

Two models (`TrainConfig.model`):
- `neighbour_mlp` (default): neighbour evidence from the training pairs plus a
  projected view of the pair, into a small MLP (`segpair.training.neighbours`);
- `interaction_mlp`: interaction features of the two embeddings into an MLP.

Deterministic on CPU for a given seed. The learning sanity check: the loss before any
step must be near ln 2 (the last layer starts at zero, so every logit is 0), and
`report_learning` compares the trained model with the majority class.
"""

from __future__ import annotations

import contextlib
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
from segpair.training.neighbours import NeighbourEvidence, NeighbourPairClassifier, SlotProjection

StopMetric = Literal["loss", "f1", "auc", "none"]
ModelKind = Literal["neighbour_mlp", "interaction_mlp"]
EvalFn = Callable[[int, dict[str, float]], None]


@dataclass
class TrainConfig:
    model: ModelKind = "neighbour_mlp"
    interactions: list[Interaction] = field(default_factory=lambda: ["concat", "diff", "prod"])
    slot_transform: SlotTransform = "none"
    hidden: list[int] = field(default_factory=lambda: [64, 32])
    dropout: float = 0.1
    lr: float = 3e-3
    weight_decay: float = 1e-2
    batch_size: int = 128
    steps: int = 600
    eval_every: int = 25
    min_steps: int = 300
    patience: int = 10  # evaluations without improvement, counted after min_steps
    early_stopping_metric: StopMetric = "auc"
    threshold_metric: ThresholdMetric = "f1"
    projection_dim: int = 16  # neighbour_mlp: SVD dims of each slot (0: evidence only)
    neighbour_tau: float = 0.01  # temperature of the soft maximum over the bank
    bank_max_pairs: int = 20_000  # neighbour_mlp: training pairs kept as evidence (seeded)
    seed: int = 42
    device: str = "cpu"


@dataclass
class TrainResult:
    model: nn.Module
    history: list[dict[str, float]]  # one row per evaluation, with its step
    best_step: int
    threshold: float
    initial_loss: float
    stopped_early: bool

    @property
    def initial_loss_near_ln2(self) -> bool:
        return abs(self.initial_loss - math.log(2)) < 0.1


def predict(model: nn.Module, a: np.ndarray, b: np.ndarray, batch: int = 4096) -> np.ndarray:
    """Probabilities that each pair comes from one isolate."""
    return predict_pairs(model, PairSet.from_arrays(a, b, np.zeros(len(a))), batch)


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _logits(model: nn.Module, pairs: PairSet, batch: int) -> Iterator:
    model.eval()
    device = _device_of(model)
    with torch.inference_mode():
        for a, b, y in pairs.batches(batch):
            ta = torch.as_tensor(a, dtype=torch.float32, device=device)
            tb = torch.as_tensor(b, dtype=torch.float32, device=device)
            yield model(ta, tb), torch.as_tensor(y, dtype=torch.float32, device=device)


def predict_pairs(model: nn.Module, pairs: PairSet, batch: int = 4096) -> np.ndarray:
    out = [torch.sigmoid(logits).cpu().numpy() for logits, _ in _logits(model, pairs, batch)]
    return np.concatenate(out) if out else np.empty(0, dtype=np.float32)


def _scores_and_loss(model: nn.Module, pairs: PairSet, batch: int = 4096):
    """One pass over the pairs (one read when they are streamed): probabilities, mean BCE."""
    fn = nn.BCEWithLogitsLoss(reduction="sum")
    scores, total = [], 0.0
    for logits, y in _logits(model, pairs, batch):
        scores.append(torch.sigmoid(logits).cpu().numpy())
        total += float(fn(logits, y))
    out = np.concatenate(scores) if scores else np.empty(0, dtype=np.float32)
    return out, total / max(len(pairs), 1)


@dataclass
class _Progress:
    """Best evaluation so far and the stopping rule."""

    metric: StopMetric
    min_steps: int
    patience: int
    best_score: float = -np.inf
    best_state: dict | None = None
    best_step: int = 0
    waited: int = 0

    def update(self, step: int, row: dict, model: nn.Module) -> bool:
        """Record an evaluation; True when training should stop."""
        if self.metric == "none":  # no selection on validation: the last weights stand
            self.best_step, self.best_state = step, copy.deepcopy(model.state_dict())
            return False
        score = {"loss": -row["val_loss"], "f1": row["val_f1"], "auc": row["val_auc"]}
        value = score[self.metric]
        value = -np.inf if math.isnan(value) else value
        if value > self.best_score + 1e-6 or self.best_state is None:
            self.best_score, self.best_step, self.waited = value, step, 0
            self.best_state = copy.deepcopy(model.state_dict())
            return False
        self.waited += 1
        return step >= self.min_steps and self.waited >= self.patience


def fit_steps(model: nn.Module, train_step: Callable[[np.ndarray], torch.Tensor], n_train: int,
              evaluate: Callable[[], dict[str, float]], config: TrainConfig,
              on_eval: EvalFn | None = None) -> tuple[list[dict], int, bool]:  # fmt: skip
    """Run the step budget: `train_step(batch indices)` returns the batch loss; `evaluate`
    returns the validation row. Restores the best evaluation's weights."""
    rng = np.random.default_rng(config.seed)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config.lr, total_steps=config.steps, pct_start=0.1, anneal_strategy="cos"
    )
    progress = _Progress(config.early_stopping_metric, config.min_steps, config.patience)
    batch, order, pos, losses, history = min(config.batch_size, n_train), None, n_train, [], []
    stopped = False
    for step in range(1, config.steps + 1):
        if pos + batch > n_train:
            order, pos = rng.permutation(n_train), 0
        model.train()
        opt.zero_grad()
        loss = train_step(order[pos : pos + batch])
        loss.backward()
        opt.step()
        sched.step()
        pos += batch
        losses.append(loss.item())
        if step % config.eval_every == 0 or step == config.steps:
            row = {"step": step, "train_loss": float(np.mean(losses)), **evaluate()}
            losses = []
            history.append(row)
            if on_eval:
                on_eval(step, row)
            if progress.update(step, row, model):
                stopped = True
                break
    model.load_state_dict(progress.best_state)
    return history, progress.best_step, stopped


def _val_row(model: nn.Module, val: PairSet) -> dict[str, float]:
    scores, loss = _scores_and_loss(model, val)
    m = binary_metrics(val.y, scores, 0.5)
    return {"val_loss": loss, "val_f1": m["f1"], "val_auc": m["auc_roc"]}


@contextlib.contextmanager
def torch_threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _zero_last_layer(mlp: nn.Sequential) -> None:
    # Start from logit 0 (p = 0.5): the loss before training is then ln 2 by construction
    # unless something upstream is wrong (labels, features, or the loss).
    nn.init.zeros_(mlp[-1].weight)
    nn.init.zeros_(mlp[-1].bias)


def _tensors(config: TrainConfig, *arrays):
    return [torch.as_tensor(x, dtype=torch.float32, device=config.device) for x in arrays]


def _train_interaction_mlp(train: PairSet, val: PairSet, config: TrainConfig, on_eval):
    model = PairClassifier(
        train.dim, config.interactions, config.hidden, config.dropout, config.slot_transform
    ).to(config.device)
    _zero_last_layer(model.mlp)
    loss_fn = nn.BCEWithLogitsLoss()
    initial_loss = _scores_and_loss(model, train)[1]

    def train_step(idx: np.ndarray) -> torch.Tensor:
        ta, tb, ty = _tensors(config, *train.batch(idx), train.y[idx])
        return loss_fn(model(ta, tb), ty)

    history, best, stopped = fit_steps(
        model, train_step, len(train), lambda: _val_row(model, val), config, on_eval
    )
    return model, history, best, stopped, initial_loss


def neighbour_bank(train: PairSet, config: TrainConfig) -> tuple[NeighbourEvidence, np.ndarray]:
    """The evidence bank (at most `bank_max_pairs` training pairs, seeded) and the
    training proteins it holds, for the projection."""
    if train.iso_a is None or train.iso_b is None:
        raise ValueError("neighbour_mlp needs the isolate codes of the training pairs")
    keep = np.arange(len(train))
    if len(train) > config.bank_max_pairs:
        keep = np.sort(np.random.default_rng(config.seed).choice(
            len(train), config.bank_max_pairs, replace=False))  # fmt: skip
    part = train.subset(keep)
    a, b, y = part.arrays()
    bank = NeighbourEvidence.from_pairs(a, b, y, part.iso_a, part.iso_b, config.neighbour_tau)
    return bank, np.concatenate([a, b])


def _raw_features(model: NeighbourPairClassifier, pairs: PairSet, config, with_isolates: bool):
    """Unstandardised MLP inputs of every pair, in blocks (pairs may be streamed)."""
    out = []
    with torch.inference_mode():
        for s in range(0, len(pairs), 1024):
            idx = np.arange(s, min(s + 1024, len(pairs)))
            ta, tb = _tensors(config, *pairs.batch(idx))
            iso = [torch.as_tensor(x[idx], device=config.device) for x in
                   (pairs.iso_a, pairs.iso_b)] if with_isolates else [None, None]  # fmt: skip
            out.append(model.features(ta, tb, *iso))
    return torch.cat(out) if out else torch.empty(0, model.mean.shape[0], device=config.device)


def _train_neighbour_mlp(train: PairSet, val: PairSet, config: TrainConfig, on_eval):
    bank, proteins = neighbour_bank(train, config)
    projection = (
        SlotProjection.fit(proteins, config.projection_dim, config.seed)
        if config.projection_dim else None
    )  # fmt: skip
    model = NeighbourPairClassifier(bank, projection, config.hidden, config.dropout)
    model = model.to(config.device)
    _zero_last_layer(model.mlp)
    model.standardise(_raw_features(model, train, config, with_isolates=True))
    x = _raw_features(model, train, config, with_isolates=True)
    xv = _raw_features(model, val, config, with_isolates=False)
    (ty,) = _tensors(config, train.y)
    loss_fn = nn.BCEWithLogitsLoss()
    with torch.inference_mode():
        initial_loss = float(loss_fn(model.mlp(x).squeeze(-1), ty))

    def train_step(idx: np.ndarray) -> torch.Tensor:
        i = torch.as_tensor(idx, device=config.device)
        return loss_fn(model.mlp(x[i]).squeeze(-1), ty[i])

    def evaluate() -> dict[str, float]:
        model.eval()
        with torch.inference_mode():
            logits = model.mlp(xv).squeeze(-1)
            (yv,) = _tensors(config, val.y)
            loss = float(loss_fn(logits, yv))
        m = binary_metrics(val.y, torch.sigmoid(logits).cpu().numpy(), 0.5)
        return {"val_loss": loss, "val_f1": m["f1"], "val_auc": m["auc_roc"]}

    with torch_threads(1):  # a small MLP on ~80 inputs: more threads only add waiting
        history, best, stopped = fit_steps(model, train_step, len(train), evaluate, config,
                                           on_eval)  # fmt: skip
    return model, history, best, stopped, initial_loss


def train_pair_classifier(
    train: PairSet | tuple[np.ndarray, np.ndarray, np.ndarray],
    val: PairSet | tuple[np.ndarray, np.ndarray, np.ndarray],
    config: TrainConfig,
    on_eval: EvalFn | None = None,
) -> TrainResult:
    """Train on pairs (or (emb_a, emb_b, labels)); keep the best evaluation on val and
    pick the threshold there. `neighbour_mlp` needs the training pairs' isolate codes."""
    torch.manual_seed(config.seed)
    train, val = as_pair_set(train), as_pair_set(val)
    trainer = _train_neighbour_mlp if config.model == "neighbour_mlp" else _train_interaction_mlp
    model, history, best_step, stopped, initial_loss = trainer(train, val, config, on_eval)
    threshold = select_threshold(val.y, predict_pairs(model, val), config.threshold_metric)
    return TrainResult(model, history, best_step, threshold, initial_loss, stopped)


def report_learning(result: TrainResult, y_test: np.ndarray, test_metrics: dict) -> dict:
    """Did it learn? Initial loss ~ ln 2, and test accuracy above the majority class."""
    majority = max(float(np.mean(y_test)), 1 - float(np.mean(y_test))) if len(y_test) else 0.0
    return {
        "initial_loss": result.initial_loss,
        "initial_loss_near_ln2": result.initial_loss_near_ln2,
        "majority_accuracy": majority,
        "beats_majority": test_metrics["accuracy"] > majority,
    }
