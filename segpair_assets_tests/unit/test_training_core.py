"""The training core: features, metrics and thresholds by hand, seeded models that learn
from simulated pairs (100 pairs too), early stopping, and the baselines."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from segpair.training.baselines import (
    fit_baselines,
    logistic_regression,
    nearest_neighbour_margin,
    one_nearest_neighbour,
)
from segpair.training.data import PairSet
from segpair.training.features import feature_dim, interaction_features
from segpair.training.metrics import binary_metrics, select_threshold
from segpair.training.train import (
    TrainConfig,
    predict,
    report_learning,
    train_pair_classifier,
)


def test_interaction_features_by_hand():
    a, b = torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 2.0]])
    x = interaction_features(a, b, ["prod", "concat", "diff", "unit_diff"])
    want = [3, 4, 0, 2, 3, 2, 0, 8, 0.6, 0.2]  # concat, diff, prod, |a/|a| - b/|b||
    np.testing.assert_allclose(x[0].numpy(), want, atol=1e-6)
    assert feature_dim(2, ["concat", "diff", "prod", "unit_diff"]) == 10
    with pytest.raises(ValueError, match="subset"):
        interaction_features(a, b, ["sum"])


def test_metrics_and_threshold_by_hand():
    y = np.array([0, 0, 1, 1, 1])
    s = np.array([0.1, 0.6, 0.4, 0.8, 0.9])
    m = binary_metrics(y, s, 0.5)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (2, 1, 1, 1)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["auc_roc"] == pytest.approx(5 / 6)
    # F1 is best at 0.4 (all three positives, one false positive): 2*0.75*1/(1.75)
    assert select_threshold(y, s, "f1") == pytest.approx(0.4)
    assert select_threshold(y, s, "fixed") == 0.5
    # F0.5 favours precision: the threshold rises to 0.8 (two positives, no false positive)
    assert select_threshold(y, s, "f0.5") == pytest.approx(0.8)


def _toy_pairs(n: int, dim: int, seed: int):
    """Positives share a latent 'isolate' vector in both slots; negatives do not."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, dim))
    a = z + 0.3 * rng.normal(size=(n, dim))
    b_pos = z + 0.3 * rng.normal(size=(n, dim))
    b_neg = rng.normal(size=(n, dim))
    y = (rng.random(n) < 0.5).astype(np.float32)
    b = np.where(y[:, None] == 1, b_pos, b_neg)
    return a.astype(np.float32), b.astype(np.float32), y


@pytest.fixture(scope="module")
def toy():
    return {
        name: _toy_pairs(n, 16, s)
        for name, n, s in (("train", 800, 0), ("val", 200, 1), ("test", 200, 2))
    }


def _with_isolates(a, b, y, offset=0):
    """A PairSet whose pairs carry isolate codes: a positive's two proteins share one
    isolate, a negative's come from two."""
    n = len(y)
    iso_a = np.arange(n) + offset
    iso_b = np.where(y == 1, iso_a, iso_a + n)
    pairs = PairSet.from_arrays(a, b, y)
    pairs.iso_a, pairs.iso_b = iso_a.astype(np.int64), iso_b.astype(np.int64)
    return pairs


@pytest.mark.parametrize("model", ["interaction_mlp", "neighbour_mlp"])
def test_model_learns_deterministically_and_passes_the_sanity_check(toy, model):
    config = TrainConfig(model=model, hidden=[32], steps=300, patience=4, batch_size=64)
    train = _with_isolates(*toy["train"])
    r1 = train_pair_classifier(train, toy["val"], config)
    r2 = train_pair_classifier(train, toy["val"], config)
    assert r1.history == r2.history and r1.threshold == r2.threshold  # seeded, CPU
    assert abs(r1.initial_loss - math.log(2)) < 1e-6 and r1.initial_loss_near_ln2
    scores = predict(r1.model, toy["test"][0], toy["test"][1])
    m = binary_metrics(toy["test"][2], scores, r1.threshold)
    assert m["auc_roc"] > 0.95
    check = report_learning(r1, toy["test"][2], m)
    share = float(toy["test"][2].mean())
    assert check["majority_accuracy"] == pytest.approx(max(share, 1 - share))
    assert check["beats_majority"] and m["accuracy"] > check["majority_accuracy"] + 0.2
    assert r1.history[-1]["train_loss"] < r1.history[0]["train_loss"]


