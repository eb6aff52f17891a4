"""End to end with the real daemon (`dagster-daemon run`, as `make ui` starts it) and the
instance settings `make` installs: a run of a new data version is killed with kill -9
(it would stay STARTED forever); run monitoring marks it failed and the data-version
sensor then requests the version."""

from __future__ import annotations

import os
import sys
import time

import dagster as dg
import yaml

from segpair_assets.partitions import partition_key
from segpair_assets_tests.assets.test_run_monitoring import (
    start_sleeping_run,
    version_folder,  # noqa: F401 - a fixture
    wait_for_worker,
)
from segpair_assets_tests.conftest import REPO_ROOT
from segpair_assets_tests.e2e.processes import Service


def _home(tmp_path):
    """The installed settings, with a 1 s monitoring poll (30 s shipped) and a paused run
    queue: the requested run waits there instead of materializing during the test."""
    settings = yaml.safe_load((REPO_ROOT / "instance" / "dagster.yaml").read_text())
    settings["run_monitoring"]["poll_interval_seconds"] = 1
    settings["concurrency"]["runs"]["max_concurrent_runs"] = 0
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(settings))
    return home


def _wait(what: str, predicate, daemon: Service, timeout: float = 90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.5)
    raise TimeoutError(f"{what} within {timeout}s:\n{daemon.log.read_text()[-4000:]}")


def test_the_daemon_fails_a_killed_run_and_the_sensor_requests_its_version(
    tmp_path,
    version_folder,  # noqa: F811
):
    home = _home(tmp_path)
    pk = str(partition_key("bunya", "sim_dead"))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        proc = start_sleeping_run(home, pk)
        run = wait_for_worker(instance, proc)
        proc.kill()
        proc.wait()
        env = {**os.environ, "DAGSTER_HOME": str(home), "SEGPAIR_DATA_ROOT": str(version_folder),
               "SEGPAIR_SENSOR_INTERVAL_SECONDS": "1"}  # fmt: skip
        daemon_bin = os.path.join(os.path.dirname(sys.executable), "dagster-daemon")
        daemon = Service([daemon_bin, "run", "-w", "workspace.yaml"], tmp_path / "daemon.log", env)
        try:
            failed = dg.RunsFilter(run_ids=[run.run_id], statuses=[dg.DagsterRunStatus.FAILURE])
            _wait("the killed run marked failed", lambda: instance.get_run_records(failed), daemon)
            sensor_runs = dg.RunsFilter(
                tags={"dagster/partition": pk, "segpair/trigger": "new_data_version_sensor"},
                statuses=[dg.DagsterRunStatus.QUEUED],  # the queue is paused (see _home)
            )
            (requested,) = _wait(
                "a run requested by the sensor, in the run queue",
                lambda: instance.get_run_records(sensor_runs),
                daemon,
            )
        finally:
            daemon.stop()
        failure = instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
        ).records
        assert "run worker (pid" in failure[0].event_log_entry.dagster_event.message
        assert requested.dagster_run.job_name == "segpair_bunya_job"
