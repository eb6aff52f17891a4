"""MLflow tracking through MLflow's own API (MLflow 3).

`dagster-mlflow`'s resource targets older MLflow and starts runs around whole Dagster
runs; segpair needs one MLflow run per materialization with its own tags and artifacts,
so it calls `mlflow` directly. Default store: SQLite under the data root; point
`tracking_uri` at a real `mlflow server` (http://host:5000) to share runs.

Each run links back to Dagster: tags and the run's description (MLflow's
`mlflow.note.content`, Markdown) name the Dagster run and the asset partition, as
links into the Dagster UI at `dagster_ui_url`; `TrackedRun.url` is the run's page in the
MLflow UI at `ui_url` (`resources/ui_links.py` builds both).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from pydantic import Field

from resources.ui_links import (
    DEFAULT_DAGSTER_UI_URL,
    DEFAULT_MLFLOW_UI_URL,
    SHARED_VIEW_TAG,
    dagster_asset_url,
    dagster_run_url,
    mlflow_artifact_url,
    mlflow_experiment_url,
    mlflow_run_url,
    runs_table_view,
)


def default_tracking_uri(data_root: str) -> str:
    return f"sqlite:///{Path(data_root).resolve() / 'mlflow' / 'mlflow.db'}"


class MlflowTracking(dg.ConfigurableResource):
    tracking_uri: str = Field(description="sqlite:///path/mlflow.db or http://host:port")
    artifact_root: str = Field(
        description="where new experiments keep artifacts (ignored by a remote server)"
    )
    ui_url: str = Field(
        default=DEFAULT_MLFLOW_UI_URL,
        description="the MLflow UI that shows this store (`make mlflow-ui`): links from "
        "Dagster metadata to runs and plots point there",
    )
    dagster_ui_url: str = Field(
        default=DEFAULT_DAGSTER_UI_URL,
        description="the Dagster UI (`make ui`): links from MLflow runs back point there",
    )

    def _client_setup(self):
        import mlflow

        if self.tracking_uri.startswith("sqlite:///"):
            Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(
                parents=True, exist_ok=True
            )
        mlflow.set_tracking_uri(self.tracking_uri)
        return mlflow

    @contextlib.contextmanager
    def _store_lock(self) -> Iterator[None]:
        """Several steps of one run (the multiprocess executor) may open a new SQLite store
        at once: creating its tables and the experiment is done by one process at a time."""
        if not self.tracking_uri.startswith("sqlite:///"):
            yield
            return
        from filelock import FileLock

        db = Path(self.tracking_uri.removeprefix("sqlite:///"))
        with FileLock(str(db) + ".lock", timeout=300):
            yield

    def experiment_id(self, name: str, table: RunsTable | None = None) -> str:
        """The experiment's id, created when new; `table` (re)sets how its runs table opens."""
        mlflow = self._client_setup()
        with self._store_lock():
            experiment_id = self._find_or_create(mlflow, name)
            if table is not None:
                mlflow.MlflowClient().set_experiment_tag(
                    experiment_id, SHARED_VIEW_TAG, table.view_state()
                )
            return experiment_id

    def _find_or_create(self, mlflow, name: str) -> str:
        found = mlflow.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = None
        if not self.tracking_uri.startswith("http"):
            location = (Path(self.artifact_root) / name).resolve().as_uri()
        try:
            return mlflow.create_experiment(name, artifact_location=location)
        except mlflow.exceptions.MlflowException:
            # a server shared with other processes: someone created it meanwhile
            found = mlflow.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def origin_tags(self, origin: DagsterOrigin) -> dict[str, str]:
        """Tags naming the Dagster run and asset partition, with links to both."""
        return {
            "dagster_run_id": origin.run_id,
            "dagster_asset": "/".join(origin.asset_key),
            "dagster_partition": origin.partition or "",
            "dagster_run_url": dagster_run_url(self.dagster_ui_url, origin.run_id),
            "dagster_asset_url": dagster_asset_url(
                self.dagster_ui_url, origin.asset_key, origin.partition
            ),
        }

    def origin_note(self, origin: DagsterOrigin) -> str:
        """The run description's links back to Dagster (Markdown)."""
        tags = self.origin_tags(origin)
        partition = f" {origin.partition}" if origin.partition else ""
        return (
            f"Materialized by Dagster run [{origin.run_id[:8]}]({tags['dagster_run_url']}) "
            f"as [{tags['dagster_asset']}{partition}]({tags['dagster_asset_url']})."
        )

    @contextlib.contextmanager
    def run(
        self,
        experiment: str,
        run_name: str,
        origin: DagsterOrigin,
        params: Mapping[str, object],
        tags: Mapping[str, str] | None = None,
        table: RunsTable | None = None,
    ) -> Iterator[TrackedRun]:
        """An MLflow run of `origin` with `params` logged: what an asset logs goes through
        the `TrackedRun` it yields."""
        mlflow = self._client_setup()
        experiment_id = self.experiment_id(experiment, table)
        note = self.origin_note(origin)
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=run_name, description=note,
            tags={**self.origin_tags(origin), **(tags or {})},
        ) as active:  # fmt: skip
            mlflow.log_params(dict(params))
            yield TrackedRun(active.info.run_id, experiment_id, self.ui_url, note)


