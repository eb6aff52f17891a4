"""The segpair code location.

How outputs are persisted, one rule per kind of output:

- Tables (protein_final, co-occurrence, pairs, scores): `PartitionedParquetIOManager`;
  downstream assets load them as DataFrames.
- Master embedding caches: `EmbeddingCacheIOManager`; the HDF5 + Parquet pair must
  commit together, and downstream gets a lazy `EmbeddingStore`, never the whole matrix.
- Models and diagnostics (checkpoint, metrics, plots): the core writes the files into
  `storage.model_dir(...)` and the asset returns `MaterializeResult`; they are several
  files per output, read by people, MLflow and `segpair score`, never by another asset.
- Values between the sharded embedding steps: `FilesystemIOManager` (small plans and
  reports).
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from resources import (
    ComputeDevice,
    EmbeddingCacheIOManager,
    MlflowTracking,
    PartitionedParquetIOManager,
    Reproducibility,
    SegpairStorage,
    VirusRegistryResource,
    embedders_for,
)
from resources.mlflow_tracking import default_tracking_uri
from segpair.embeddings.catalog import CATALOG, EmbedderCatalog
from segpair_assets.asset_checks import (
    build_classifier_checks_for,
    build_embedding_checks,
    build_proteins_embedded_check,
    protein_final_is_valid,
    segment_pairs_leakage_free,
)
from segpair_assets.assets.analysis import build_map_assets, segment_conservation
from segpair_assets.assets.diagnostics import build_diagnostics_assets
from segpair_assets.assets.embeddings import SHARD_IO_MANAGER, build_embedding_assets
from segpair_assets.assets.evaluation import build_evaluation_assets
from segpair_assets.assets.pairs import cooccurrence_sets, segment_pairs
from segpair_assets.assets.per_embedder import NEEDS_WEIGHTS_TAG, OPT_IN_TAG
from segpair_assets.assets.preprocessing import protein_final
from segpair_assets.assets.raw_files import raw_files
from segpair_assets.assets.scoring import build_scoring_assets
from segpair_assets.assets.training import build_training_assets
from segpair_assets.assets.vectors import build_vector_table_assets
from segpair_assets.automation import build_new_data_version_sensor, build_weekly_refresh_schedules
from segpair_assets.code_versions import with_code_versions
from segpair_assets.executors import executor_for
from segpair_assets.jobs import (
    build_virus_jobs,
    segpair_language_model_job,
    segpair_main_job,
    segpair_opt_in_job,
)
from segpair_assets.settings import MLFLOW_URI_ENV, Settings


def _follow_upstream(spec: dg.AssetSpec) -> dg.AssetSpec:
    """Eager automation for what runs anywhere: downstream follows a new upstream
    materialization. protein_final is left to the data-version sensor (it reads files); an
    opt-in embedder runs only when asked for."""
    if (
        spec.key == dg.AssetKey("protein_final")
        or spec.tags.get(NEEDS_WEIGHTS_TAG) == "true"
        or spec.tags.get(OPT_IN_TAG) == "true"
    ):
        return spec
    return spec.replace_attributes(automation_condition=dg.AutomationCondition.eager())


def refreshed_models(settings: Settings, catalog: EmbedderCatalog) -> list[str]:
    """Entries needing weights that the refresh runs: those whose weights are configured,
    and merged entries all of whose weight-needing sources are."""
    configured = set(settings.models)
    own = [s.name for s in catalog.language_models() if s.name in configured]
    merged = [s.name for s in catalog if s.sources_needing_weights
              and set(s.sources_needing_weights) <= configured]  # fmt: skip
    return own + merged


def build_assets(catalog: EmbedderCatalog) -> list:
    return [
        raw_files,
        protein_final,
        *build_embedding_assets(catalog),
        cooccurrence_sets,
        segment_pairs,
        *build_training_assets(catalog),
        *build_diagnostics_assets(catalog),
        *build_map_assets(catalog),
        segment_conservation,
        *build_scoring_assets(catalog),
        *build_evaluation_assets(catalog),
        *build_vector_table_assets(catalog),
    ]


def build_resources(settings: Settings, root: str, catalog: EmbedderCatalog = CATALOG) -> dict:
    tracking_uri = dg.EnvVar(MLFLOW_URI_ENV) if settings.mlflow_tracking_uri_from_env else None
    return {
        "storage": SegpairStorage(data_root=root),
        "viruses": VirusRegistryResource(path=settings.registry_path),
        "parquet_io_manager": PartitionedParquetIOManager(base_dir=str(Path(root) / "processed")),
        "embedding_io_manager": EmbeddingCacheIOManager(data_root=root),
        # Shard plans and reports between embedding steps: under the data root, which
        # every worker of a cluster shares anyway (the caches live there).
        SHARD_IO_MANAGER: dg.FilesystemIOManager(base_dir=str(Path(root) / "step_outputs")),
        "compute_device": ComputeDevice(),
        "reproducibility": Reproducibility(master_seed=settings.master_seed),
        "embedders": embedders_for(dict(settings.models), catalog),
        "mlflow_tracking": MlflowTracking(
            tracking_uri=tracking_uri or default_tracking_uri(root),
            artifact_root=str(Path(root) / "mlflow" / "artifacts"),
            ui_url=settings.mlflow_ui_url,
            dagster_ui_url=settings.dagster_ui_url,
        ),
    }


def build_definitions(
    data_root: str | None = None,
    eager_automation: bool | None = None,
    settings: Settings | None = None,
    catalog: EmbedderCatalog = CATALOG,
) -> dg.Definitions:
    """The code location. Unset arguments come from `settings` (default: the environment)."""
    settings = settings or Settings.from_environment(catalog=catalog)
    root = data_root or settings.data_root
    assets = with_code_versions(build_assets(catalog), catalog)
    if settings.eager_automation if eager_automation is None else eager_automation:
        sources = [a for a in assets if not isinstance(a, dg.AssetsDefinition)]
        rest = [a for a in assets if isinstance(a, dg.AssetsDefinition)]
        assets = [*sources, *dg.map_asset_specs(_follow_upstream, rest)]
    virus_jobs = build_virus_jobs(settings.registry(), catalog, refreshed_models(settings, catalog))
    return dg.Definitions(
        assets=assets,
        asset_checks=[
            protein_final_is_valid,
            *build_embedding_checks(catalog),
            segment_pairs_leakage_free,
            build_proteins_embedded_check(catalog),
            *build_classifier_checks_for(catalog),
        ],
        jobs=[segpair_main_job, segpair_language_model_job, segpair_opt_in_job, *virus_jobs],
        executor=executor_for(settings),
        sensors=[build_new_data_version_sensor(settings, virus_jobs)],
        schedules=build_weekly_refresh_schedules(settings, virus_jobs),
        resources=build_resources(settings, root, catalog),
    )


defs = build_definitions()


def job_named(name: str) -> dg.JobDefinition:
    """A job of this code location rebuilt by name in another process (a Celery run)."""
    return defs.resolve_job_def(name)
