"""MLflow tracking through MLflow's own API (MLflow 3).

`dagster-mlflow`'s resource targets older MLflow and starts runs around whole Dagster
runs; segpair needs one MLflow run per materialization with its own tags and artifacts,
so it calls `mlflow` directly. Default store: SQLite under the data root; point
`tracking_uri` at a real `mlflow server` (http://host:5000) to share runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from pydantic import Field


def default_tracking_uri(data_root: str) -> str:
    return f"sqlite:///{Path(data_root).resolve() / 'mlflow' / 'mlflow.db'}"


class MlflowTracking(dg.ConfigurableResource):
    tracking_uri: str = Field(description="sqlite:///path/mlflow.db or http://host:port")
    artifact_root: str = Field(
        description="where new experiments keep artifacts (ignored by a remote server)"
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

    def experiment_id(self, name: str) -> str:
        mlflow = self._client_setup()
        with self._store_lock():
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

    @contextlib.contextmanager
    def run(self, experiment: str, run_name: str, tags: dict[str, str]) -> Iterator[TrackedRun]:
        """An MLflow run: what an asset logs goes through the `TrackedRun` it yields."""
        mlflow = self._client_setup()
        with mlflow.start_run(
            experiment_id=self.experiment_id(experiment), run_name=run_name, tags=tags
        ) as active:
            yield TrackedRun(active.info.run_id)


@dataclass(frozen=True)
class TrackedRun:
    """The active MLflow run, so asset code never imports mlflow itself."""

    run_id: str

    def log_params(self, params: Mapping[str, object]) -> None:
        import mlflow

        mlflow.log_params(dict(params))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        import mlflow

        mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)

    def set_tags(self, tags: Mapping[str, object]) -> None:
        import mlflow

        mlflow.set_tags({k: str(v) for k, v in tags.items()})

    def log_artifacts(self, files: list[Path], model_file: str | None = None) -> None:
        """Files at the run's root; `model_file` (a checkpoint name) under model/."""
        import mlflow

        for f in files:
            mlflow.log_artifact(str(f), artifact_path="model" if f.name == model_file else None)
