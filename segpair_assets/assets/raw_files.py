"""The raw files of each data version as an observable source: Dagster's record of what
`data/raw/{virus}/{data_version}/` holds, so a changed file shows `protein_final` and
everything downstream as stale in the UI."""

import warnings

import dagster as dg

from resources.storage import SegpairStorage
from resources.viruses import VirusRegistryResource
from segpair.provenance import content_fingerprint
from segpair_assets.partitions import (
    DATA_VERSION_PARTITIONS_NAME,
    partition_key,
    virus_data_version_partitions,
)


def raw_data_versions(instance: dg.DagsterInstance, storage: SegpairStorage, viruses: list[str]):
    """{partition key: DataVersion(content fingerprint)} of every registered data version
    with a raw folder."""
    versions = instance.get_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME)
    found = {}
    for virus in viruses:
        for version in versions:
            folder = storage.raw_dir(virus, version)
            if folder.is_dir():
                found[partition_key(virus, version)] = dg.DataVersion(content_fingerprint(folder))
    return found


# Observable sources are "beta" in Dagster 1.13, and the only way it offers to record a
# partitioned external input's data version; the warning says nothing a user can act on.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    observable_source = dg.observable_source_asset(
        partitions_def=virus_data_version_partitions,
        group_name="preprocessing",
        description=(
            "The files of data/raw/{virus}/{data_version}/ (outside Dagster: you or a "
            "download put them there). Observing reads every file and records its content "
            "fingerprint as the partition's data version; protein_final shows stale when it "
            "changes. The new-data-version sensor observes on every tick that finds a "
            "changed folder; 'Observe sources' in the UI does it by hand."
        ),
    )


@observable_source
def raw_files(
    context: dg.AssetExecutionContext, storage: SegpairStorage, viruses: VirusRegistryResource
) -> dg.DataVersionsByPartition:
    found = raw_data_versions(context.instance, storage, viruses.registry().names)
    context.log.info(f"observed {len(found)} raw data-version folders")
    return dg.DataVersionsByPartition(found)