@dataclass(frozen=True)
class DagsterOrigin:
    """The Dagster run and asset partition that an MLflow run records."""

    run_id: str
    asset_key: tuple[str, ...]
    partition: str | None


@dataclass(frozen=True)
class RunsTable:
    """How an experiment's runs table opens in the MLflow UI: these parameter and metric
    columns, sorted by `sort_by` (highest first)."""

    params: tuple[str, ...]
    metrics: tuple[str, ...]
    sort_by: str

    def view_state(self) -> str:
        return runs_table_view(self.params, self.metrics, self.sort_by)


@dataclass(frozen=True)
class TrackedRun:
    """The active MLflow run, so asset code never imports mlflow itself."""

    run_id: str
    experiment_id: str
    ui_url: str
    origin_note: str = ""

    @property
    def url(self) -> str:
        """The run's page in the MLflow UI (its ML view)."""
        return mlflow_run_url(self.ui_url, self.experiment_id, self.run_id)

    @property
    def experiment_url(self) -> str:
        return mlflow_experiment_url(self.ui_url, self.experiment_id)

    def artifact_url(self, path: str) -> str:
        """An artifact of this run as the MLflow UI's server serves it."""
        return mlflow_artifact_url(self.ui_url, self.run_id, path)

    def log_params(self, params: Mapping[str, object]) -> None:
        import mlflow

        mlflow.log_params(dict(params))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        import mlflow

        mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)

    def set_tags(self, tags: Mapping[str, object]) -> None:
        import mlflow

        mlflow.set_tags({k: str(v) for k, v in tags.items()})

    def describe(self, summary: str) -> None:
        """The run's description: the links back to Dagster (first, where the UI shows it
        folded), then `summary` (Markdown)."""
        import mlflow

        mlflow.set_tag("mlflow.note.content", f"{self.origin_note}\n\n{summary}".strip())

    def log_artifacts(self, files: list[Path], model_file: str | None = None) -> None:
        """Files at the run's root; `model_file` (a checkpoint name) under model/."""
        import mlflow

        for f in files:
            mlflow.log_artifact(str(f), artifact_path="model" if f.name == model_file else None)

    def log_pair_model(self, checkpoint: Path, dim: int) -> str:
        """The checkpoint as an MLflow model (pyfunc) of this run; returns its model URI."""
        from segpair.training.mlflow_model import log_pair_model

        return log_pair_model(checkpoint, dim)


def print_experiment_links(tracking_uri: str, ui_url: str) -> None:
    """Each experiment's runs table in the MLflow UI (what `make mlflow-ui` prints)."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    experiments = [e for e in mlflow.search_experiments() if e.name.startswith("segpair-")]
    for e in sorted(experiments, key=lambda e: e.name):
        print(f"  {e.name}: {mlflow_experiment_url(ui_url, e.experiment_id)}")
    if not experiments:
        print("  no segpair experiment yet: `make demo` trains the models")


if __name__ == "__main__":
    print_experiment_links(*sys.argv[1:3])
