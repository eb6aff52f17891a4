"""Stage 4: a frozen-embedding pair classifier per embedder (`pair_classifier_{name}`),
compared with logistic regression and 1-NN on the same pairs, tracked in MLflow."""

from typing import Literal

import dagster as dg
import pandas as pd
from pydantic import Field

from resources.embedders import ComputeDevice
from resources.mlflow_tracking import DagsterOrigin, MlflowTracking, RunsTable, TrackedRun
from resources.reproducibility import Reproducibility
from resources.storage import SegpairStorage
from resources.viruses import VirusRegistryResource
from segpair.embeddings.cache import EmbeddingStore
from segpair.embeddings.catalog import EmbedderSpec
from segpair.embeddings.factory import description_from_attrs
from segpair.registry import VirusSpec
from segpair.training.artifacts import (
    TrainingArtifacts,
    comparison_table,
    significant,
    tracked_metrics,
    verdict_summary,
    write_training_artifacts,
)
from segpair.training.evaluate import MODEL
from segpair.training.features import validate_interactions
from segpair.training.model_history import ModelHistory
from segpair.training.model_history import run_name as model_run_name
from segpair.training.pipeline import TrainingOutcome, run_training
from segpair.training.train import TrainConfig
from segpair_assets.assets.per_embedder import model_stage_asset
from segpair_assets.metadata import images, mlflow_links, rounded, table
from segpair_assets.partitions import virus_and_version
from segpair_assets.provenance import record_provenance

_TRAIN = TrainConfig()  # the core's defaults are the launchpad's
BASELINES = ("1nn", "knn", "logreg", "gbt")
# The experiment's runs table in the MLflow UI: which configuration, how good, against what.
CLASSIFIER_RUNS = RunsTable(
    params=("embedder", "schema_pairs", "data_version"),
    metrics=(f"{MODEL}_test_auc_roc", f"{MODEL}_auc_minus_best_baseline", f"{MODEL}_test_f1",
             *(f"vs_{b}_test_auc_roc" for b in BASELINES)),
    sort_by=f"{MODEL}_test_auc_roc",
)  # fmt: skip


class PairClassifierConfig(dg.Config):
    schema_pairs: list[list[str]] | None = Field(
        default=None,
        description='Schema pairs to train on, e.g. [["HA", "NA"]]; unset: the virus\'s '
        "training_schema_pairs from the registry (flu: HA-NA and PB2-PB1).",
    )
    model: Literal["neighbour_mlp", "interaction_mlp"] = Field(
        default=_TRAIN.model,
        description="neighbour_mlp: evidence from the nearest training pairs plus a projected "
        "view of the pair, into an MLP (beats 1-NN on real genomes, BENCHMARKS.md); "
        "interaction_mlp: concat/diff/prod of the two embeddings into an MLP.",
    )
    interactions: list[str] = Field(
        default=list(_TRAIN.interactions),
        description="interaction_mlp and the logreg baseline: any of concat ([a, b]), diff "
        "(|a-b|), prod (a*b), unit_diff (|a/|a|-b/|b||).",
    )
    slot_transform: Literal["none", "l2", "slot_norm"] = _TRAIN.slot_transform
    hidden: list[int] = list(_TRAIN.hidden)
    dropout: float = Field(default=_TRAIN.dropout, ge=0, lt=1)
    lr: float = Field(default=_TRAIN.lr, description="peak of the one-cycle cosine schedule")
    weight_decay: float = _TRAIN.weight_decay
    batch_size: int = Field(
        default=_TRAIN.batch_size, description="pairs per step; the whole set when smaller"
    )
    steps: int = Field(
        default=_TRAIN.steps, gt=0, description="optimizer-step budget, whatever the set's size"
    )
    eval_every: int = Field(default=_TRAIN.eval_every, gt=0, description="steps between evals")
    min_steps: int = Field(default=_TRAIN.min_steps, description="no early stop before this")
    patience: int = Field(
        default=_TRAIN.patience, description="evaluations without improvement before stopping"
    )
    early_stopping_metric: Literal["loss", "f1", "auc", "none"] = Field(
        default=_TRAIN.early_stopping_metric,
        description="validation metric that keeps the best weights and stops early; none: "
        "run the whole step budget and keep the final weights",
    )
    threshold_metric: Literal["f1", "f0.5", "f2", "fixed"] = _TRAIN.threshold_metric
    projection_dim: int = Field(
        default=_TRAIN.projection_dim, ge=0,
        description="neighbour_mlp: SVD dimensions per slot, fitted on training proteins",
    )  # fmt: skip
    neighbour_tau: float = Field(default=_TRAIN.neighbour_tau, gt=0)
    bank_max_pairs: int = Field(
        default=_TRAIN.bank_max_pairs, gt=0,
        description="neighbour_mlp: training pairs kept as evidence (a seeded sample beyond)",
    )  # fmt: skip
    seed: int | None = Field(
        default=None,
        description="Seed of initialisation, batches and baselines; unset: derived from the "
        "reproducibility resource's master_seed (process 'training').",
    )
    memory_budget_gb: float = Field(
        default=8.0,
        gt=0,
        description="Gather the pairs' embeddings into memory (each protein once) when they "
        "fit in this many GiB; otherwise read every batch from the HDF5 cache (slower).",
    )
    baseline_max_train_pairs: int | None = Field(
        default=50_000,
        description="The baselines (logreg, 1-NN, k-NN, GBT) fit on at most this many "
        "training pairs (a seeded random subsample; they hold them in memory); null: all.",
    )


