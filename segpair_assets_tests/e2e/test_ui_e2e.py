"""End to end with the real `dagster dev` (webserver + daemon) and `mlflow ui` over the store
the runs write: a data-version folder dropped into the raw-data root is picked up by the
sensor and materialized; then a browser opens the asset graph, launches a materialization
from the asset page and sees it succeed, and follows the classifier's link to its MLflow
run and the run's links back to Dagster."""

from __future__ import annotations

import os
import sys
import time
import urllib.request
from pathlib import Path
from unittest import mock

import pytest

from segpair.registry import DEFAULT_REGISTRY_PATH
from segpair.simulator import SimulationConfig, simulate_population, write_data_version
from segpair.training.model_history import ModelHistory
from segpair_assets_tests.e2e import test_webserver_e2e
from segpair_assets_tests.e2e.browser import (
    require_browser,
    screenshot,
    start_browser,
    wait_for_text,
    wait_until,
)
from segpair_assets_tests.e2e.processes import Service, free_port
from segpair_assets_tests.e2e.test_webserver_e2e import DagsterDev

RUNS = """
query($filter: RunsFilter) { runsOrError(filter: $filter) { ... on Runs { results {
  runId status jobName tags { key value } } } } }"""
PARTITION = "sim_v2|bunya"


def _ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


def _start_mlflow_ui(data: Path, port: int, log: Path) -> Service:
    """`mlflow ui` over the data root's store, as `make mlflow-ui` starts it."""
    (data / "mlflow").mkdir(parents=True, exist_ok=True)
    mlflow_bin = os.path.join(os.path.dirname(sys.executable), "mlflow")
    uri = f"sqlite:///{data / 'mlflow' / 'mlflow.db'}"
    return Service([mlflow_bin, "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
                    "--port", str(port), "--workers", "1"], log)  # fmt: skip


def _wait_for_health(service: Service, url: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=5)
            return
        except OSError:
            if service.proc.poll() is not None:
                break
            time.sleep(1)
    raise RuntimeError(f"mlflow ui not up at {url}:\n{service.log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    """dagster dev, and beside it the MLflow UI its materializations link to (and that
    links back to it): both addresses are known before either starts."""
    tmp = tmp_path_factory.mktemp("ui_e2e")
    dagster_port, mlflow_port = _ports(2)
    # The registry's own preset with a shorter training budget: these tests follow the
    # sensor's run through the UIs, not the model's quality (CI time).
    registry = tmp / "viruses.toml"
    registry.write_text(
        DEFAULT_REGISTRY_PATH.read_text()
        + "\n[bunya.run_config.pair_classifier]\nsteps = 150\nmin_steps = 75\n"
    )
    # Steps in the run's process: these tests follow the run through the UIs, while
    # test_webserver_e2e and test_dead_run_e2e run the default multiprocess executor.
    env = {"SEGPAIR_SENSOR_INTERVAL_SECONDS": "2", "SEGPAIR_VIRUS_REGISTRY": str(registry),
           "SEGPAIR_EXECUTOR": "in_process",
           "SEGPAIR_MLFLOW_UI_URL": f"http://127.0.0.1:{mlflow_port}",
           "SEGPAIR_DAGSTER_UI_URL": f"http://127.0.0.1:{dagster_port}"}  # fmt: skip
    # DagsterDev picks its own free port; it gets the one the links were given instead
    with mock.patch.object(test_webserver_e2e, "free_port", return_value=dagster_port):
        server = DagsterDev(tmp, env)
    server.mlflow_url = env["SEGPAIR_MLFLOW_UI_URL"]
    mlflow_ui = _start_mlflow_ui(server.data, mlflow_port, tmp / "mlflow_ui.log")
    try:
        server.wait_until_loaded()
        _wait_for_health(mlflow_ui, server.mlflow_url)
        yield server
    finally:
        mlflow_ui.stop()
        server.stop()


def _runs(dev: DagsterDev, **tags) -> list[dict]:
    flt = {"tags": [{"key": k, "value": v} for k, v in tags.items()]}
    return dev.graphql(RUNS, {"filter": flt})["runsOrError"]["results"]


def _wait_for_run(dev: DagsterDev, timeout: float = 300, **tags) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        runs = _runs(dev, **tags)
        if runs and runs[0]["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            return runs[0]
        time.sleep(2)
    raise TimeoutError(
        f"no finished run with tags {tags} in {timeout}s:\n{dev.log.read_text()[-4000:]}"
    )


UNSET_DIMENSION = ".//*[normalize-space(text())='Select a partition or create one']"


def _choose_partition(driver, dialog, value: str) -> None:
    """Pick `value` in the first partition dimension still unset in the launch dialog, and
    wait until the dialog shows it set (the next dimension is then the first unset one)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    unset = wait_until(
        driver, lambda d: dialog.find_elements(By.XPATH, UNSET_DIMENSION),
        f"no unset partition dimension for {value!r} in the launch dialog",
    )  # fmt: skip
    unset[0].click()
    option = f"//span[normalize-space(text())='{value}']"
    wait_until(
        driver, lambda d: [e for e in d.find_elements(By.XPATH, option) if e.is_displayed()],
        f"partition {value!r} not offered in the dimension's list",
    )[0].click()  # fmt: skip
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    wait_until(
        driver, lambda d: len(dialog.find_elements(By.XPATH, UNSET_DIMENSION)) < len(unset),
        f"the launch dialog did not take partition {value!r}",
    )  # fmt: skip


@pytest.fixture(scope="module")
def sensor_run(dev, bunya) -> dict:
    """A data-version folder dropped into the raw root, and the run the sensor launched for
    it. A fixture rather than a first test, so every test that follows that run finds it
    whatever order pytest-xdist gives the module's tests."""
    # write beside the root, then move in at once, as a finished copy would appear
    staging = dev.data / "staging" / "sim_v2"
    config = SimulationConfig(n_isolates=60, seed=3)
    write_data_version(simulate_population(bunya, config), staging, bunya, config)
    target = dev.data / "raw" / "bunya" / "sim_v2"
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, target)
    return _wait_for_run(dev, **{"segpair/trigger": "new_data_version_sensor"})


