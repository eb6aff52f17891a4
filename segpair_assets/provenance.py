"""Provenance on every materialization: the asset calls `record_provenance` once, and
the result's metadata (and its MLflow run's tags) say which code, packages, config,
input data and seeds made it (segpair.provenance)."""

from __future__ import annotations

import dagster as dg

from resources.reproducibility import Reproducibility
from resources.storage import SegpairStorage
from segpair.provenance import Provenance, provenance
from segpair_assets.partitions import virus_and_version

# Metadata keys, for tests and for readers of the event log
CODE_KEY = "provenance/git_commit"
CONFIG_KEY = "provenance/config_hash"
DATA_KEY = "provenance/data_fingerprint"
SEEDS_KEY = "provenance/seeds"
PACKAGES_KEY = "provenance/package_versions"


def provenance_metadata(prov: Provenance) -> dict:
    return {
        CODE_KEY: prov.code.label,
        "provenance/git_dirty": str(prov.code.dirty).lower(),
        CONFIG_KEY: prov.config_hash,
        DATA_KEY: prov.data_fingerprint,
        SEEDS_KEY: dg.MetadataValue.json({"master_seed": prov.master_seed, **prov.seeds}),
        PACKAGES_KEY: dg.MetadataValue.json(prov.packages),
    }


def provenance_of(
    context: dg.AssetExecutionContext | dg.OpExecutionContext, storage: SegpairStorage,
    reproducibility: Reproducibility, config: object = None, seeds: dict[str, int] | None = None,
) -> Provenance:  # fmt: skip
    """The provenance of this partition's materialization (for an op inside a graph asset,
    which adds it to its output's metadata itself)."""
    virus, version = virus_and_version(context)
    return provenance(config, storage.raw_dir(virus, version), reproducibility.master_seed, seeds)


def record_provenance(
    context: dg.AssetExecutionContext, storage: SegpairStorage, reproducibility: Reproducibility,
    config: object = None, seeds: dict[str, int] | None = None,
) -> Provenance:  # fmt: skip
    """Add the provenance of this partition's materialization to its metadata; returns it
    (`.flat()` gives the MLflow tags)."""
    prov = provenance_of(context, storage, reproducibility, config, seeds)
    context.add_asset_metadata(provenance_metadata(prov))
    return prov