# Fields the training pipeline takes beside TrainConfig.
PIPELINE_ONLY = {"schema_pairs", "interactions", "memory_budget_gb", "baseline_max_train_pairs"}


def train_config(config: PairClassifierConfig, device: str, seed: int) -> TrainConfig:
    return TrainConfig(
        **config.model_dump(exclude=PIPELINE_ONLY | {"seed"}),
        interactions=validate_interactions(list(config.interactions)),
        device=device,
        seed=seed,
    )


def schema_to_train(
    context: dg.AssetExecutionContext, requested, virus: VirusSpec, segment_pairs: pd.DataFrame
) -> list[list[str]] | None:
    """The requested schema pairs, else the registry's defaults that segment_pairs has."""
    if requested or not virus.training_schema_pairs:
        return requested or None
    built = set(segment_pairs["schema_pair"].astype(str))
    schema = [p for p in virus.training_schema_pairs if f"{p[0]}-{p[1]}" in built]
    skipped = [p for p in virus.training_schema_pairs if p not in schema]
    if skipped:
        context.log.warning(f"default schema pairs {skipped} not in segment_pairs")
    return schema or None


def schema_label(schema: list[list[str]] | None) -> str:
    return "+".join(f"{a}-{b}" for a, b in schema) if schema else "all"


def run_tags(context: dg.AssetExecutionContext, kind: str, embedder: str) -> dict[str, str]:
    """What an MLflow run is (logged as parameters, for the compare view, and as tags, for
    filters): its kind, virus, data version and embedder."""
    virus, version = virus_and_version(context)
    return {"kind": kind, "virus": virus, "data_version": version, "embedder": embedder}


def run_origin(context: dg.AssetExecutionContext) -> DagsterOrigin:
    """The Dagster run and asset partition an MLflow run links back to."""
    return DagsterOrigin(context.run.run_id, tuple(context.asset_key.path),
                         str(context.partition_key))  # fmt: skip


def run_name(embedder: str, what: str, context: dg.AssetExecutionContext) -> str:
    """Embedder first, so runs of different embedders differ where the UI cuts names."""
    virus, version = virus_and_version(context)
    return f"{embedder} {what} {virus}/{version}"


def eval_logger(context: dg.AssetExecutionContext, run: TrackedRun):
    def on_eval(step: int, row: dict) -> None:
        run.log_metrics({k: significant(v) for k, v in row.items() if k != "step"}, step=step)
        context.log.info(
            f"step {step}: train_loss {row['train_loss']:.4f} val_loss "
            f"{row['val_loss']:.4f} val_auc {row['val_auc']:.3f}"
        )

    return on_eval