def _require_sensor_success(run: dict) -> None:
    if run["status"] != "SUCCESS":
        pytest.skip(
            "the sensor's run of sim_v2|bunya did not succeed; "
            "test_sensor_materializes_a_dropped_data_version_once reports why"
        )


def test_sensor_materializes_a_dropped_data_version_once(dev, sensor_run):
    assert sensor_run["status"] == "SUCCESS", dev.log.read_text()[-4000:]
    assert sensor_run["jobName"] == "segpair_bunya_job"
    assert {"key": "dagster/partition", "value": PARTITION} in sensor_run["tags"]
    assert (dev.data / "processed/bunya/sim_v2/segment_pairs.parquet").exists()
    latest = ModelHistory(dev.data / "models/bunya/sim_v2/kmer_aa3").resolve()
    assert (latest / "model.pt").exists() and (latest / "isolate_summary.csv").exists()
    time.sleep(8)  # more sensor ticks: the folder is known now, nothing new
    assert len(_runs(dev, **{"segpair/trigger": "new_data_version_sensor"})) == 1
    assert "DeprecationWarning" not in dev.log.read_text()


def test_browser_launches_a_materialization_and_sees_it_succeed(dev, sensor_run):
    require_browser()
    from selenium.webdriver.common.by import By

    _require_sensor_success(sensor_run)
    before = {r["runId"] for r in _runs(dev, **{"dagster/partition": PARTITION})}
    driver = start_browser()
    base = f"http://127.0.0.1:{dev.port}"
    try:
        driver.get(f"{base}/asset-groups")
        # the lineage graph, with segpair's asset groups in it
        for group in ("preprocessing", "embeddings", "pairs", "classifiers", "language_models"):
            wait_for_text(driver, group)
        time.sleep(2)
        for skip in driver.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
            skip.click()  # the first-visit community dialog
        screenshot(driver, "asset_graph.png")

        driver.get(f"{base}/assets/protein_final")
        driver.find_element(By.XPATH, "//button[normalize-space()='Materialize…']").click()
        dialog = driver.find_element(By.CSS_SELECTOR, "[role=dialog]")
        # dimensions in name order: data_version, then virus
        for value in ("sim_v2", "bunya"):
            _choose_partition(driver, dialog, value)
        driver.find_element(By.XPATH, "//button[normalize-space()='Launch 1 run']").click()

        deadline = time.time() + 240
        new = []
        while time.time() < deadline and not new:
            new = [r for r in _runs(dev, **{"dagster/partition": PARTITION})
                   if r["runId"] not in before]  # fmt: skip
            time.sleep(1)
        assert new, "the browser's launch created no run"
        run_id = new[0]["runId"]
        driver.get(f"{base}/runs/{run_id}")
        wait_for_text(driver, "Success", timeout=240)
        screenshot(driver, "materialization_succeeded.png")
        status = _wait_for_run(dev, **{"dagster/partition": PARTITION})
        assert status["runId"] == run_id and status["status"] == "SUCCESS"
    except Exception:
        screenshot(driver, "browser_test_failure.png")
        raise
    finally:
        driver.quit()