@pytest.mark.parametrize("model", ["interaction_mlp", "neighbour_mlp"])
def test_a_100_pair_set_leaves_ln2_and_beats_chance(model):
    """With epochs of a fixed batch, 100 pairs got ~13 optimizer steps and stayed at ln 2;
    a step budget trains them."""
    train, val, test = (_toy_pairs(n, 16, s) for n, s in ((100, 10), (40, 11), (200, 12)))
    config = TrainConfig(model=model)
    r = train_pair_classifier(_with_isolates(*train), val, config)
    assert r.initial_loss_near_ln2
    assert min(h["train_loss"] for h in r.history) < math.log(2) - 0.2
    auc = binary_metrics(test[2], predict(r.model, test[0], test[1]), r.threshold)["auc_roc"]
    assert auc > 0.8


def test_neighbour_model_needs_the_isolates(toy):
    with pytest.raises(ValueError, match="isolate codes"):
        train_pair_classifier(toy["train"], toy["val"], TrainConfig(model="neighbour_mlp"))


@pytest.mark.parametrize("slot_transform", ["l2", "slot_norm"])
def test_slot_transforms_train(toy, slot_transform):
    config = TrainConfig(
        model="interaction_mlp", hidden=[16], steps=75, slot_transform=slot_transform
    )
    r = train_pair_classifier(toy["train"], toy["val"], config)
    assert len(r.history) == 3


def test_early_stopping_stops_and_restores_the_best_evaluation():
    rng = np.random.default_rng(0)
    noise = lambda n: (  # noqa: E731 - labels unrelated to the inputs: nothing to learn
        rng.normal(size=(n, 8)).astype(np.float32),
        rng.normal(size=(n, 8)).astype(np.float32),
        (rng.random(n) < 0.5).astype(np.float32),
    )
    config = TrainConfig(model="interaction_mlp", hidden=[64], steps=1500, eval_every=10,
                         min_steps=0, patience=3, early_stopping_metric="loss")  # fmt: skip
    r = train_pair_classifier(noise(400), noise(200), config)
    assert r.stopped_early and len(r.history) < 150
    assert r.history[-1]["step"] - r.best_step == 3 * config.eval_every


def test_early_stopping_none_runs_the_whole_budget_and_keeps_the_last_weights():
    """Seed 001's `early_stopping_metric: null`: the same noise that stops the run above
    runs all its steps here, and the model scores with its final weights."""
    rng = np.random.default_rng(0)
    noise = lambda n: (  # noqa: E731
        rng.normal(size=(n, 8)).astype(np.float32),
        rng.normal(size=(n, 8)).astype(np.float32),
        (rng.random(n) < 0.5).astype(np.float32),
    )
    train, val = noise(400), noise(200)
    config = TrainConfig(model="interaction_mlp", hidden=[64], steps=300, eval_every=10,
                         min_steps=0, patience=3, early_stopping_metric="none")  # fmt: skip
    r = train_pair_classifier(train, val, config)
    assert not r.stopped_early
    assert len(r.history) == 30 and r.best_step == config.steps


def test_baselines(toy):
    lr_scores, lr_t = logistic_regression(toy["train"], toy["val"], toy["test"], ["diff"], "f1")
    assert binary_metrics(toy["test"][2], lr_scores, lr_t)["auc_roc"] > 0.9
    nn_scores, nn_t = one_nearest_neighbour(toy["train"], toy["val"], toy["test"], "f1")
    assert ((nn_scores >= 0) & (nn_scores <= 1)).all()
    fitted = fit_baselines(toy["train"], toy["val"], ["diff"], "f1")
    assert set(fitted) == {"logreg", "1nn", "knn", "gbt"}
    test = PairSet.from_arrays(*toy["test"])
    for name in ("knn", "gbt"):
        assert binary_metrics(test.y, fitted[name].score(test), 0.5)["auc_roc"] > 0.85, name
    # a query equal to a training positive has margin > 0, to a negative < 0
    tx = np.array([[1.0, 0.0], [0.0, 1.0]])
    ty = np.array([1, 0])
    assert nearest_neighbour_margin(
        tx, ty, np.array([[1.0, 0.1], [0.1, 1.0]])
    ).tolist() == pytest.approx(
        [1 / np.sqrt(1.01) - 0.1 / np.sqrt(1.01), 0.1 / np.sqrt(1.01) - 1 / np.sqrt(1.01)]
    )
