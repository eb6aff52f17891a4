"""End to end with the real `dagster dev` (webserver + daemon): a data-version folder dropped
into the raw-data root is picked up by the sensor and materialized; then a browser opens the
asset graph, launches a materialization from the asset page and sees it succeed."""

from __future__ import annotations

import os
import time

import pytest

from segpair.simulator import SimulationConfig, simulate_population, write_data_version
from segpair_assets_tests.e2e.browser import (
    require_browser,
    screenshot,
    start_browser,
    wait_for_text,
    wait_until,
)
from segpair_assets_tests.e2e.test_webserver_e2e import DagsterDev

RUNS = """
query($filter: RunsFilter) { runsOrError(filter: $filter) { ... on Runs { results {
  runId status jobName tags { key value } } } } }"""
PARTITION = "sim_v2|bunya"


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ui_e2e")
    server = DagsterDev(tmp, {"SEGPAIR_SENSOR_INTERVAL_SECONDS": "5"})
    try:
        server.wait_until_loaded()
        yield server
    finally:
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


def test_sensor_materializes_a_dropped_data_version_once(dev, bunya):
    # write beside the root, then move in at once, as a finished copy would appear
    staging = dev.data / "staging" / "sim_v2"
    config = SimulationConfig(n_isolates=60, seed=3)
    write_data_version(simulate_population(bunya, config), staging, bunya, config)
    target = dev.data / "raw" / "bunya" / "sim_v2"
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, target)

    run = _wait_for_run(dev, **{"segpair/trigger": "new_data_version_sensor"})
    assert run["status"] == "SUCCESS", dev.log.read_text()[-4000:]
    assert run["jobName"] == "segpair_bunya_job"
    assert {"key": "dagster/partition", "value": PARTITION} in run["tags"]
    assert (dev.data / "processed/bunya/sim_v2/segment_pairs.parquet").exists()
    assert (dev.data / "models/bunya/sim_v2/kmer_aa3/model.pt").exists()
    assert (dev.data / "models/bunya/sim_v2/kmer_aa3/isolate_summary.csv").exists()
    time.sleep(12)  # two more sensor ticks: the folder is known now, nothing new
    assert len(_runs(dev, **{"segpair/trigger": "new_data_version_sensor"})) == 1
    assert "DeprecationWarning" not in dev.log.read_text()


def test_browser_launches_a_materialization_and_sees_it_succeed(dev):
    require_browser()
    from selenium.webdriver.common.by import By

    if not _runs(dev, **{"dagster/partition": PARTITION}):
        pytest.skip("needs the partition the sensor test materializes")
    before = {r["runId"] for r in _runs(dev, **{"dagster/partition": PARTITION})}
    driver = start_browser()
    base = f"http://127.0.0.1:{dev.port}"
    try:
        driver.get(f"{base}/asset-groups")
        # the lineage graph, with segpair's asset groups in it
        for group in ("preprocessing", "embeddings", "pairs", "models"):
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
