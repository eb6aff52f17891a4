"""Dead runs and same-partition runs, with the instance settings `make` installs
(instance/dagster.yaml): a run whose process is killed with kill -9 is found by run
monitoring's health check and marked failed, after which the data-version sensor requests
the version again; runs of one partition queue behind each other."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time

import dagster as dg
import pytest
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._daemon.monitoring.run_monitoring import monitor_started_run

from resources.storage import SegpairStorage
from segpair.simulator import SimulationConfig, simulate_population, write_data_version
from segpair_assets.definitions import build_definitions
from segpair_assets.partitions import partition_key
from segpair_assets.run_launcher import SegpairRunLauncher, run_worker
from segpair_assets_tests.conftest import REPO_ROOT

# A run of one partition, executed in its own process as `segpair materialize` does, whose
# one step sleeps: it stays STARTED until killed.
SLEEPING_RUN = """
import sys, time
import dagster as dg

@dg.op
def sleep():
    time.sleep(120)

@dg.job
def segpair_bunya_job():
    sleep()

with dg.DagsterInstance.get() as instance:
    segpair_bunya_job.execute_in_process(
        instance=instance, tags={"dagster/partition": sys.argv[1]}
    )
"""


def installed_instance(home) -> dg.DagsterInstance:
    """An instance with the settings `make` copies into .dagster_home/."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "instance" / "dagster.yaml", home / "dagster.yaml")
    return dg.DagsterInstance.from_config(str(home))


def test_the_installed_settings_turn_on_monitoring_and_one_run_per_partition(tmp_path):
    with installed_instance(tmp_path / "home") as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_resume_run_attempts == 0
        launcher = instance.run_launcher
        assert isinstance(launcher, SegpairRunLauncher)
        assert isinstance(launcher, dg.DefaultRunLauncher)  # launches as Dagster's default
        assert launcher.supports_check_run_worker_health
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert list(limits) == [
            {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
        ]


def start_sleeping_run(home, partition: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SLEEPING_RUN, partition],
        env={**os.environ, "DAGSTER_HOME": str(home)}, cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip


def wait_for_worker(instance, proc, timeout: float = 60) -> dg.DagsterRun:
    deadline = time.time() + timeout
    while time.time() < deadline:
        records = instance.get_run_records(limit=1)
        if records and run_worker(instance, records[0].dagster_run.run_id):
            return records[0].dagster_run
        assert proc.poll() is None, "the sleeping run exited"
        time.sleep(0.2)
    raise TimeoutError("the sleeping run did not start")


@pytest.fixture
def version_folder(tmp_path, bunya):
    config = SimulationConfig(n_isolates=30, seed=5)
    folder = tmp_path / "data" / "raw" / "bunya" / "sim_dead"
    write_data_version(simulate_population(bunya, config), folder, bunya, config)
    return tmp_path / "data"


def test_a_run_killed_with_sigkill_is_marked_failed_and_its_version_requested_again(
    tmp_path, version_folder
):
    pk = str(partition_key("bunya", "sim_dead"))
    home = tmp_path / "home"
    with installed_instance(home) as instance:
        proc = start_sleeping_run(home, pk)
        try:
            run = wait_for_worker(instance, proc)
            launcher = instance.run_launcher
            assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
            defs = build_definitions(str(version_folder))
            sensor = defs.resolve_sensor_def("new_data_version_sensor")
            context = dg.build_sensor_context(
                instance=instance, definitions=defs,
                resources={"storage": SegpairStorage(data_root=str(version_folder))},
            )  # fmt: skip
            assert not sensor(context).run_requests  # a run of the version is in progress
        finally:
            proc.kill()
            proc.wait()
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
        assert launcher.check_run_worker_health(run).status == WorkerStatus.FAILED
        # a pid on another machine, or runs started elsewhere: not judged from here
        remote = run.with_tags({**run.tags, GRPC_INFO_TAG: '{"host": "node7", "port": 4000}'})
        assert launcher.check_run_worker_health(remote).status == WorkerStatus.RUNNING
        elsewhere = SegpairRunLauncher(run_workers_on_this_host=False)
        elsewhere.register_instance(instance)
        assert elsewhere.check_run_worker_health(run).status == WorkerStatus.RUNNING
        # what the run monitoring daemon does every poll_interval_seconds
        record = instance.get_run_record_by_id(run.run_id)
        monitor_started_run(instance, None, record, logging.getLogger("test"))
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        (request,) = sensor(context).run_requests
        assert request.partition_key == partition_key("bunya", "sim_dead")