def run_params(config, tags: dict[str, str], embeddings: EmbeddingStore, device: str):
    return {**config.model_dump(), **tags, "embedder_signature": embeddings.signature,
            "embedding_dim": embeddings.dim, "training_device": device}  # fmt: skip


def checkpoint_meta(spec, config, embeddings: EmbeddingStore, outcome, schema, run_id, part):
    """What a checkpoint records so that `segpair score` can rebuild the embedder;
    `part` is the (virus, data_version) partition."""
    virus, version = part
    return {
        "embedder": spec.name, "signature": embeddings.signature, "dim": embeddings.dim,
        "embedder_description": description_from_attrs(embeddings.attrs),
        "interactions": list(config.interactions), "slot_transform": config.slot_transform,
        "hidden": list(config.hidden), "dropout": config.dropout,
        "threshold": outcome.result.threshold, "schema_pairs": schema, "virus": virus,
        "data_version": version, "config": config.model_dump(), "mlflow_run_id": run_id,
    }  # fmt: skip


def log_outcome(context: dg.AssetExecutionContext, run: TrackedRun, outcome, device: str):
    where = "gathered in memory" if outcome.embeddings_in_memory else "streamed from HDF5"
    context.log.info(f"{outcome.sizes['n_train']} training pairs on {device}, {where}")
    run.log_params({**outcome.sizes, "embeddings_in_memory": outcome.embeddings_in_memory})
    run.log_metrics(tracked_metrics(outcome))
    run.set_tags({k: significant(v) for k, v in outcome.learning.items()})


def log_verdict(context: dg.AssetExecutionContext, outcome: TrainingOutcome, run: TrackedRun):
    """Warnings in the run's log when the model did not learn or a baseline is as good."""
    if not outcome.learning["beats_majority"] or not outcome.learning["initial_loss_near_ln2"]:
        context.log.warning(f"learning check failed: {outcome.learning}")
    if not outcome.verdict["beats_best_baseline"]:
        context.log.warning(outcome.verdict["summary"])
    context.log.info(f"MLflow run: {run.url}")


PLOTS = {
    "ROC and precision-recall": "roc_pr.png",
    "learning curve": "learning_curve.png",
    "confusion matrix": "confusion_matrix.png",
    "AUC per schema pair": "auc_by_schema.png",
}


def classifier_metadata(
    outcome: TrainingOutcome, artifacts: TrainingArtifacts, run: TrackedRun, model_uri: str,
    label: str, model: str,
) -> dict:  # fmt: skip
    """The verdict first, then links, plots, tables and figures (README: "What the
    classifier's metadata holds")."""
    r, mlp, v = outcome.result, outcome.metrics[MODEL], outcome.verdict
    headline = ("auc_roc", "auc_pr", "f1", "accuracy", "precision", "recall", "mcc")
    stratified = outcome.stratified[["stratum", "n", "auc_roc", "auc_pr", "f1", "mcc"]]
    figures = {"auc_minus_best_baseline": v["auc_difference"],
               **{f"test_{k}": mlp[k] for k in headline}, "threshold": r.threshold,
               "initial_loss": r.initial_loss}  # fmt: skip
    return {
        "summary": dg.MetadataValue.md(verdict_summary(outcome, model)),
        "beats_best_baseline": v["beats_best_baseline"],
        **mlflow_links(run),
        "plots": images({alt: run.artifact_url(name) for alt, name in PLOTS.items()}),
        "model_vs_baselines": table(comparison_table(outcome)),
        "stratified": table(stratified),
        **rounded(figures), "best_step": r.best_step, "evaluations_run": len(r.history),
        "beats_majority": bool(outcome.learning["beats_majority"]), "schema_pairs": label,
        **outcome.sizes, "embeddings_in_memory": outcome.embeddings_in_memory,
        "model_dir": dg.MetadataValue.path(str(artifacts.out_dir)),
        "checkpoint": dg.MetadataValue.path(str(artifacts.checkpoint)),
        "mlflow_model_uri": model_uri,
    }  # fmt: skip