def _link(driver, *href_parts: str):
    """The first link shown whose address holds every one of `href_parts`."""
    from selenium.webdriver.common.by import By

    css = "a" + "".join(f"[href*='{part}']" for part in href_parts)
    return wait_until(
        driver, lambda d: [a for a in d.find_elements(By.CSS_SELECTOR, css) if a.is_displayed()],
        f"no link to {href_parts}",
    )[0]  # fmt: skip


def _click_and_follow(driver, link) -> None:
    """Click a link; where it opens a new tab (target=_blank), continue in that tab. Each
    browser is a first visit to Dagster, whose community dialog may pop up over the page."""
    for skip in driver.find_elements("xpath", "//button[normalize-space()='Skip']"):
        skip.click()
    before = set(driver.window_handles)
    link.click()
    time.sleep(1)
    opened = set(driver.window_handles) - before
    if opened:
        driver.switch_to.window(opened.pop())


def _images_loaded(driver, src_part: str) -> int:
    return driver.execute_script(
        "return [...document.images].filter(i => i.src.includes(arguments[0])"
        " && i.complete && i.naturalWidth > 0).length;", src_part)  # fmt: skip


def test_browser_goes_from_the_classifier_to_its_mlflow_run_and_back(dev, sensor_run):
    """Dagster -> MLflow: the classifier's verdict, plots and run link; MLflow -> Dagster:
    the run's description links to the Dagster run and the asset partition."""
    require_browser()
    asset = "pair_classifier_kmer_aa3"
    _require_sensor_success(sensor_run)
    base, mlflow_ui = f"http://127.0.0.1:{dev.port}", dev.mlflow_url
    driver = start_browser()
    try:
        driver.get(f"{base}/assets/{asset}?view=partitions&partition=sim_v2%7Cbunya")
        wait_for_text(driver, "best baseline", timeout=90)  # the summary, shown inline
        assert wait_until(driver, lambda d: _images_loaded(d, f"{mlflow_ui}/get-artifact") >= 4,
                          "the plots from the MLflow UI did not load")  # fmt: skip
        screenshot(driver, "dagster_classifier_verdict.png")
        plot = driver.find_element("css selector", f"img[src*='{mlflow_ui}/get-artifact']")
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", plot)
        screenshot(driver, "dagster_classifier_plots.png")
        experiment = _link(driver, f"{mlflow_ui}/#/experiments/", "/runs?").get_attribute("href")
        _click_and_follow(driver, _link(driver, f"{mlflow_ui}/#/experiments/", "/runs/"))
        wait_for_text(driver, "kmer_aa3 GP-N+RdRp-GP bunya/sim_v2", timeout=90)
        wait_for_text(driver, "Materialized by Dagster run")  # the description's first line
        dagster_run = sensor_run["runId"]
        back = _link(driver, f"{base}/runs/{dagster_run}")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", back)
        screenshot(driver, "mlflow_run_from_dagster.png")
        _click_and_follow(driver, back)
        wait_until(driver, lambda d: d.current_url.startswith(f"{base}/runs/{dagster_run}"),
                   "the MLflow run's link did not open its Dagster run")  # fmt: skip
        wait_for_text(driver, "Success", timeout=90)
        screenshot(driver, "dagster_run_from_mlflow.png")

        driver.get(experiment)  # the classifier's other link: its experiment's runs
        for text in ("kmer_aa3 GP-N+RdRp-GP bunya/sim_v2", "embedder", "mlp_test_auc_r"):
            wait_for_text(driver, text, timeout=90)
        screenshot(driver, "mlflow_experiment_from_dagster.png")
    except Exception:
        screenshot(driver, "mlflow_links_failure.png")
        raise
    finally:
        driver.quit()
