"""Partitions: every asset is per virus (static, from the registry) x data_version (dynamic)."""

from __future__ import annotations

import warnings

import dagster as dg

from segpair.data_versions import check_data_version_name
from segpair_assets.settings import current_settings

DATA_VERSION_PARTITIONS_NAME = "data_version"
# The run tag of a virus's preset job: its runs refuse a partition of another virus.
VIRUS_TAG = "segpair/virus"

# The registry's viruses, from the settings of the process that loads the code location.
virus_partitions = dg.StaticPartitionsDefinition(current_settings().registry().names)
data_version_partitions = dg.DynamicPartitionsDefinition(name=DATA_VERSION_PARTITIONS_NAME)
virus_data_version_partitions = dg.MultiPartitionsDefinition(
    {"virus": virus_partitions, "data_version": data_version_partitions}
)


def partition_key(virus: str, data_version: str) -> dg.MultiPartitionKey:
    check_data_version_name(data_version)
    return dg.MultiPartitionKey({"virus": virus, "data_version": data_version})


def partition_tags(virus: str, data_version: str) -> dict[str, str]:
    """The run tags that target one partition, as the UI sets them when launching one."""
    return {
        "dagster/partition": str(partition_key(virus, data_version)),
        "dagster/partition/virus": virus,
        "dagster/partition/data_version": data_version,
    }


def virus_and_version(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
) -> tuple[str, str]:
    """The run's (virus, data version). Assets ask this before they build a path, so a
    data version added in the UI or through the API that is not a plain name fails the
    run here, before anything is written (Dagster accepts any dynamic partition key)."""
    virus, version = split_partition_key(context.partition_key)
    try:
        run = context.run
    except dg.DagsterError:  # invoked directly, outside a run
        run = None
    job_virus = run.tags.get(VIRUS_TAG) if run is not None else None
    if job_virus is not None and job_virus != virus:
        raise ValueError(wrong_virus_message(run.job_name, job_virus, virus, version))
    return virus, check_data_version_name(version)


def split_partition_key(key: str | dg.MultiPartitionKey) -> tuple[str, str]:
    """(virus, data version) of a partition key, or of its string form `version|virus`."""
    if isinstance(key, str) and "|" in key:  # launched with the plain partition tag only
        key = virus_data_version_partitions.get_partition_key_from_str(key)
    if not isinstance(key, dg.MultiPartitionKey):
        raise ValueError(f"expected a virus x data_version partition, got {key!r}")
    dims = key.keys_by_dimension
    return dims["virus"], dims["data_version"]


def virus_job_name(virus: str) -> str:
    """The virus's preset job (jobs.py); named here, where its runs' partitions are checked."""
    return f"segpair_{virus}_job"


def wrong_virus_message(job: str, job_virus: str, virus: str, version: str) -> str:
    return (
        f"{job} runs {job_virus} partitions only, and {version}|{virus} is a {virus} "
        f"partition: pick virus {job_virus}, or launch {virus_job_name(virus)} (or "
        "segpair_main_job, or materialize from the asset graph)"
    )


def partitioned_asset_check(**kwargs):
    """`dg.asset_check` on the virus x data_version partitions, so the UI shows a result
    per partition. Partitioned checks are marked "preview" in Dagster 1.13; that warning
    is silenced here, in one place, because per-partition results are what users need."""

    def decorate(fn):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.PreviewWarning)
            return dg.asset_check(partitions_def=virus_data_version_partitions, **kwargs)(fn)

    return decorate
