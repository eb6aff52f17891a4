"""Stage 4: a frozen-embedding pair classifier per embedder (`pair_classifier_{name}`),
compared with logistic regression and 1-NN on the same pairs, tracked in MLflow."""

import json
from typing import Literal

import dagster as dg
import pandas as pd
from pydantic import Field

from resources.mlflow_tracking import MlflowTracking
from resources.storage import SegpairStorage
from segpair.atomic import atomic_path, write_text_atomic
from segpair.embeddings.cache import EmbeddingStore
from segpair.embeddings.factory import description_from_attrs
from segpair.registry import load_registry
from segpair.report import markdown_table, png_markdown
from segpair.training.checkpoint import save_checkpoint
from segpair.training.features import validate_interactions
from segpair.training.pipeline import run_training
from segpair.training.plots import confusion_png, learning_curve_png, roc_pr_png
from segpair.training.train import TrainConfig
from segpair_assets.assets.per_embedder import model_stage_asset
from segpair_assets.embedders import EMBEDDER_NAMES
from segpair_assets.partitions import virus_and_version

MODEL_PREFIX = "pair_classifier_"


class PairClassifierConfig(dg.Config):
    schema_pairs: list[list[str]] | None = Field(
        default=None,
        description='Schema pairs to train on, e.g. [["HA", "NA"]]; unset: the virus\'s '
        "training_schema_pairs from the registry (flu: HA-NA and PB2-PB1).",
    )
    interactions: list[str] = Field(
        default=["concat", "diff", "prod"],
        description="Any of concat ([a, b]), diff (|a-b|), prod (a*b), unit_diff (|a/|a|-b/|b||).",
    )
    slot_transform: Literal["none", "l2", "slot_norm"] = "none"
    hidden: list[int] = [256, 64]
    dropout: float = Field(default=0.1, ge=0, lt=1)
    lr: float = 1e-3
    weight_decay: float = 1e-2
    batch_size: int = 256
    max_epochs: int = 50
    patience: int = 8
    early_stopping_metric: Literal["loss", "f1", "auc"] = "auc"
    threshold_metric: Literal["f1", "f0.5", "f2", "fixed"] = "f1"
    seed: int = 42
    memory_budget_gb: float = Field(
        default=8.0,
        gt=0,
        description="Gather the pairs' embeddings into memory (each protein once) when they "
        "fit in this many GiB; otherwise read every batch from the HDF5 cache (slower).",
    )
    baseline_max_train_pairs: int | None = Field(
        default=50_000,
        description="Logistic regression and 1-NN fit on at most this many training pairs "
        "(a seeded random subsample; they hold them in memory); null: all.",
    )


PIPELINE_ONLY = {"schema_pairs", "interactions", "memory_budget_gb", "baseline_max_train_pairs"}


