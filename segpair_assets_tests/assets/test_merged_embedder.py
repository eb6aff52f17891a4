"""The merged kmer_nt6_aa3 entry through its assets: a cache built from the two k-mer
caches, then a pair classifier trained on it like on any other embedder, in the opt-in
job (it stays out of the main job for the demo's time budget)."""

from __future__ import annotations

import dagster as dg

from segpair.embeddings.catalog import CATALOG
from segpair.training.checkpoint import read_checkpoint

MERGED = CATALOG.get("kmer_nt6_aa3")
# 12,096 dims: the neighbour features and the baselines on every pair would take a minute
TINY_TRAINING = {"model": "interaction_mlp", "interactions": ["diff"], "hidden": [8],
                 "steps": 20, "eval_every": 10, "batch_size": 64, "schema_pairs": [["GP", "N"]],
                 "baseline_max_train_pairs": 200}  # fmt: skip


def test_the_merged_cache_trains_a_classifier_in_the_opt_in_job(tmp_path):
    from segpair_assets.definitions import build_definitions
    from segpair_assets.partitions import DATA_VERSION_PARTITIONS_NAME, partition_key

    defs = build_definitions(str(tmp_path / "data"))
    main = defs.resolve_job_def("segpair_main_job").asset_layer.selected_asset_keys
    assert dg.AssetKey(MERGED.cache_asset) not in main
    wanted = ["protein_final", "master_embeddings_kmer_nt6", "master_embeddings_kmer_aa3",
              "cooccurrence_sets", "segment_pairs", MERGED.cache_asset,
              MERGED.classifier_asset]  # fmt: skip
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME, ["simulated_v1"])
        result = defs.resolve_job_def("segpair_opt_in_job").execute_in_process(
            instance=instance,
            partition_key=partition_key("bunya", "simulated_v1"),
            asset_selection=[dg.AssetKey(n) for n in wanted],
            run_config={"ops": {MERGED.classifier_asset: {"config": TINY_TRAINING}}},
        )
    assert result.success
    (cache,) = result.asset_materializations_for_node(MERGED.cache_asset)
    assert cache.metadata["dim"].value == 4096 + 8000
    assert set(cache.metadata["sources"].value) == {"kmer_nt6", "kmer_aa3"}
    assert cache.metadata["computed"].value == cache.metadata["dagster/row_count"].value > 0
    checks = {e.asset_check_key.name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks[f"{MERGED.cache_asset}_is_complete"]

    (trained,) = result.asset_materializations_for_node(MERGED.classifier_asset)
    meta = read_checkpoint(trained.metadata["checkpoint"].value)["meta"]
    assert (meta["embedder"], meta["dim"]) == ("kmer_nt6_aa3", 4096 + 8000)
    assert meta["signature"] == cache.metadata["signature"].value
    assert meta["embedder_description"]["family"] == "merged"
