"""Every setting segpair reads from the environment, read here and nowhere else.

`Settings.from_environment()` is what the code location (`definitions.py`), the CLI and
the partitions use; tests build `Settings(...)` directly. The variables:

| variable | default | what it sets |
| --- | --- | --- |
| SEGPAIR_DATA_ROOT | ./data | where raw data, caches, models and the MLflow store live |
| SEGPAIR_VIRUS_REGISTRY | the packaged segpair/viruses.toml | a registry TOML of the same shape |
| SEGPAIR_MLFLOW_TRACKING_URI | SQLite under the data root | an MLflow server (http://host:5000) |
| SEGPAIR_MLFLOW_UI_URL | http://127.0.0.1:5000 (make mlflow-ui) | MLflow UI that Dagster links to |
| SEGPAIR_DAGSTER_UI_URL | http://127.0.0.1:3000 (make ui) | Dagster UI that MLflow links to |
| SEGPAIR_EXECUTOR | multiprocess | `in_process` (one process) or `celery` (workers) |
| SEGPAIR_CELERY_BROKER / _BACKEND | redis://localhost:6379/0 and /1 | Celery's Redis URLs |
| SEGPAIR_STABLE_LISTING_SECONDS | 120 | quiet time before a folder without manifest counts |
| SEGPAIR_SENSOR_INTERVAL_SECONDS | 60 | how often the data-version sensor looks |
| SEGPAIR_EAGER_AUTOMATION | off | weight-free assets follow upstream materializations |
| SEGPAIR_MASTER_SEED | 42 | seed every process seed derives from (unless its config sets one) |
| SEGPAIR_ESM2_MODEL, SEGPAIR_FASTESM2_MODEL, SEGPAIR_NT_MODEL | the catalog's hub ids | weights |
| DAGSTER_HOME (Dagster's) | none | where `segpair materialize` keeps its runs |
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from resources.ui_links import DEFAULT_DAGSTER_UI_URL, DEFAULT_MLFLOW_UI_URL
from segpair.embeddings.catalog import CATALOG, EmbedderCatalog
from segpair.provenance import DEFAULT_MASTER_SEED
from segpair.registry import VirusRegistry, load_registry

MLFLOW_URI_ENV = "SEGPAIR_MLFLOW_TRACKING_URI"
_TRUE = ("1", "true", "yes")


@dataclass(frozen=True)
class Settings:
    data_root: str = field(default_factory=lambda: str(Path.cwd() / "data"))
    registry_path: str | None = None
    # Set: the MLflow resource reads it through dg.EnvVar (the UI shows where it came from).
    mlflow_tracking_uri_from_env: bool = False
    # The UIs' addresses as a browser reaches them: links between the two point there.
    mlflow_ui_url: str = DEFAULT_MLFLOW_UI_URL
    dagster_ui_url: str = DEFAULT_DAGSTER_UI_URL
    executor: str = "multiprocess"
    celery_broker: str = "redis://localhost:6379/0"
    celery_backend: str = "redis://localhost:6379/1"
    stable_listing_seconds: float = 120.0
    sensor_interval_seconds: int = 60
    eager_automation: bool = False
    master_seed: int = DEFAULT_MASTER_SEED
    # language-model embedder name -> hub id or local directory, from its model_env_var
    models: Mapping[str, str] = field(default_factory=dict)
    # Dagster's own variable: where the CLI's runs are kept
    dagster_home: str | None = None

    @classmethod
    def from_environment(
        cls, env: Mapping[str, str] | None = None, catalog: EmbedderCatalog = CATALOG
    ) -> Settings:
        env = os.environ if env is None else env
        defaults = cls()
        return cls(
            data_root=env.get("SEGPAIR_DATA_ROOT") or defaults.data_root,
            registry_path=env.get("SEGPAIR_VIRUS_REGISTRY") or None,
            mlflow_tracking_uri_from_env=bool(env.get(MLFLOW_URI_ENV)),
            mlflow_ui_url=env.get("SEGPAIR_MLFLOW_UI_URL") or defaults.mlflow_ui_url,
            dagster_ui_url=env.get("SEGPAIR_DAGSTER_UI_URL") or defaults.dagster_ui_url,
            executor=env.get("SEGPAIR_EXECUTOR", defaults.executor).strip().lower(),
            celery_broker=env.get("SEGPAIR_CELERY_BROKER") or defaults.celery_broker,
            celery_backend=env.get("SEGPAIR_CELERY_BACKEND") or defaults.celery_backend,
            stable_listing_seconds=float(
                env.get("SEGPAIR_STABLE_LISTING_SECONDS", defaults.stable_listing_seconds)
            ),
            sensor_interval_seconds=int(
                env.get("SEGPAIR_SENSOR_INTERVAL_SECONDS", defaults.sensor_interval_seconds)
            ),
            eager_automation=env.get("SEGPAIR_EAGER_AUTOMATION", "").lower() in _TRUE,
            master_seed=int(env.get("SEGPAIR_MASTER_SEED", defaults.master_seed)),
            models={
                spec.name: env[spec.model_env_var]
                for spec in catalog.language_models()
                if spec.model_env_var and env.get(spec.model_env_var)
            },
            dagster_home=env.get("DAGSTER_HOME") or None,
        )

    def registry(self) -> VirusRegistry:
        return load_registry(self.registry_path)


@functools.cache
def current_settings() -> Settings:
    """The environment's settings, read once per process (what module-level definitions
    such as the partitions use)."""
    return Settings.from_environment()
