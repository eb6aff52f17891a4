"""Embedding diagnostics per embedder: is there isolate signal in the raw vectors?"""

import json

import dagster as dg
import pandas as pd

from resources.mlflow_tracking import MlflowTracking
from resources.storage import SegpairStorage
from segpair.atomic import atomic_path, write_text_atomic
from segpair.embeddings.cache import EmbeddingStore
from segpair.embeddings.diagnostics import similarity_diagnostics
from segpair.report import markdown_table, png_markdown
from segpair.training.plots import similarity_png
from segpair_assets.assets.per_embedder import model_stage_asset
from segpair_assets.embedders import EMBEDDER_NAMES
from segpair_assets.partitions import virus_and_version


def build_diagnostics_asset(embedder: str) -> dg.AssetsDefinition:
    @model_stage_asset(
        embedder,
        name=f"embedding_diagnostics_{embedder}",
        kinds={"numpy", "mlflow"},
        description=(
            f"Similarity diagnostics of the {embedder} embeddings (seed 001 section 8): cosine "
            "similarity of positive vs negative pairs (means, Cohen's d, histogram overlap) "
            "and intra- vs inter-function similarity, with a histogram; also logged to MLflow. "
            "Weak raw separation does not mean no signal: interaction features and a model "
            "may still find it."
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
        png = similarity_png(diag.positive, diag.negative, f"{virus} {version} {embedder}")
        out_dir = storage.root / "models" / virus / version / embedder
        out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(out_dir / "similarity.png") as tmp:
            tmp.write_bytes(png)
        write_text_atomic(out_dir / "diagnostics.json", json.dumps(diag.summary, indent=1))
        with atomic_path(out_dir / "per_function_similarity.csv") as tmp:
            diag.per_function.to_csv(tmp, index=False)
        import mlflow

        tags = {"kind": "embedding_diagnostics", "embedder": embedder, "virus": virus,
                "data_version": version, "dagster_run_id": context.run.run_id,
                "dagster_partition": str(context.partition_key)}  # fmt: skip
        with mlflow_tracking.run(
            f"segpair-{virus}", f"diagnostics/{version}/{embedder}", tags
        ) as run:
            mlflow.log_metrics(diag.summary)
            for f in ("similarity.png", "diagnostics.json", "per_function_similarity.csv"):
                mlflow.log_artifact(str(out_dir / f))
        s = diag.summary
        context.log.info(
            f"{embedder}: Cohen's d {s['cohens_d']:.3f}, overlap {s['histogram_overlap']:.2f}"
        )
        return dg.MaterializeResult(
            metadata={
                **{k: round(v, 4) if isinstance(v, float) else v for k, v in s.items()},
                "per_function": dg.MetadataValue.md(markdown_table(diag.per_function.round(4))),
                "similarity_histogram": dg.MetadataValue.md(png_markdown(png, "cosine similarity")),
                "mlflow_run_id": run.info.run_id,
            }
        )

    return _diagnostics


diagnostics_assets = [build_diagnostics_asset(name) for name in EMBEDDER_NAMES]
