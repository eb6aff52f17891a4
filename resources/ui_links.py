"""Links between the two UIs: the MLflow pages of a run, its experiment, its artifacts, and
the Dagster pages of a run and of an asset partition.

MLflow 3 opens an experiment in its GenAI view (traces, no runs) unless the page's URL
says `workflowType=machine_learning` or this browser last chose "Model training" in the
sidebar; nothing on the server decides it (the `mlflow.experimentKind` tag is not read
while the sidebar switch exists). So every MLflow link made here carries the parameter.
The experiment link also names a shared view (`viewStateShareKey`): an experiment tag
holding the runs table's columns and sort, so the runs open with their metric columns.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from urllib.parse import quote, urlencode

DEFAULT_MLFLOW_UI_URL = "http://127.0.0.1:5000"  # what `make mlflow-ui` serves
DEFAULT_DAGSTER_UI_URL = "http://127.0.0.1:3000"  # what `make ui` serves
ML_VIEW = {"workflowType": "machine_learning"}
SHARED_VIEW_KEY = "segpair"
SHARED_VIEW_TAG = f"mlflow.sharedViewState.{SHARED_VIEW_KEY}"


def _base(ui_url: str) -> str:
    return ui_url.rstrip("/")


def mlflow_run_url(ui_url: str, experiment_id: str, run_id: str) -> str:
    return f"{_base(ui_url)}/#/experiments/{experiment_id}/runs/{run_id}?{urlencode(ML_VIEW)}"


def mlflow_experiment_url(ui_url: str, experiment_id: str) -> str:
    """The experiment's runs table in the ML view, with segpair's columns and sort."""
    query = urlencode({**ML_VIEW, "viewStateShareKey": SHARED_VIEW_KEY})
    return f"{_base(ui_url)}/#/experiments/{experiment_id}/runs?{query}"


def mlflow_artifact_url(ui_url: str, run_id: str, path: str) -> str:
    """A run's artifact file as the MLflow server serves it (an image a page can show)."""
    return f"{_base(ui_url)}/get-artifact?{urlencode({'path': path, 'run_uuid': run_id})}"


def dagster_run_url(ui_url: str, run_id: str) -> str:
    return f"{_base(ui_url)}/runs/{run_id}"


def dagster_asset_url(ui_url: str, asset_key: Sequence[str], partition: str | None) -> str:
    """The asset's page; with a partition, its partitions view with that one selected."""
    path = "/".join(quote(part, safe="") for part in asset_key)
    if partition is None:
        return f"{_base(ui_url)}/assets/{path}"
    query = urlencode({"view": "partitions", "partition": partition}, quote_via=quote)
    return f"{_base(ui_url)}/assets/{path}?{query}"


def runs_table_view(params: Sequence[str], metrics: Sequence[str], sort_by: str) -> str:
    """The shared view's value: the runs table's columns (the run name, parameters, then
    metrics, each wide enough to read its name) sorted by one metric, best first."""
    columns = [f"params.`{p}`" for p in params] + [f"metrics.`{m}`" for m in metrics]
    run_name = "attributes.`Run Name`"
    widths = {run_name: 300, **{c: 40 + 7 * len(c.split("`")[1]) for c in columns}}
    return json.dumps({
        "selectedColumns": columns, "orderByKey": f"metrics.`{sort_by}`", "orderByAsc": False,
        "columnOrder": [run_name, *columns], "columnWidths": widths,
    })  # fmt: skip