def build_training_asset(embedder: str) -> dg.AssetsDefinition:
    @model_stage_asset(
        embedder,
        name=f"{MODEL_PREFIX}{embedder}",
        kinds={"pytorch", "mlflow"},
        description=(
            f"Pair classifier on frozen {embedder} embeddings: per-slot transform, interaction "
            "features, MLP, early stopping, threshold chosen on val; test metrics overall, per "
            "schema pair and by metadata match, next to logistic regression and 1-NN on the "
            "same pairs. Checkpoint, metrics and plots in data/models/{virus}/{data_version}/"
            f"{embedder}/; one MLflow run per materialization."
        ),
    )
    def _train(
        context: dg.AssetExecutionContext,
        config: PairClassifierConfig,
        storage: SegpairStorage,
        mlflow_tracking: MlflowTracking,
        segment_pairs: pd.DataFrame,
        embeddings: EmbeddingStore,
    ) -> dg.MaterializeResult:
        virus_name, version = virus_and_version(context)
        virus = load_registry().get(virus_name)
        schema = config.schema_pairs
        if not schema and virus.training_schema_pairs:
            # the registry's defaults that this segment_pairs table has
            built = set(segment_pairs["schema_pair"].astype(str))
            schema = [p for p in virus.training_schema_pairs if f"{p[0]}-{p[1]}" in built]
            skipped = [p for p in virus.training_schema_pairs if p not in schema]
            if skipped:
                context.log.warning(f"default schema pairs {skipped} not in segment_pairs")
        schema = schema or None
        train_config = TrainConfig(
            **config.model_dump(exclude=PIPELINE_ONLY),
            interactions=validate_interactions(list(config.interactions)),
        )
        out_dir = storage.root / "models" / virus_name / version / embedder
        schema_label = "+".join(f"{a}-{b}" for a, b in schema) if schema else "all"
        run_name = f"{virus_name}/{version}/{embedder}/{schema_label}/seed{config.seed}"
        tags = {
            "kind": "pair_classifier",
            "dagster_run_id": context.run.run_id,
            "dagster_partition": str(context.partition_key),
            "virus": virus_name,
            "data_version": version,
            "embedder": embedder,
            "schema_pairs": schema_label,
        }
        import mlflow

        with embeddings, mlflow_tracking.run(f"segpair-{virus_name}", run_name, tags) as run:
            params = {**config.model_dump(), "schema_pairs": schema_label, "data_version": version}
            params.update(embedder_signature=embeddings.signature, embedding_dim=embeddings.dim)
            mlflow.log_params(params)

            def on_epoch(epoch: int, row: dict) -> None:
                mlflow.log_metrics(row, step=epoch)
                context.log.info(
                    f"epoch {epoch}: train_loss {row['train_loss']:.4f} val_loss "
                    f"{row['val_loss']:.4f} val_auc {row['val_auc']:.3f}"
                )

            outcome = run_training(
                segment_pairs, embeddings, schema, train_config, on_epoch,
                config.memory_budget_gb, config.baseline_max_train_pairs,
            )  # fmt: skip
            context.log.info(
                f"{outcome.sizes['n_train']} training pairs, embeddings "
                + ("gathered in memory" if outcome.embeddings_in_memory else "streamed from HDF5")
            )
            r, m = outcome.result, outcome.metrics
            mlflow.log_params({**outcome.sizes,
                               "embeddings_in_memory": outcome.embeddings_in_memory})  # fmt: skip
            for scorer, values in m.items():
                mlflow.log_metrics({f"test_{scorer}_{k}": v for k, v in values.items()})
            mlflow.log_metrics({"threshold": r.threshold, "best_epoch": r.best_epoch,
                                "initial_loss": r.initial_loss})  # fmt: skip
            mlflow.set_tags({k: str(v) for k, v in outcome.learning.items()})

            y = outcome.test_pairs["label"].to_numpy()
            pngs = {
                "roc_pr.png": roc_pr_png(y, outcome.scores, f"{virus_name} {schema_label}"),
                "confusion_matrix.png": confusion_png(m["mlp"]["tp"], m["mlp"]["fp"],
                                                      m["mlp"]["tn"], m["mlp"]["fn"], "MLP, test"),
                "learning_curve.png": learning_curve_png(r.history, f"{embedder}"),
            }  # fmt: skip
            out_dir.mkdir(parents=True, exist_ok=True)
            for name, png in pngs.items():
                with atomic_path(out_dir / name) as tmp:
                    tmp.write_bytes(png)
            comparison = pd.DataFrame(m).T.reset_index(names="scorer")[
                ["scorer", "auc_roc", "auc_pr", "f1", "accuracy", "mcc", "threshold"]
            ]
            write_text_atomic(out_dir / "metrics.json", json.dumps(
                {"test": m, "learning": outcome.learning, "history": r.history,
                 "sizes": outcome.sizes}, indent=1, default=float))  # fmt: skip
            with atomic_path(out_dir / "stratified_metrics.csv") as tmp:
                outcome.stratified.to_csv(tmp, index=False)
            meta = {
                "embedder": embedder, "signature": embeddings.signature, "dim": embeddings.dim,
                "embedder_description": description_from_attrs(embeddings.attrs),
                "interactions": list(config.interactions), "slot_transform": config.slot_transform,
                "hidden": list(config.hidden), "dropout": config.dropout,
                "threshold": r.threshold, "schema_pairs": schema, "virus": virus_name,
                "data_version": version, "config": config.model_dump(),
                "mlflow_run_id": run.info.run_id,
            }  # fmt: skip
            save_checkpoint(out_dir / "model.pt", r.model, meta)
            for f in ("model.pt", "metrics.json", "stratified_metrics.csv", *pngs):
                mlflow.log_artifact(
                    str(out_dir / f), artifact_path="model" if f == "model.pt" else None
                )

        if not outcome.learning["beats_majority"] or not outcome.learning["initial_loss_near_ln2"]:
            context.log.warning(f"learning check failed: {outcome.learning}")
        return dg.MaterializeResult(
            metadata={
                "mlflow_run_id": run.info.run_id,
                "mlflow_experiment": f"segpair-{virus_name}",
                "mlflow_tracking_uri": mlflow_tracking.tracking_uri,
                "schema_pairs": schema_label,
                **{
                    f"test_{k}": round(v, 4)
                    for k, v in m["mlp"].items()
                    if k in ("auc_roc", "auc_pr", "f1", "accuracy", "precision", "recall", "mcc")
                },
                "threshold": round(r.threshold, 4),
                "best_epoch": r.best_epoch,
                "epochs_run": len(r.history),
                "initial_loss": round(r.initial_loss, 4),
                "beats_majority": bool(outcome.learning["beats_majority"]),
                **outcome.sizes,
                "embeddings_in_memory": outcome.embeddings_in_memory,
                "model_vs_baselines": dg.MetadataValue.md(markdown_table(comparison.round(4))),
                "stratified": dg.MetadataValue.md(
                    markdown_table(
                        outcome.stratified[
                            ["stratum", "n", "auc_roc", "auc_pr", "f1", "mcc"]
                        ].round(4),
                        max_rows=60,
                    )
                ),
                "roc_pr_curves": dg.MetadataValue.md(
                    png_markdown(pngs["roc_pr.png"], "ROC and PR")
                ),
                "learning_curve": dg.MetadataValue.md(
                    png_markdown(pngs["learning_curve.png"], "loss")
                ),
                "checkpoint": dg.MetadataValue.path(str(out_dir / "model.pt")),
            }  # fmt: skip
        )

    return _train


training_assets = [build_training_asset(name) for name in EMBEDDER_NAMES]