def classifier_description(spec: EmbedderSpec) -> str:
    return (
        f"Pair classifier on frozen {spec.name} embeddings (default neighbour_mlp: evidence "
        "from the nearest training pairs plus a projected view of the pair, into an MLP), "
        "trained for a budget of optimizer steps with early stopping, threshold chosen on "
        "val. The metadata opens with the verdict (`summary`): the model against its best "
        "baseline (logistic regression, 1-NN, k-NN, gradient-boosted trees, fitted on the "
        "same pairs) with a paired-bootstrap CI, the worst stratum and the confusion "
        "counts; then links to the MLflow run and experiment, the plots, and test metrics "
        "overall, per schema pair, by metadata match and by whether the sequences were "
        "seen in training (every key: README, 'What the classifier's metadata holds'). "
        "Trains on the compute_device resource's device. Checkpoint, metrics and plots in "
        f"data/models/{{virus}}/{{data_version}}/{spec.name}/runs/{{schema}}-{{config "
        "hash}}/, one folder per training configuration (latest.json names the newest; "
        "earlier ones stay); one MLflow run per materialization, with the model logged "
        "as an MLflow (pyfunc) model and the provenance as tags."
    )


def build_training_asset(spec: EmbedderSpec) -> dg.AssetsDefinition:
    @model_stage_asset(
        spec, name=spec.classifier_asset, kinds={"pytorch", "mlflow"},
        description=classifier_description(spec),
    )  # fmt: skip
    def _train(
        context: dg.AssetExecutionContext, config: PairClassifierConfig, storage: SegpairStorage,
        viruses: VirusRegistryResource, compute_device: ComputeDevice,
        mlflow_tracking: MlflowTracking, reproducibility: Reproducibility,
        segment_pairs: pd.DataFrame, embeddings: EmbeddingStore,
    ) -> dg.MaterializeResult:  # fmt: skip
        virus, version = virus_and_version(context)
        schema = schema_to_train(context, config.schema_pairs, viruses.get(virus), segment_pairs)
        label = schema_label(schema)
        seed = reproducibility.seed("training", config.seed)
        effective = {**config.model_dump(), "seed": seed, "schema_pairs": schema}
        prov = record_provenance(context, storage, reproducibility, effective, {"training": seed})
        tags = {**run_tags(context, "pair_classifier", spec.name), "schema_pairs": label}
        device = compute_device.torch_device()
        history = ModelHistory(storage.model_dir(virus, version, spec.name))
        out_dir = history.run_dir(model_run_name(label, prov.config_hash))
        params = {**run_params(config, tags, embeddings, device), "seed": seed,
                  "config_hash": prov.config_hash}  # fmt: skip
        with embeddings, mlflow_tracking.run(
            f"segpair-{virus}", run_name(spec.name, label, context), run_origin(context),
            params, {**tags, **prov.flat()}, CLASSIFIER_RUNS,
        ) as run:  # fmt: skip
            outcome = run_training(
                segment_pairs, embeddings, schema, train_config(config, device, seed),
                eval_logger(context, run), config.memory_budget_gb,
                config.baseline_max_train_pairs,
            )  # fmt: skip
            log_outcome(context, run, outcome, device)
            meta = checkpoint_meta(
                spec, config, embeddings, outcome, schema, run.run_id, (virus, version)
            )
            artifacts = write_training_artifacts(
                out_dir, outcome, {**meta, "seed": seed}, f"{virus} {label}", spec.name
            )
            run.log_artifacts(artifacts.files, model_file=artifacts.checkpoint.name)
            model_uri = run.log_pair_model(artifacts.checkpoint, embeddings.dim)
            run.describe(verdict_summary(outcome, config.model))
        history.mark_latest(out_dir.name, schema_pairs=label, mlflow_run_id=run.run_id)
        log_verdict(context, outcome, run)
        metadata = classifier_metadata(outcome, artifacts, run, model_uri, label, config.model)
        return dg.MaterializeResult(metadata={**metadata, "model_run": out_dir.name,
                                              "earlier_runs": len(history.runs()) - 1})  # fmt: skip

    return _train


def build_training_assets(catalog) -> list[dg.AssetsDefinition]:
    return [build_training_asset(spec) for spec in catalog]
