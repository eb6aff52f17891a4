"""What a training run reports first: the verdict sentence says plainly which of model and
best baseline wins, and the tracked metrics name the model's figures first, rounded. Built
from scores of known quality through the real evaluation code (no training)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segpair.training.artifacts import tracked_metrics, verdict_summary
from segpair.training.evaluate import stratified_metrics, verdict
from segpair.training.metrics import binary_metrics
from segpair.training.pipeline import TrainingOutcome
from segpair.training.train import TrainResult


def _outcome(model_signal: float, baseline_signal: float) -> TrainingOutcome:
    """Test pairs whose model and 1-NN scores separate the labels this well."""
    rng = np.random.default_rng(0)
    y = np.tile([1, 0], 600)
    test = pd.DataFrame({"label": y, "schema_pair": "HA-NA",
                         "same_subtype": rng.random(len(y)) < 0.5})  # fmt: skip
    scores = {name: 1 / (1 + np.exp(-(signal * (2 * y - 1) + rng.normal(0, 1, len(y)))))
              for name, signal in (("mlp", model_signal), ("1nn", baseline_signal))}  # fmt: skip
    thresholds = {"mlp": 0.5, "1nn": 0.5}
    result = TrainResult(model=None, history=[], best_step=7, threshold=0.5,
                         initial_loss=0.6931471805599453, stopped_early=False)  # fmt: skip
    return TrainingOutcome(
        result=result, test_pairs=test, scores=scores, thresholds=thresholds,
        metrics={k: binary_metrics(y, s, 0.5) for k, s in scores.items()},
        stratified=stratified_metrics(test, scores["mlp"], 0.5), learning={}, sizes={},
        embeddings_in_memory=True, verdict=verdict(test, scores, thresholds), baselines={},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("model", "baseline", "opening"),
    [
        (1.5, 0.5, "**The model beats its best baseline (1nn).**"),
        (0.5, 1.5, "**A baseline beats the model: 1nn has the higher AUC.**"),
        (1.0, 1.0, "**The model does NOT beat its best baseline (1nn).**"),
    ],
)
def test_the_summary_says_plainly_who_wins(model, baseline, opening):
    outcome = _outcome(model, baseline)
    summary = verdict_summary(outcome, "neighbour_mlp")
    assert summary.startswith(opening + "\n")
    assert len(summary) < 1000  # shown inline by the Dagster UI
    v, m = outcome.verdict, outcome.metrics["mlp"]
    ci = f"{v['auc_difference']:+.3f} [{v['auc_difference_ci_low']:+.3f}, "
    assert f"| model minus baseline [95% CI] | {ci}" in summary
    counts = f"{m['tp']} TP, {m['fp']} FP, {m['tn']} TN, {m['fn']} FN"
    assert f"| at threshold 0.5 | {counts} |" in summary
    hard = outcome.stratified.set_index("stratum").loc["negatives same_subtype=True"]
    tn, fp = int(hard["tn"]), int(hard["fp"])
    assert f"| same-subtype negatives rejected | {tn} of {tn + fp} |" in summary
    assert max(len(line) for line in summary.splitlines()) < 80  # fits a metadata column


def test_tracked_metrics_sort_the_model_first_and_are_rounded():
    metrics = tracked_metrics(_outcome(1.5, 0.5))
    names = sorted(metrics)
    assert names[0].startswith("mlp_") and names[-1].startswith("vs_1nn_test_")
    assert {"mlp_test_auc_roc", "mlp_test_tp", "mlp_threshold", "mlp_auc_minus_best_baseline",
            "vs_1nn_test_auc_roc", "vs_1nn_test_mcc"} <= set(names)  # fmt: skip
    assert metrics["mlp_initial_loss"] == 0.6931 and metrics["mlp_best_step"] == 7
    assert all(len(f"{v:.15g}".lstrip("-0.").replace(".", "")) <= 4 for v in metrics.values())
