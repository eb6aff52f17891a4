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
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from segpair.atomic import atomic_path, write_text_atomic
from segpair.locks import exclusive, lock_file_for
from segpair.training.checkpoint import save_checkpoint
from segpair.training.evaluate import HARD_STRATUM, MODEL, auc_by_schema
from segpair.training.pipeline import TrainingOutcome
from segpair.training.plots import auc_heatmap_png, confusion_png, learning_curve_png, roc_pr_png

CHECKPOINT = "model.pt"
COMPARISON_COLUMNS = ["scorer", "auc_roc", "auc_pr", "f1", "accuracy", "mcc", "threshold"]
BASELINE_METRICS = ("auc_roc", "auc_pr", "f1", "accuracy", "mcc")  # tracked per baseline


@dataclass
class TrainingArtifacts:
    out_dir: Path
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
    return TrainingArtifacts(out_dir, [out_dir / n for n in names])


def significant(value, digits: int = 4):
    """A float to `digits` significant digits (what people read); ints, NaN, None as given."""
    if not isinstance(value, float) or not math.isfinite(value) or value == 0:
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def tracked_metrics(outcome: TrainingOutcome) -> dict[str, float]:
    """The run's final figures for a tracker, named so that the model's sort first:
    `mlp_test_*` (every test metric and confusion count of the model), `mlp_threshold`,
    `mlp_best_step`, `mlp_initial_loss`, `mlp_auc_minus_best_baseline` (+ `_ci_low`,
    `_ci_high`), then `vs_{baseline}_test_*` (each baseline's AUC-ROC, AUC-PR, F1,
    accuracy, MCC on the same pairs). Rounded to 4 significant digits."""
    r, v = outcome.result, outcome.verdict
    model = {f"{MODEL}_test_{k}": x for k, x in outcome.metrics[MODEL].items() if k != "threshold"}
    baselines = {
        f"vs_{scorer}_test_{k}": values[k] for scorer, values in outcome.metrics.items()
        if scorer != MODEL for k in BASELINE_METRICS
    }  # fmt: skip
    figures = {**model, f"{MODEL}_threshold": r.threshold, f"{MODEL}_best_step": r.best_step,
               f"{MODEL}_initial_loss": r.initial_loss,
               f"{MODEL}_auc_minus_best_baseline": v["auc_difference"],
               f"{MODEL}_auc_minus_best_baseline_ci_low": v["auc_difference_ci_low"],
               f"{MODEL}_auc_minus_best_baseline_ci_high": v["auc_difference_ci_high"],
               **baselines}  # fmt: skip
    return {k: significant(x) for k, x in figures.items()}


def _stratum(outcome: TrainingOutcome, name: str | None):
    rows = outcome.stratified[outcome.stratified["stratum"] == name]
    return rows.iloc[0] if len(rows) else None


def verdict_summary(outcome: TrainingOutcome, model_label: str) -> str:
    """The verdict for people, first (Markdown, a few hundred characters, lines short
    enough for a metadata column): the sentence, then a table of the model's and the best
    baseline's AUC, the difference with its paired-bootstrap CI, the worst stratum, the
    same-subtype negatives rejected and the confusion counts at the chosen threshold."""
    v, m = outcome.verdict, outcome.metrics[MODEL]
    best, low, high = v["best_baseline"], v["auc_difference_ci_low"], v["auc_difference_ci_high"]
    if low > 0:
        sentence = f"The model beats its best baseline ({best})."
    elif high < 0:
        sentence = f"A baseline beats the model: {best} has the higher AUC."
    else:
        sentence = f"The model does NOT beat its best baseline ({best})."
    rows = [
        (f"model ({model_label}) AUC-ROC", f"{v['model_auc']:.3f}"),
        (f"best baseline ({best}) AUC-ROC", f"{v['best_baseline_auc']:.3f}"),
        ("model minus baseline [95% CI]", f"{v['auc_difference']:+.3f} [{low:+.3f}, {high:+.3f}]"),
    ]
    worst = _stratum(outcome, v["worst_stratum"])
    if worst is not None:
        rows.append((f"worst stratum: {worst['stratum']} (n={worst['n']})",
                     f"{worst['auc_roc']:.3f}"))  # fmt: skip
    hard = _stratum(outcome, HARD_STRATUM)
    if hard is not None:
        rejected = f"{hard['tn']} of {hard['tn'] + hard['fp']}"
        rows.append(("same-subtype negatives rejected", rejected))
    rows.append((f"at threshold {m['threshold']:.3g}",
                 f"{m['tp']} TP, {m['fp']} FP, {m['tn']} TN, {m['fn']} FN"))  # fmt: skip
    table = ["| test pairs | |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)]
    return "\n".join([f"**{sentence}**", "", *table])
