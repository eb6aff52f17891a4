"""Refreshes: a sensor for new data-version folders, a weekly schedule, and eager automation.

- `new_data_version_sensor` watches `{data root}/raw/{virus}/`. A folder with a
  `manifest.toml` is complete (write the manifest last); one without is complete once
  its listing stayed unchanged for `stable_listing_seconds` (settings.py). It adds
  the data version partition and requests that virus's preset job for it, once: folders
  whose `protein_final` partition is materialized, or that it requested before, are left.
  Except when the version's latest run died (kill -9, out of memory: run monitoring in
  instance/dagster.yaml marks such a run failed): then it is requested again, up to
  `RERUN_LIMIT` times. A run that failed in a step is not (bad input fails again).
- `weekly_refresh_{virus}` (Mondays 03:00, off until turned on in the UI) re-runs the
  newest registered data version of the virus; the embedding caches make it cheap.
- With eager automation on (settings.py) the weight-free assets carry
  `AutomationCondition.eager()`, so a re-materialized upstream asset (say
  `protein_final` after a cleaning-rule change) pulls its downstream assets along.
"""

from __future__ import annotations

import json
import time

import dagster as dg

from resources.storage import SegpairStorage
from segpair.data_versions import (
    DataVersionFolder,
    complete_folders,
    latest_versions,
    scan_raw_root,
)
from segpair.provenance import content_fingerprint
from segpair_assets.jobs import virus_job_name
from segpair_assets.partitions import data_version_partitions, partition_key
from segpair_assets.settings import Settings

IN_PROGRESS = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
               dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]  # fmt: skip
# A requested version whose latest run died (kill -9, OOM, a lost machine: run monitoring
# or the code server marked it failed) is requested again, at most RERUN_LIMIT times.
# Dagster tags a failure with its reason; these mean the run's process died, not its code.
RERUN_LIMIT = 2
# The tag that carries an observation's data version (what observable source assets write).
DATA_VERSION_TAG = "dagster/data_version"
DIED = {None, "UNEXPECTED_TERMINATION", "START_TIMEOUT", "RUN_WORKER_RESTART", "UNKNOWN"}


def _partitions_in_progress(instance: dg.DagsterInstance) -> set[str]:
    records = instance.get_run_records(dg.RunsFilter(statuses=IN_PROGRESS), limit=1000)
    return {r.dagster_run.tags.get("dagster/partition", "") for r in records}


def _died(instance: dg.DagsterInstance, partition: str) -> dg.DagsterRun | None:
    """The partition's latest run if its process died; None if it ran, runs, or failed in
    a step (bad input fails the same way again: its error is in the UI)."""
    latest = instance.get_run_records(dg.RunsFilter(tags={"dagster/partition": partition}), 1)
    run = latest[0].dagster_run if latest else None
    dead = run and run.status == dg.DagsterRunStatus.FAILURE
    return run if dead and run.tags.get("dagster/failure_reason") in DIED else None


def _reruns(context, complete, requested, reruns: dict[str, int], busy: set[str]) -> list:
    """(folder, died run) for requested versions whose latest run died, within the limit."""
    out = []
    for f in complete:
        key, pk = f.key, str(partition_key(f.virus, f.version))
        if key not in requested or pk in busy or reruns.get(key, 0) >= RERUN_LIMIT:
            continue
        run = _died(context.instance, pk)
        if run is not None:
            reruns[key] = reruns.get(key, 0) + 1
            why = run.tags.get("dagster/failure_reason", "killed")
            context.log.warning(f"{key}: run {run.run_id} died ({why}: its process ended "
                                f"without finishing); requesting it again, {reruns[key]} of "
                                f"{RERUN_LIMIT}")  # fmt: skip
            out.append((f, run))
    return out


def _new_data_versions(context, storage: SegpairStorage, viruses, state, stable_seconds):
    """Complete raw folders not requested before, not materialized, not being run."""
    requested = set(state.get("requested", []))
    found, skipped = scan_raw_root(storage.root / "raw", viruses)
    for why in skipped:
        context.log.warning(f"skipped {why}")
    complete, pending = complete_folders(
        found, state.get("pending", {}), time.time(), stable_seconds
    )
    materialized = context.instance.get_materialized_partitions(dg.AssetKey("protein_final"))
    candidates = [
        f
        for f in complete
        if f.key not in requested and str(partition_key(f.virus, f.version)) not in materialized
    ]
    # A run already working on the partition (launched from the UI or CLI, which may be the
    # very run writing the demo folder) is left alone; the next tick looks again. A run
    # killed with kill -9 stays STARTED until run monitoring marks it failed.
    busy = _partitions_in_progress(context.instance)
    new = [f for f in candidates if str(partition_key(f.virus, f.version)) not in busy]
    return new, pending, requested, busy, complete


