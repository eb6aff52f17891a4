"""Partitions: every asset is per virus (static, from the registry) x data_version (dynamic)."""

from __future__ import annotations

import dagster as dg

from segpair.registry import load_registry

DATA_VERSION_PARTITIONS_NAME = "data_version"

virus_partitions = dg.StaticPartitionsDefinition(load_registry().names)
data_version_partitions = dg.DynamicPartitionsDefinition(name=DATA_VERSION_PARTITIONS_NAME)
virus_data_version_partitions = dg.MultiPartitionsDefinition(
    {"virus": virus_partitions, "data_version": data_version_partitions}
)


def partition_key(virus: str, data_version: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"virus": virus, "data_version": data_version})


def virus_and_version(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
) -> tuple[str, str]:
    key = context.partition_key
    if not isinstance(key, dg.MultiPartitionKey):
        raise ValueError(f"expected a virus x data_version partition, got {key!r}")
    dims = key.keys_by_dimension
    return dims["virus"], dims["data_version"]
