"""The run launcher of segpair's instance (instance/dagster.yaml): Dagster's
DefaultRunLauncher (one process per run, started by the code server) plus the run-worker
health check run monitoring needs to find dead runs.

Why: Dagster's DefaultRunLauncher has no health check, so its run monitoring only times
out runs stuck STARTING or CANCELING. A run whose process was killed (kill -9, the out
of memory killer, a killed `segpair materialize`, a `dagster dev` killed with its code
server) stays STARTED forever: the sensor takes its data version for "in progress", and
the run queue holds back every later run of that partition. Here the run monitoring
daemon asks, every `poll_interval_seconds`, whether each STARTED run's worker process
still exists; a dead one's run is marked failed (the sensor then requests the version
again, see automation.py).

The run worker's pid is the one it reports in its first engine event ("Started process
for run (pid: N)", or "Executing steps in process (pid: N)" for `segpair materialize`).
A pid means something only on its own machine: `run_workers_on_this_host: true` (the
default: `dagster dev`, and the Celery set-up, start every run worker on the daemon's
host) says so; set it false where runs start on other machines, and run monitoring
then only applies its timeouts.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG

from segpair.liveness import process_alive

LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


def run_worker(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """(pid, when it reported itself) of the run's worker process, None before it has."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=5
    ).records
    for record in records:
        data = record.event_log_entry.dagster_event.engine_event_data
        pid = data.metadata.get("pid") if data else None
        if pid is not None:
            return int(pid.value), record.event_log_entry.timestamp
    return None


class SegpairRunLauncher(dg.DefaultRunLauncher):
    def __init__(self, inst_data=None, run_workers_on_this_host: bool = True):
        super().__init__(inst_data=inst_data)
        self._on_this_host = run_workers_on_this_host

    @classmethod
    def config_type(cls) -> dict:
        return {
            "run_workers_on_this_host": dg.Field(
                bool,
                default_value=True,
                is_required=False,
                description="Every run worker runs on the machine of the run monitoring "
                "daemon, so their pids can be checked (false: only timeouts apply).",
            )
        }

    @classmethod
    def from_config_value(cls, inst_data, config_value: dict[str, Any]):
        return cls(inst_data=inst_data, **config_value)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def _worker_is_local(self, run: dg.DagsterRun) -> bool:
        # launched by a code server: the worker runs on the code server's host
        host = (
            json.loads(run.tags[GRPC_INFO_TAG]).get("host") if GRPC_INFO_TAG in run.tags else None
        )
        local = host is None or host in LOOPBACK or host == socket.gethostname()
        return self._on_this_host and local

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        worker = run_worker(self._instance, run.run_id)
        if worker is None or not self._worker_is_local(run):
            # not started yet (the start timeout covers that), or not ours to judge
            return CheckRunHealthResult(WorkerStatus.RUNNING, "run worker not checked")
        pid, known_at = worker
        if process_alive(pid, known_at):
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"run worker pid {pid} is alive")
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"its run worker (pid {pid} on {socket.gethostname()}) is gone: killed, or "
            "out of memory. Run it again; what it wrote completely is kept",
        )
