"""The MLflow UI server, started on loopback over the store the pipeline wrote, lists the
two training runs of different configs with their params and metrics (through the REST API
its pages call, and in a browser where one is installed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from segpair_assets_tests.e2e.browser import (
    chromium_paths,
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


def test_mlflow_ui_lists_both_runs_with_params_and_metrics(mlflow_ui):
    with urllib.request.urlopen(
        f"{mlflow_ui}/api/2.0/mlflow/experiments/get-by-name?experiment_name=segpair-flu_a",
        timeout=30,
    ) as resp:
        experiment = json.load(resp)["experiment"]
    runs = _post(f"{mlflow_ui}/api/2.0/mlflow/runs/search", {
        "experiment_ids": [experiment["experiment_id"]],
        "filter": "tags.kind = 'pair_classifier' and tags.embedder = 'kmer_aa3'",
    })["runs"]  # fmt: skip
    assert len(runs) == 2
    params = [{p["key"]: p["value"] for p in r["data"]["params"]} for r in runs]
    metrics = [{m["key"]: m["value"] for m in r["data"]["metrics"]} for r in runs]
    assert {p["slot_transform"] for p in params} == {"none", "l2"}
    assert all("test_mlp_auc_roc" in m and "test_1nn_auc_roc" in m for m in metrics)

    if chromium_paths() is None:
        return  # the REST API is what the UI's pages read; the browser view needs chromium
    driver = start_browser()
    try:
        driver.get(f"{mlflow_ui}/#/experiments/{experiment['experiment_id']}/runs")
        names = [r["info"]["run_name"] for r in runs]
        for name in names:
            wait_for_text(driver, name, timeout=90)
        screenshot(driver, "mlflow_runs.png")
    finally:
        driver.quit()
