"""The links between the Dagster UI and the MLflow UI: their URL forms, where their base
addresses come from, and the figures and tables the metadata shows."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd

from resources.mlflow_tracking import DagsterOrigin, MlflowTracking
from resources.ui_links import (
    dagster_asset_url,
    dagster_run_url,
    mlflow_artifact_url,
    mlflow_experiment_url,
    mlflow_run_url,
    runs_table_view,
)
from segpair.training.artifacts import significant
from segpair_assets.definitions import build_resources
from segpair_assets.metadata import rounded, table
from segpair_assets.settings import Settings

MLFLOW, DAGSTER = "http://mlflow.example:5000/", "http://dagster.example:3000"


def _hash_query(url: str) -> dict[str, list[str]]:
    """The query of a hash route (#/path?query), as MLflow's router reads it."""
    return parse_qs(urlsplit(url).fragment.partition("?")[2])


def test_mlflow_links_open_the_ml_view():
    run = mlflow_run_url(MLFLOW, "3", "abc123")
    assert (
        run
        == "http://mlflow.example:5000/#/experiments/3/runs/abc123?workflowType=machine_learning"
    )
    experiment = mlflow_experiment_url(MLFLOW, "3")
    assert urlsplit(experiment).fragment.startswith("/experiments/3/runs?")
    assert _hash_query(experiment) == {
        "workflowType": ["machine_learning"], "viewStateShareKey": ["segpair"]}  # fmt: skip
    assert mlflow_artifact_url(MLFLOW, "abc123", "roc_pr.png") == (
        "http://mlflow.example:5000/get-artifact?path=roc_pr.png&run_uuid=abc123"
    )


def test_dagster_links_name_the_run_and_the_asset_partition():
    assert dagster_run_url(DAGSTER, "f00") == "http://dagster.example:3000/runs/f00"
    url = dagster_asset_url(DAGSTER, ("pair_classifier_kmer_nt6",), "simulated_v1|flu_a")
    assert url == ("http://dagster.example:3000/assets/pair_classifier_kmer_nt6"
                   "?view=partitions&partition=simulated_v1%7Cflu_a")  # fmt: skip
    assert dagster_asset_url(DAGSTER, ("a", "b c"), None) == (
        "http://dagster.example:3000/assets/a/b%20c"
    )


def test_runs_table_view_names_the_columns_mlflow_reads():
    view = json.loads(runs_table_view(["embedder"], ["mlp_test_auc_roc"], "mlp_test_auc_roc"))
    assert view["selectedColumns"] == ["params.`embedder`", "metrics.`mlp_test_auc_roc`"]
    assert view["orderByKey"] == "metrics.`mlp_test_auc_roc`" and view["orderByAsc"] is False


def test_the_ui_addresses_come_from_settings_into_the_resource(tmp_path):
    assert (Settings().mlflow_ui_url, Settings().dagster_ui_url) == (
        "http://127.0.0.1:5000", "http://127.0.0.1:3000")  # fmt: skip
    settings = Settings.from_environment(
        {"SEGPAIR_MLFLOW_UI_URL": MLFLOW, "SEGPAIR_DAGSTER_UI_URL": DAGSTER}
    )
    tracking = build_resources(settings, str(tmp_path))["mlflow_tracking"]
    assert (tracking.ui_url, tracking.dagster_ui_url) == (MLFLOW, DAGSTER)


def test_an_mlflow_run_describes_its_dagster_origin():
    tracking = MlflowTracking(tracking_uri="sqlite:///x.db", artifact_root="/tmp/a",
                              ui_url=MLFLOW, dagster_ui_url=DAGSTER)  # fmt: skip
    origin = DagsterOrigin("0123456789abcdef", ("pair_classifier_kmer_aa3",), "v1|flu_a")
    tags = tracking.origin_tags(origin)
    assert tags["dagster_run_url"] == f"{DAGSTER}/runs/0123456789abcdef"
    assert tags["dagster_partition"] == "v1|flu_a"
    note = tracking.origin_note(origin)
    assert f"]({tags['dagster_run_url']})" in note and f"]({tags['dagster_asset_url']})" in note


def test_figures_are_rounded_and_tables_are_dagster_tables():
    assert significant(0.912345678) == 0.9123 and significant(1234.5678) == 1235.0
    assert significant(-0.000123456) == -0.0001235 and significant(7) == 7
    assert np.isnan(significant(float("nan"))) and significant(None) is None
    assert rounded({"a": 0.123456, "n": 12345, "ok": True}) == {"a": 0.1235, "n": 12345,
                                                                "ok": True}  # fmt: skip
    df = pd.DataFrame({"stratum": ["all"], "n": [np.int64(40)], "auc_roc": [0.87654321],
                       "f1": [float("nan")], "seen": [True]})  # fmt: skip
    value = table(df)
    assert [(c.name, c.type) for c in value.schema.columns] == [
        ("stratum", "string"), ("n", "int"), ("auc_roc", "float"), ("f1", "float"),
        ("seen", "bool")]  # fmt: skip
    assert value.records[0].data == {"stratum": "all", "n": 40, "auc_roc": 0.8765, "f1": None,
                                     "seen": True}  # fmt: skip