def _run_request(
    folder: DataVersionFolder, attempt: int = 0, died: dg.DagsterRun | None = None
) -> dg.RunRequest:
    tags = {"segpair/trigger": "new_data_version_sensor", "segpair/raw_folder": str(folder.path)}
    return dg.RunRequest(
        # a run key is used once: each re-request after a dead run has its own
        run_key=f"data_version:{folder.key}" + (f":rerun{attempt}" if attempt else ""),
        partition_key=partition_key(folder.virus, folder.version),
        job_name=virus_job_name(folder.virus),
        tags={**tags, "segpair/rerun_of": died.run_id} if died else tags,
    )


def _observations(found: list[DataVersionFolder], known: set[str], seen: dict[str, str]):
    """raw_files observations (content fingerprint as the data version) for registered
    folders whose listing changed since the last tick; updates `seen` (key -> listing)."""
    events = []
    for f in found:
        if f.version not in known or seen.get(f.key) == f.fingerprint:
            continue
        seen[f.key] = f.fingerprint
        events.append(dg.AssetObservation(
            asset_key="raw_files", partition=str(partition_key(f.virus, f.version)),
            tags={DATA_VERSION_TAG: content_fingerprint(f.path)},
        ))  # fmt: skip
    return events


def language_model_note(settings: Settings) -> str:
    """What the refresh does with language models, for descriptions and the sensor's log."""
    if settings.models:
        return (f"With weights configured, the run also refreshes {sorted(settings.models)}: "
                "cache (reusing earlier versions' vectors), classifier and scores.")  # fmt: skip
    return ("Language-model assets are not refreshed: no weights are configured (set "
            "SEGPAIR_ESM2_MODEL, SEGPAIR_FASTESM2_MODEL or SEGPAIR_NT_MODEL to a hub id or a "
            "local directory).")  # fmt: skip


def build_new_data_version_sensor(settings: Settings, virus_jobs: list) -> dg.SensorDefinition:
    viruses = settings.registry().names

    @dg.sensor(
        name="new_data_version_sensor",
        jobs=virus_jobs,
        minimum_interval_seconds=settings.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Watches data/raw/{virus}/ for new data-version folders (complete: "
        "manifest.toml present, or the listing unchanged for SEGPAIR_STABLE_LISTING_SECONDS); "
        "adds the partition and launches the virus's preset job for it. A known folder whose "
        "files change is observed (raw_files gets a new data version), so protein_final "
        "shows stale in the UI; it is not re-run by itself. " + language_model_note(settings),
    )
    def new_data_version_sensor(
        context: dg.SensorEvaluationContext, storage: SegpairStorage
    ) -> dg.SensorResult:
        state = json.loads(context.cursor) if context.cursor else {}
        new, pending, requested, busy, complete = _new_data_versions(
            context, storage, viruses, state, settings.stable_listing_seconds
        )
        reruns = dict(state.get("reruns", {}))
        again = _reruns(context, complete, requested, reruns, busy)
        known = set(context.instance.get_dynamic_partitions(data_version_partitions.name))
        to_add = sorted({f.version for f in new} - known)
        for f in new:
            context.log.info(f"new data version {f.key} ({f.path}): requesting "
                             f"{virus_job_name(f.virus)}")  # fmt: skip
        if pending:
            context.log.info(f"waiting for a stable listing: {sorted(pending)}")
        seen = dict(state.get("observed", {}))
        found, _skipped = scan_raw_root(storage.root / "raw", viruses)
        observations = _observations(found, known, seen)
        state = {"requested": sorted(requested | {f.key for f in new}), "pending": pending,
                 "reruns": reruns, "observed": seen}  # fmt: skip
        adds = [data_version_partitions.build_add_request(to_add)] if to_add else []
        return dg.SensorResult(
            run_requests=[_run_request(f) for f in new]
            + [_run_request(f, reruns[f.key], run) for f, run in again],
            dynamic_partitions_requests=adds,
            asset_events=observations,
            cursor=json.dumps(state),
        )

    return new_data_version_sensor


def build_weekly_refresh(virus: str, job, settings: Settings) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"weekly_refresh_{virus}",
        cron_schedule="0 3 * * 1",
        job=job,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"Mondays 03:00: re-run the newest registered data version of {virus} with "
        "its preset job (off until turned on in the UI; cached embeddings make it cheap). "
        + language_model_note(settings),
    )
    def _weekly(context: dg.ScheduleEvaluationContext, storage: SegpairStorage):
        found, _skipped = scan_raw_root(storage.root / "raw", [virus])
        known = set(context.instance.get_dynamic_partitions(data_version_partitions.name))
        latest = latest_versions([f for f in found if f.version in known]).get(virus)
        if latest is None:
            return dg.SkipReason(f"no registered data version of {virus} in {storage.root / 'raw'}")
        stamp = context.scheduled_execution_time.strftime("%Y-%m-%d")
        return dg.RunRequest(
            run_key=f"weekly:{stamp}:{latest.key}",
            partition_key=partition_key(virus, latest.version),
            tags={"segpair/trigger": f"weekly_refresh_{virus}"},
        )

    return _weekly


def build_weekly_refresh_schedules(settings: Settings, virus_jobs: list) -> list:
    job_of = {job.name: job for job in virus_jobs}
    viruses = settings.registry().names
    return [build_weekly_refresh(v, job_of[virus_job_name(v)], settings) for v in viruses]
