"""The MLflow UI server, started on loopback over the store the pipeline wrote, lists the
two training runs of different configs with their params and metrics, opens the experiment
on its runs with metric columns, and compares two embedders' runs (through the REST API
its pages call, and in a browser where one is installed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from resources.ui_links import ML_VIEW, mlflow_experiment_url
from segpair_assets_tests.e2e.browser import (
    chromium_paths,
    require_browser,
    screenshot,
    start_browser,
    wait_for_text,
)
from segpair_assets_tests.e2e.processes import free_port


@pytest.fixture(scope="module")
def mlflow_ui(trained, tmp_path_factory):
    _data_root, _first, _second, defs = trained
    uri = defs.resources["mlflow_tracking"].tracking_uri
    port = free_port()
    log = tmp_path_factory.mktemp("mlflow_ui") / "mlflow_ui.log"
    mlflow_bin = os.path.join(os.path.dirname(sys.executable), "mlflow")
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [mlflow_bin, "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1"],
            stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=5)
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"mlflow ui exited:\n{log.read_text()[-3000:]}") from None
                time.sleep(1)
        else:
            raise TimeoutError(f"mlflow ui did not start:\n{log.read_text()[-3000:]}")
        try:
            yield base
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def _experiment_id(mlflow_ui: str) -> str:
    with urllib.request.urlopen(
        f"{mlflow_ui}/api/2.0/mlflow/experiments/get-by-name?experiment_name=segpair-flu_a",
        timeout=30,
    ) as resp:
        return json.load(resp)["experiment"]["experiment_id"]


def _search(mlflow_ui: str, experiment_id: str, filter_string: str) -> list[dict]:
    return _post(f"{mlflow_ui}/api/2.0/mlflow/runs/search",
                 {"experiment_ids": [experiment_id], "filter": filter_string})["runs"]  # fmt: skip


def _compare_url(mlflow_ui: str, experiment_id: str, run_ids: list[str]) -> str:
    """MLflow's compare page, as its Compare button opens it (in the ML view)."""
    runs = {"runs": json.dumps(run_ids), "experiments": json.dumps([experiment_id])}
    query = urllib.parse.urlencode({**runs, **ML_VIEW})
    return f"{mlflow_ui}/#/compare-runs?{query}"


def _params(run: dict) -> dict[str, str]:
    return {p["key"]: p["value"] for p in run["data"]["params"]}


def test_mlflow_ui_lists_both_runs_with_params_and_metrics(mlflow_ui):
    experiment_id = _experiment_id(mlflow_ui)
    runs = _search(mlflow_ui, experiment_id,
                   "params.kind = 'pair_classifier' and params.embedder = 'kmer_aa3'")  # fmt: skip
    assert len(runs) == 2
    metrics = [{m["key"]: m["value"] for m in r["data"]["metrics"]} for r in runs]
    assert {_params(r)["slot_transform"] for r in runs} == {"none", "l2"}
    assert all("mlp_test_auc_roc" in m and "vs_1nn_test_auc_roc" in m for m in metrics)

    if chromium_paths() is None:
        return  # the REST API is what the UI's pages read; the browser view needs chromium
    driver = start_browser()
    try:
        # the experiment link segpair's metadata carries: the ML view, metric columns
        driver.get(mlflow_experiment_url(mlflow_ui, experiment_id))
        for name in [r["info"]["run_name"] for r in runs]:
            wait_for_text(driver, name, timeout=90)
        for column in ("mlp_test_auc_r", "embedder"):  # headers are cut at their width
            wait_for_text(driver, column)
        screenshot(driver, "mlflow_runs.png")
    finally:
        driver.quit()


def test_mlflow_compares_two_embedders_runs(mlflow_ui):
    """One run per embedder from the main job: the REST API and the compare page show the
    `embedder` parameter differing and the model's metrics side by side."""
    require_browser()
    experiment_id = _experiment_id(mlflow_ui)
    found = _search(mlflow_ui, experiment_id, "params.kind = 'pair_classifier' and "
                    "params.schema_pairs = 'HA-NA+PB2-PB1'")  # fmt: skip
    by_embedder = {_params(r)["embedder"]: r for r in found}
    assert {"kmer_aa3", "kmer_nt6"} <= by_embedder.keys()
    runs = [by_embedder["kmer_aa3"], by_embedder["kmer_nt6"]]
    assert runs[0]["info"]["run_name"].split()[0] != runs[1]["info"]["run_name"].split()[0]
    ids = [r["info"]["run_id"] for r in runs]
    driver = start_browser()
    try:
        driver.get(_compare_url(mlflow_ui, experiment_id, ids))
        wait_for_text(driver, "Comparing 2 Runs", timeout=90)
        # the parameters that differ: the embedder among them
        driver.find_element("css selector", "[aria-label='Parameters - Show diff only']").click()
        row = driver.find_element("xpath", "//tr[.//*[normalize-space(text())='embedder']]")
        assert "kmer_aa3" in row.text and "kmer_nt6" in row.text, row.text
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", row)
        # the metrics side by side, alphabetical: the model's (mlp_*) before the baselines'
        named = "//a[starts-with(text(), 'mlp_') or starts-with(text(), 'vs_')]"
        metrics = driver.find_elements("xpath", named)
        assert metrics and metrics[0].text.startswith("mlp_"), [m.text for m in metrics]
        screenshot(driver, "mlflow_compare_embedders.png")
    finally:
        driver.quit()
