"""A language-model cache asset's trial runs through Dagster (tiny ESM-2): validate_only
records an observation and materializes nothing; max_sequences commits part of the cache,
counted, and the completeness check still holds."""

from __future__ import annotations

import dagster as dg

from resources.embedders import embedders_for
from segpair.embeddings.cache import CachePaths
from segpair.embeddings.catalog import CATALOG
from segpair_assets.asset_checks import build_embedding_checks
from segpair_assets.assets.embeddings import build_embedding_assets
from segpair_assets.assets.preprocessing import protein_final
from segpair_assets.definitions import build_definitions
from segpair_assets.partitions import DATA_VERSION_PARTITIONS_NAME, partition_key
from segpair_assets_tests.tiny_models import build_tiny_esm2

NAME = "master_embeddings_esm2"


def _run(instance, data_root, model, config: dict):
    if not instance.has_dynamic_partition(DATA_VERSION_PARTITIONS_NAME, "simulated_v1"):
        instance.add_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME, ["simulated_v1"])
    resources = {
        **build_definitions(str(data_root)).resources,
        "embedders": embedders_for({"esm2": str(model)}),
    }
    return dg.materialize(
        [protein_final, *build_embedding_assets(CATALOG), *build_embedding_checks(CATALOG)],
        instance=instance,
        resources=resources,
        partition_key=partition_key("bunya", "simulated_v1"),
        selection=dg.AssetSelection.assets("protein_final", NAME),
        run_config={"ops": {NAME: {"config": config}}},
    )


def test_validate_only_observes_and_materializes_nothing(dagster_instance, data_root, tmp_path):
    model = build_tiny_esm2(tmp_path / "esm2")
    result = _run(dagster_instance, data_root, model, {"validate_only": True, "max_sequences": 6})
    assert result.success
    assert not result.asset_materializations_for_node(NAME)
    (observation,) = [
        e.event_specific_data.asset_observation
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    ]
    md = {k: v.value for k, v in observation.metadata.items()}
    assert md["validate_only"] and md["sample_sequences"] == md["embedded"] == 6
    assert "batch_invariant" in md["checks"] and md["engine"].startswith("packed")
    assert observation.partition == partition_key("bunya", "simulated_v1")
    paths = CachePaths.for_partition(data_root, "bunya", "simulated_v1", "esm2")
    assert not paths.h5.exists() and not paths.work_dir.exists()


def test_max_sequences_commits_part_of_the_cache(dagster_instance, data_root, tmp_path):
    model = build_tiny_esm2(tmp_path / "esm2")
    result = _run(dagster_instance, data_root, model, {"max_sequences": 5, "shards": 2})
    (mat,) = result.asset_materializations_for_node(NAME)
    md = {k: v.value for k, v in mat.metadata.items()}
    assert md["computed"] == md["dagster/row_count"] == 5
    assert md["left_for_later_run"] == md["unique_sequences"] - 5 > 0
    assert md["engine"].startswith("packed") and md["outside_alphabet"] == 0
    assert all(e.passed for e in result.get_asset_check_evaluations())
