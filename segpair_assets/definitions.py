"""The segpair code location."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from resources import (
    ComputeDevice,
    EmbeddingCacheIOManager,
    MlflowTracking,
    PartitionedParquetIOManager,
    SegpairStorage,
    default_data_root,
)
from resources.mlflow_tracking import default_tracking_uri
from segpair_assets.asset_checks import (
    embedding_checks,
    protein_final_is_valid,
    segment_pairs_leakage_free,
    segment_pairs_proteins_embedded,
)
from segpair_assets.assets.diagnostics import diagnostics_assets
from segpair_assets.assets.embeddings import SHARD_IO_MANAGER, embedding_assets
from segpair_assets.assets.pairs import cooccurrence_sets, segment_pairs
from segpair_assets.assets.preprocessing import protein_final
from segpair_assets.assets.scoring import scoring_assets
from segpair_assets.assets.training import training_assets
from segpair_assets.automation import (
    eager_automation_enabled,
    new_data_version_sensor,
    weekly_refresh_schedules,
)
from segpair_assets.embedders import NEEDS_WEIGHTS_TAG, embedder_resources
from segpair_assets.executors import executor_from_environment
from segpair_assets.jobs import segpair_language_model_job, segpair_main_job, virus_jobs


def _follow_upstream(spec: dg.AssetSpec) -> dg.AssetSpec:
    """Eager automation for what runs anywhere: downstream follows a new upstream
    materialization. protein_final is left to the data-version sensor (it reads files)."""
    if spec.key == dg.AssetKey("protein_final") or spec.tags.get(NEEDS_WEIGHTS_TAG) == "true":
        return spec
    return spec.replace_attributes(automation_condition=dg.AutomationCondition.eager())


def build_definitions(
    data_root: str | None = None, eager_automation: bool | None = None
) -> dg.Definitions:
    """The code location; `eager_automation` unset: SEGPAIR_EAGER_AUTOMATION decides."""
    root = data_root or default_data_root()
    assets = [
        protein_final,
        *embedding_assets,
        cooccurrence_sets,
        segment_pairs,
        *training_assets,
        *diagnostics_assets,
        *scoring_assets,
    ]
    if eager_automation_enabled() if eager_automation is None else eager_automation:
        assets = dg.map_asset_specs(_follow_upstream, assets)
    return dg.Definitions(
        assets=assets,
        asset_checks=[
            protein_final_is_valid,
            *embedding_checks,
            segment_pairs_leakage_free,
            segment_pairs_proteins_embedded,
        ],
        jobs=[segpair_main_job, segpair_language_model_job, *virus_jobs],
        executor=executor_from_environment(),
        sensors=[new_data_version_sensor],
        schedules=weekly_refresh_schedules,
        resources={
            "storage": SegpairStorage(data_root=root),
            "parquet_io_manager": PartitionedParquetIOManager(
                base_dir=str(Path(root) / "processed")
            ),
            "embedding_io_manager": EmbeddingCacheIOManager(data_root=root),
            # Shard plans and reports between embedding steps: under the data root, which
            # every worker of a cluster shares anyway (the caches live there).
            SHARD_IO_MANAGER: dg.FilesystemIOManager(base_dir=str(Path(root) / "step_outputs")),
            "compute_device": ComputeDevice(),
            "mlflow_tracking": MlflowTracking(
                tracking_uri=os.environ.get("SEGPAIR_MLFLOW_TRACKING_URI")
                or default_tracking_uri(root),
                artifact_root=str(Path(root) / "mlflow" / "artifacts"),
            ),
            **embedder_resources(),
        },
    )


defs = build_definitions()


def job_named(name: str) -> dg.JobDefinition:
    """A job of this code location rebuilt by name in another process (a Celery run)."""
    return defs.resolve_job_def(name)
