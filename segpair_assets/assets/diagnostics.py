"""Embedding diagnostics per embedder: is there isolate signal in the raw vectors?"""

import dagster as dg
import pandas as pd

from resources.mlflow_tracking import MlflowTracking, RunsTable, TrackedRun
from resources.reproducibility import Reproducibility
from resources.storage import SegpairStorage
from segpair.embeddings.cache import EmbeddingStore
from segpair.embeddings.catalog import EmbedderSpec
from segpair.embeddings.diagnostics import (
    SimilarityDiagnostics,
    similarity_diagnostics,
    write_diagnostics,
)
from segpair.training.artifacts import significant
from segpair_assets.assets.per_embedder import model_stage_asset
from segpair_assets.assets.training import run_name, run_origin, run_tags
from segpair_assets.metadata import images, mlflow_links, rounded, table
from segpair_assets.partitions import virus_and_version
from segpair_assets.provenance import record_provenance

# Their own experiment, so the classifiers' runs table holds classifiers only.
DIAGNOSTICS_RUNS = RunsTable(
    params=("embedder", "data_version"),
    metrics=("cohens_d", "histogram_overlap", "positive_mean", "negative_mean"),
    sort_by="cohens_d",
)


def diagnostics_metadata(diag: SimilarityDiagnostics, run: TrackedRun, histogram: str) -> dict:
    """Figures, the per-protein and per-schema-pair tables, the plots and the MLflow links
    (README: "What the diagnostics' metadata holds")."""
    return {
        **rounded(diag.summary),
        "similarity_histogram": images(
            {"cosine similarity of positive and negative pairs": run.artifact_url(histogram)}
        ),
        "per_function": table(diag.per_function),
        "per_schema_pair": table(diag.per_schema_pair),
        "per_schema_pair_plot": images(
            {"Cohen's d per schema pair": run.artifact_url("per_schema_pair_similarity.png")}
        ),
        **mlflow_links(run),
    }


def schema_pair_metrics(per_schema_pair: pd.DataFrame) -> dict[str, float]:
    """`cohens_d_HA-NA`, `histogram_overlap_HA-NA`, ...: where they are defined."""
    return {
        f"{stat}_{row['schema_pair']}": significant(row[stat])
        for row in per_schema_pair.to_dict("records")
        for stat in ("cohens_d", "histogram_overlap")
        if pd.notna(row[stat])
    }


def build_diagnostics_asset(spec: EmbedderSpec) -> dg.AssetsDefinition:
    @model_stage_asset(
        spec,
        name=spec.diagnostics_asset,
        kinds={"numpy", "mlflow"},
        description=(
            f"Similarity diagnostics of the {spec.name} embeddings: cosine similarity of "
            "positive vs negative pairs (means, Cohen's d, histogram overlap; pooled and per "
            "schema pair) and intra- vs inter-function similarity, with a histogram and a "
            "per-schema-pair plot; also logged to MLflow. Weak raw "
            "separation does not mean no signal: interaction features and a model may still "
            "find it."
        ),
    )
    def _diagnostics(
        context: dg.AssetExecutionContext,
        storage: SegpairStorage,
        mlflow_tracking: MlflowTracking,
        reproducibility: Reproducibility,
        segment_pairs: pd.DataFrame,
        embeddings: EmbeddingStore,
    ) -> dg.MaterializeResult:
        virus, version = virus_and_version(context)
        prov = record_provenance(context, storage, reproducibility)
        with embeddings:
            diag = similarity_diagnostics(segment_pairs, embeddings)
        out_dir = storage.model_dir(virus, version, spec.name)
        _png, files = write_diagnostics(out_dir, diag, f"{virus} {version} {spec.name}")
        tags = run_tags(context, "embedding_diagnostics", spec.name)
        s = diag.summary
        said = f"Cohen's d {s['cohens_d']:.3f}, histogram overlap {s['histogram_overlap']:.2f}"
        with mlflow_tracking.run(
            f"segpair-{virus}-diagnostics", run_name(spec.name, "diagnostics", context),
            run_origin(context), tags, {**tags, **prov.flat()}, DIAGNOSTICS_RUNS,
        ) as run:  # fmt: skip
            run.log_metrics({k: significant(v) for k, v in s.items()})
            run.log_metrics(schema_pair_metrics(diag.per_schema_pair))
            run.log_artifacts(files)
            run.describe(f"**{spec.name}: {said}** (positive vs negative pairs, raw vectors).")
        context.log.info(f"{spec.name}: {said}; MLflow run: {run.url}")
        histogram = next(f.name for f in files if f.suffix == ".png")
        return dg.MaterializeResult(metadata=diagnostics_metadata(diag, run, histogram))

    return _diagnostics


def build_diagnostics_assets(catalog) -> list[dg.AssetsDefinition]:
    return [build_diagnostics_asset(spec) for spec in catalog]
