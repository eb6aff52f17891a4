"""What a training run leaves on disk, and the figures a tracker records of it.

Contract of `write_training_artifacts(out_dir, ...)`, every file written atomically:

| file | content |
| --- | --- |
| model.pt | checkpoint: state_dict + meta (embedder, signature, threshold, config, ...) |
| metrics.json | test metrics per scorer, the verdict, learning check, evaluation history, sizes |
| stratified_metrics.csv | the model's test metrics per stratum (schema pair, negative type, ...) |
| roc_pr.png, confusion_matrix.png, learning_curve.png | plots |
| auc_by_schema.png | heatmap: test AUC of the model and each baseline per schema pair |
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from segpair.atomic import atomic_path, write_text_atomic
from segpair.locks import exclusive, lock_file_for
from segpair.training.checkpoint import save_checkpoint
from segpair.training.evaluate import auc_by_schema
from segpair.training.pipeline import TrainingOutcome
from segpair.training.plots import auc_heatmap_png, confusion_png, learning_curve_png, roc_pr_png

CHECKPOINT = "model.pt"
COMPARISON_COLUMNS = ["scorer", "auc_roc", "auc_pr", "f1", "accuracy", "mcc", "threshold"]
VERDICT_KEYS = [
    "model_auc", "best_baseline", "best_baseline_auc", "auc_difference",
    "auc_difference_ci_low", "auc_difference_ci_high", "worst_stratum", "worst_stratum_auc",
    "same_subtype_negatives_auc", "tp", "fp", "tn", "fn",
]  # fmt: skip


@dataclass
class TrainingArtifacts:
    out_dir: Path
    pngs: dict[str, bytes]  # file name -> PNG
    files: list[Path]  # everything written, the checkpoint first

    @property
    def checkpoint(self) -> Path:
        return self.out_dir / CHECKPOINT


def training_plots(outcome: TrainingOutcome, title: str, model_label: str) -> dict[str, bytes]:
    m = outcome.metrics["mlp"]
    y = outcome.test_pairs["label"].to_numpy()
    return {
        "roc_pr.png": roc_pr_png(y, outcome.scores, title),
        "confusion_matrix.png": confusion_png(m["tp"], m["fp"], m["tn"], m["fn"], "MLP, test"),
        "learning_curve.png": learning_curve_png(outcome.result.history, model_label),
        "auc_by_schema.png": auc_heatmap_png(
            auc_by_schema(outcome.test_pairs, outcome.scores), f"{title}: test AUC"
        ),
    }


def comparison_table(outcome: TrainingOutcome) -> pd.DataFrame:
    """One row per scorer (the model and each baseline) on the same test pairs."""
    return pd.DataFrame(outcome.metrics).T.reset_index(names="scorer")[COMPARISON_COLUMNS]


def write_training_artifacts(
    out_dir: Path, outcome: TrainingOutcome, meta: dict, title: str, model_label: str
) -> TrainingArtifacts:
    """Checkpoint (with `meta`), metrics, stratified metrics and plots into `out_dir`, as
    one set: under the folder's lock, so two runs of one partition never mix their files."""
    pngs = training_plots(outcome, title, model_label)
    with exclusive(lock_file_for(out_dir), f"writing the training artifacts in {out_dir}"):
        return _write_artifacts(out_dir, outcome, meta, pngs)


def _write_artifacts(
    out_dir: Path, outcome: TrainingOutcome, meta: dict, pngs: dict[str, bytes]
) -> TrainingArtifacts:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, png in pngs.items():
        with atomic_path(out_dir / name) as tmp:
            tmp.write_bytes(png)
    summary = {"test": outcome.metrics, "verdict": outcome.verdict,
               "learning": outcome.learning, "history": outcome.result.history,
               "sizes": outcome.sizes}  # fmt: skip
    write_text_atomic(out_dir / "metrics.json", json.dumps(summary, indent=1, default=float))
    with atomic_path(out_dir / "stratified_metrics.csv") as tmp:
        outcome.stratified.to_csv(tmp, index=False)
    save_checkpoint(out_dir / CHECKPOINT, outcome.result.model, meta)
    names = [CHECKPOINT, "metrics.json", "stratified_metrics.csv", *pngs]
    return TrainingArtifacts(out_dir, pngs, [out_dir / n for n in names])


def tracked_metrics(outcome: TrainingOutcome) -> dict[str, float]:
    """The run's final figures for a tracker: test metrics per scorer, threshold, best step,
    and the model minus its best baseline."""
    r = outcome.result
    flat = {
        f"test_{scorer}_{k}": v for scorer, values in outcome.metrics.items()
        for k, v in values.items()
    }  # fmt: skip
    v = outcome.verdict
    return {**flat, "threshold": r.threshold, "best_step": r.best_step,
            "initial_loss": r.initial_loss, "auc_minus_best_baseline": v["auc_difference"],
            "auc_minus_best_baseline_ci_low": v["auc_difference_ci_low"],
            "auc_minus_best_baseline_ci_high": v["auc_difference_ci_high"]}  # fmt: skip


def verdict_table(outcome: TrainingOutcome) -> pd.DataFrame:
    """The verdict as rows (what, value), figures rounded, for people to read first."""
    v = outcome.verdict
    rows = [(k, round(v[k], 3) if isinstance(v[k], float) else v[k]) for k in VERDICT_KEYS]
    return pd.DataFrame(rows, columns=["what", "value"])
