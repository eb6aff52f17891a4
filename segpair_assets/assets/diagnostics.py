"""Embedding diagnostics per embedder: is there isolate signal in the raw vectors?"""

import dagster as dg
import pandas as pd

from resources.mlflow_tracking import MlflowTracking
from resources.storage import SegpairStorage
from segpair.embeddings.cache import EmbeddingStore
from segpair.embeddings.catalog import EmbedderSpec
from segpair.embeddings.diagnostics import (
    SimilarityDiagnostics,
    similarity_diagnostics,
    write_diagnostics,
)
from segpair.report import markdown_table, png_markdown
from segpair_assets.assets.per_embedder import model_stage_asset
from segpair_assets.assets.training import run_tags
from segpair_assets.partitions import virus_and_version


def diagnostics_metadata(diag: SimilarityDiagnostics, png: bytes, run_id: str) -> dict:
    return {
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in diag.summary.items()},
        "per_function": dg.MetadataValue.md(markdown_table(diag.per_function.round(4))),
        "similarity_histogram": dg.MetadataValue.md(png_markdown(png, "cosine similarity")),
        "mlflow_run_id": run_id,
    }


def build_diagnostics_asset(spec: EmbedderSpec) -> dg.AssetsDefinition:
    @model_stage_asset(
        spec,
        name=spec.diagnostics_asset,
        kinds={"numpy", "mlflow"},
        description=(
            f"Similarity diagnostics of the {spec.name} embeddings: cosine similarity of "
            "positive vs negative pairs (means, Cohen's d, histogram overlap) and intra- vs "
            "inter-function similarity, with a histogram; also logged to MLflow. Weak raw "
            "separation does not mean no signal: interaction features and a model may still "
            "find it."
        ),
    )
    def _diagnostics(
        context: dg.AssetExecutionContext,
        storage: SegpairStorage,
        mlflow_tracking: MlflowTracking,
        segment_pairs: pd.DataFrame,
        embeddings: EmbeddingStore,
    ) -> dg.MaterializeResult:
        virus, version = virus_and_version(context)
        with embeddings:
            diag = similarity_diagnostics(segment_pairs, embeddings)
        out_dir = storage.model_dir(virus, version, spec.name)
        png, files = write_diagnostics(out_dir, diag, f"{virus} {version} {spec.name}")
        tags = run_tags(context, "embedding_diagnostics", spec.name)
        run_name = f"diagnostics/{version}/{spec.name}"
        with mlflow_tracking.run(f"segpair-{virus}", run_name, tags) as run:
            run.log_metrics(diag.summary)
            run.log_artifacts(files)
        s = diag.summary
        context.log.info(
            f"{spec.name}: Cohen's d {s['cohens_d']:.3f}, overlap {s['histogram_overlap']:.2f}"
        )
        return dg.MaterializeResult(metadata=diagnostics_metadata(diag, png, run.run_id))

    return _diagnostics


def build_diagnostics_assets(catalog) -> list[dg.AssetsDefinition]:
    return [build_diagnostics_asset(spec) for spec in catalog]
