"""Runs launched through Dagster's webserver, as the UI launches them.

A run `segpair materialize` executes in its own process is recorded without the code
location it came from: the UI lists it under Runs, but not under its job or in Overview,
and re-executes it with a warning. A run launched here goes the UI's way (GraphQL, through
Dagster's public client): the instance's run queue, the code location's run launcher,
the job as the location defines it, so it shows under Overview, Jobs and Re-execute like a
UI launch. Its events are read back from the instance and printed as they come.

`segpair demo` starts a temporary `dagster dev` (webserver and daemon, on a free loopback
port, its log in $DAGSTER_HOME/segpair_demo_dagster_dev.log) for its runs and stops it
when they end; `--webserver URL` uses one that is running (`make ui`'s) instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from segpair_assets.run_console import event_line

# workspace.yaml's code location, the one `make ui` serves
LOCATION, REPOSITORY = "segpair", "__repository__"
WORKSPACE = Path(__file__).resolve().parents[1] / "workspace.yaml"
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE,
            dg.DagsterRunStatus.CANCELED}  # fmt: skip
IN_PROGRESS = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
               dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]  # fmt: skip
LOADED = (
    "{ workspaceOrError { ... on Workspace { locationEntries { name "
    "locationOrLoadError { __typename ... on PythonError { message } } } } } }"
)


class LaunchError(RuntimeError):
    """The webserver could not be started or reached, or refused the launch."""


def _graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql", data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["data"]


def wait_until_loaded(url: str, timeout: float, alive=lambda: True) -> None:
    """Until the webserver at `url` has the segpair code location loaded."""
    deadline = time.time() + timeout
    while time.time() < deadline and alive():
        try:
            entries = _graphql(url, LOADED)["workspaceOrError"]["locationEntries"]
        except (OSError, ValueError, KeyError, TypeError):  # not up yet, or not Dagster's
            entries = []
        entry = next((e for e in entries if e["name"] == LOCATION), None)
        state = (entry or {}).get("locationOrLoadError") or {}
        if state.get("__typename") == "RepositoryLocation":
            return
        if state.get("__typename") == "PythonError":
            raise LaunchError(f"code location {LOCATION} failed to load: {state['message']}")
        time.sleep(1)
    raise LaunchError(f"no Dagster webserver with code location {LOCATION!r} at {url}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stoppable_by_ctrl_c() -> None:
    """In the child: SIGINT as by default. A command started in the background of a script
    (`make demo &`) ignores it, and so would `dagster dev`, which stops on nothing else."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class TemporaryWebserver:
    """`dagster dev` on workspace.yaml (webserver and daemon, loopback, a free port),
    started at once so that it loads while the caller prepares; stopped on leaving the
    `with` block, with its code server and run workers (its own session)."""

    def __init__(self, dagster_home: str):
        if not WORKSPACE.exists():
            raise LaunchError(f"no {WORKSPACE}: launch from a segpair checkout, or pass "
                              "--webserver URL of a running `make ui`")  # fmt: skip
        port, self.log = free_port(), Path(dagster_home) / "segpair_demo_dagster_dev.log"
        self.started = time.time()
        self.url = f"http://127.0.0.1:{port}"
        dagster = str(Path(sys.executable).with_name("dagster"))
        args = [dagster, "dev", "-w", str(WORKSPACE), "-h", "127.0.0.1", "-p", str(port)]
        print(f"starting dagster dev on port {port} for the runs (log: {self.log})", flush=True)
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                args, cwd=WORKSPACE.parent, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_stoppable_by_ctrl_c,
            )  # fmt: skip

    def wait_until_loaded(self, timeout: float = 180) -> None:
        try:
            wait_until_loaded(self.url, timeout, lambda: self.proc.poll() is None)
        except LaunchError as err:
            tail = self.log.read_text()[-2000:]
            raise LaunchError(f"{err}; dagster dev's log ends:\n{tail}") from None

    def __enter__(self) -> TemporaryWebserver:
        return self

    def __exit__(self, *exc) -> None:
        # Ctrl-C, as `dagster dev` expects (it ignores SIGTERM), then SIGKILL
        for sig, wait in ((signal.SIGINT, 5), (signal.SIGKILL, 10)):
            if self.proc.poll() is not None:
                return
            with contextlib.suppress(subprocess.TimeoutExpired, ProcessLookupError):
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=wait)


def launch(url: str, job: str, run_config: dict, tags: dict, assets: list[str] | None) -> str:
    """Submit one run through the webserver's GraphQL API; its run id."""
    from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

    host_port = url.split("://", 1)[-1].rstrip("/")
    host, _, port = host_port.partition(":")
    client = DagsterGraphQLClient(host, port_number=int(port) if port else None)
    try:
        return client.submit_job_execution(
            job, repository_location_name=LOCATION, repository_name=REPOSITORY,
            run_config=run_config, tags=tags, asset_selection=assets,
        )  # fmt: skip
    except DagsterGraphQLClientError as err:
        raise LaunchError(f"the webserver at {url} refused the run: {err}") from None


def sensor_runs_in_progress(instance: dg.DagsterInstance, since: float) -> list[dg.DagsterRun]:
    """Runs a sensor launched since `since` (a timestamp) that have not ended."""
    records = instance.get_run_records(dg.RunsFilter(
        statuses=IN_PROGRESS, tags={"dagster/sensor_name": "new_data_version_sensor"},
        created_after=datetime.fromtimestamp(since, UTC),
    ))  # fmt: skip
    return [r.dagster_run for r in records]


class RunFollower:
    """Prints a launched run's events as they are stored, one line each (`prefix` first:
    which run, when several are followed at once)."""

    def __init__(self, instance: dg.DagsterInstance, run_id: str, prefix: str = ""):
        self.instance, self.run_id, self.prefix = instance, run_id, prefix
        self.cursor: str | None = None
        self.events: list = []  # the run's DagsterEvents, for the failure summary
        self.run: dg.DagsterRun | None = None

    def poll(self) -> bool:
        """Print what is new; True once the run has ended and every event is printed."""
        run = self.instance.get_run_by_id(self.run_id)  # before the events: none missed
        batch = self.instance.get_records_for_run(self.run_id, cursor=self.cursor)
        for record in batch.records:
            entry = record.event_log_entry
            if entry.dagster_event is not None:
                self.events.append(entry.dagster_event)
            if (line := event_line(entry)) is not None:
                print(f"{self.prefix}{line}", file=sys.stderr, flush=True)
        self.cursor, self.run = batch.cursor, run
        return run is not None and run.status in FINISHED and not batch.has_more


def follow(followers: list[RunFollower], on_end, poll_seconds: float = 1.0) -> None:
    """Until every run has ended; `on_end(follower)` as each one does."""
    pending = list(followers)
    while pending:
        for follower in list(pending):
            if follower.poll():
                pending.remove(follower)
                on_end(follower)
        if pending:
            time.sleep(poll_seconds)
