"""Refreshes: a sensor for new data-version folders, a weekly schedule, and eager automation.

- `new_data_version_sensor` watches `{data root}/raw/{virus}/`. A folder with a
  `manifest.toml` is complete (write the manifest last); one without is complete once
  its listing stayed unchanged for SEGPAIR_STABLE_LISTING_SECONDS (default 120). It adds
  the data version partition and requests that virus's preset job for it, once: folders
  whose `protein_final` partition is materialized, or that it requested before, are left.
- `weekly_refresh_{virus}` (Mondays 03:00, off until turned on in the UI) re-runs the
  newest registered data version of the virus; the embedding caches make it cheap.
- With SEGPAIR_EAGER_AUTOMATION=1 the weight-free assets carry
  `AutomationCondition.eager()`, so a re-materialized upstream asset (say
  `protein_final` after a cleaning-rule change) pulls its downstream assets along.
"""

from __future__ import annotations

import json
import os
import time

import dagster as dg

from resources.storage import SegpairStorage
from segpair.data_versions import complete_folders, latest_versions, scan_raw_root
from segpair.registry import load_registry
from segpair_assets.jobs import virus_job_name, virus_jobs
from segpair_assets.partitions import data_version_partitions, partition_key

STABLE_LISTING_SECONDS = float(os.environ.get("SEGPAIR_STABLE_LISTING_SECONDS", "120"))
SENSOR_INTERVAL_SECONDS = int(os.environ.get("SEGPAIR_SENSOR_INTERVAL_SECONDS", "60"))
EAGER_AUTOMATION_ENV = "SEGPAIR_EAGER_AUTOMATION"


def eager_automation_enabled() -> bool:
    return os.environ.get(EAGER_AUTOMATION_ENV, "").lower() in ("1", "true", "yes")


def _job_of(virus: str) -> dg.UnresolvedAssetJobDefinition:
    return next(j for j in virus_jobs if j.name == virus_job_name(virus))


IN_PROGRESS = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
               dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]  # fmt: skip


def _partitions_in_progress(instance: dg.DagsterInstance) -> set[str]:
    records = instance.get_run_records(dg.RunsFilter(statuses=IN_PROGRESS), limit=1000)
    return {r.dagster_run.tags.get("dagster/partition", "") for r in records}


@dg.sensor(
    name="new_data_version_sensor",
    jobs=virus_jobs,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches data/raw/{virus}/ for new data-version folders (complete: manifest.toml "
    "present, or the listing unchanged for SEGPAIR_STABLE_LISTING_SECONDS); adds the partition "
    "and launches the virus's preset job for it. Known folders do nothing.",
)
def new_data_version_sensor(
    context: dg.SensorEvaluationContext, storage: SegpairStorage
) -> dg.SensorResult:
    state = json.loads(context.cursor) if context.cursor else {}
    requested = set(state.get("requested", []))
    found, skipped = scan_raw_root(storage.root / "raw", load_registry().names)
    for why in skipped:
        context.log.warning(f"skipped {why}")
    complete, pending = complete_folders(
        found, state.get("pending", {}), time.time(), STABLE_LISTING_SECONDS
    )
    materialized = context.instance.get_materialized_partitions(dg.AssetKey("protein_final"))
    candidates = [
        f
        for f in complete
        if f.key not in requested and str(partition_key(f.virus, f.version)) not in materialized
    ]
    # A run already working on the partition (launched from the UI or CLI, which may be the
    # very run writing the demo folder) is left alone; the next tick looks again.
    busy = _partitions_in_progress(context.instance) if candidates else set()
    new = [f for f in candidates if str(partition_key(f.virus, f.version)) not in busy]
    known_versions = set(context.instance.get_dynamic_partitions(data_version_partitions.name))
    to_add = sorted({f.version for f in new} - known_versions)
    runs = [
        dg.RunRequest(
            run_key=f"data_version:{f.key}",
            partition_key=partition_key(f.virus, f.version),
            job_name=virus_job_name(f.virus),
            tags={"segpair/trigger": "new_data_version_sensor", "segpair/raw_folder": str(f.path)},
        )
        for f in new
    ]
    for f in new:
        job = virus_job_name(f.virus)
        context.log.info(f"new data version {f.key} ({f.path}): requesting {job}")
    if pending:
        context.log.info(f"waiting for a stable listing: {sorted(pending)}")
    state = {"requested": sorted(requested | {f.key for f in new}), "pending": pending}
    return dg.SensorResult(
        run_requests=runs,
        dynamic_partitions_requests=[data_version_partitions.build_add_request(to_add)]
        if to_add
        else [],
        cursor=json.dumps(state),
    )


def build_weekly_refresh(virus: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"weekly_refresh_{virus}",
        cron_schedule="0 3 * * 1",
        job=_job_of(virus),
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"Mondays 03:00: re-run the newest registered data version of {virus} with "
        "its preset job (off until turned on in the UI; cached embeddings make it cheap).",
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


weekly_refresh_schedules = [build_weekly_refresh(v) for v in load_registry().names]
