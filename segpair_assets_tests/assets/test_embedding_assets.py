"""Master embedding assets through Dagster: k-mer on the demo, a tiny ESM-2 from a local
directory, reuse by a second data version, and the completeness checks."""

from __future__ import annotations

import gzip
import shutil

import dagster as dg
import numpy as np

from resources.embedders import embedders_for
from segpair.embeddings.cache import CachePaths, EmbeddingStore
from segpair.embeddings.catalog import CATALOG
from segpair.simulator import SimulationConfig, simulate_population, write_data_version
from segpair_assets.asset_checks import build_embedding_checks, protein_final_is_valid
from segpair_assets.assets.embeddings import build_embedding_assets
from segpair_assets.assets.preprocessing import protein_final
from segpair_assets.definitions import build_definitions
from segpair_assets.partitions import DATA_VERSION_PARTITIONS_NAME, partition_key
from segpair_assets_tests.tiny_models import build_tiny_esm2

ALL = [
    protein_final,
    protein_final_is_valid,
    *build_embedding_assets(CATALOG),
    *build_embedding_checks(CATALOG),
]


def _run(instance, data_root, version, names, resources=None, virus="flu_a"):
    if not instance.has_dynamic_partition(DATA_VERSION_PARTITIONS_NAME, version):
        instance.add_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME, [version])
    selection = dg.AssetSelection.assets(*names)
    selection = selection | selection.upstream()
    return dg.materialize(
        ALL,
        instance=instance,
        resources={**build_definitions(str(data_root)).resources, **(resources or {})},
        partition_key=partition_key(virus, version),
        selection=selection,
    )


def _md(result, asset_name):
    (mat,) = result.asset_materializations_for_node(asset_name)
    return {k: v.value for k, v in mat.metadata.items()}


def test_kmer_caches_on_the_demo(dagster_instance, data_root):
    names = ["master_embeddings_kmer_aa3", "master_embeddings_kmer_nt6"]
    result = _run(dagster_instance, data_root, "simulated_v1", names)
    aa, nt = _md(result, names[0]), _md(result, names[1])
    assert (aa["dim"], nt["dim"]) == (8000, 4096)
    assert aa["computed"] == aa["unique_sequences"] == aa["dagster/row_count"]
    assert aa["failed_proteins"] == nt["failed_proteins"] == 0
    assert "model_name" in aa["model_metadata"]
    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations == {
        "protein_final_is_valid": True,
        "master_embeddings_kmer_aa3_is_complete": True,
        "master_embeddings_kmer_nt6_is_complete": True,
    }
    with EmbeddingStore(
        CachePaths.for_partition(data_root, "flu_a", "simulated_v1", "kmer_aa3")
    ) as s:
        assert s.n_rows == aa["unique_sequences"]


def test_tiny_esm2_from_a_local_directory_in_one_and_in_three_shards(
    dagster_instance, data_root, tmp_path
):
    """The language-model asset (plan -> shard steps -> commit) on a tiny ESM-2 loaded
    from a local directory; recomputed in 3 hash-range shards it writes the same cache."""
    model = build_tiny_esm2(tmp_path / "tiny_esm2")
    esm = {"embedders": embedders_for({"esm2": str(model)})}
    name = "master_embeddings_esm2"
    result = _run(dagster_instance, data_root, "simulated_v1", [name], esm, virus="bunya")
    md = _md(result, name)
    assert md["dim"] == 32 and md["model_name"] == str(model)
    assert md["computed"] == md["unique_sequences"] > 0
    assert md["truncated"] > 0  # the RdRp (2084 aa) is cut at 1022 residues, and counted
    assert md["tokens_per_s"] > 0 and md["shards"] == 1
    assert all(e.passed for e in result.get_asset_check_evaluations())
    paths = CachePaths.for_partition(data_root, "bunya", "simulated_v1", "esm2")
    with EmbeddingStore(paths) as store:
        ids = store.index["brc_fea_id"].tolist()
        one_shard = store.gather(ids)

    result = dg.materialize(
        ALL,
        instance=dagster_instance,
        resources={**build_definitions(str(data_root)).resources, **esm},
        partition_key=partition_key("bunya", "simulated_v1"),
        selection=dg.AssetSelection.assets(name),
        run_config={"ops": {name: {"config": {"shards": 3, "force_recompute": True}}}},
    )
    three = _md(result, name)
    assert three["shards"] == 3 and "assigned" in three["shard_reports"]
    assert three["computed"] == md["computed"]
    assert three["reused_in_place"] == 0 and three["resumed_from_interrupted_run"] == 0
    steps = {e.step_key.split(".")[-1] for e in result.all_events if e.step_key}
    assert {f"embed_esm2_shard[shard_{i}]" for i in range(3)} <= steps
    with EmbeddingStore(paths) as store:
        np.testing.assert_array_equal(store.gather(ids), one_shard)


def _append_batch(folder, virus, n, batch):
    """A new data version: the old one's records plus a new SIMULATED batch."""
    extra = folder.parent / f".extra_{batch}"
    config = SimulationConfig(n_isolates=n, seed=77, batch=batch)
    write_data_version(simulate_population(virus, config), extra, virus, config)
    with open(folder / "segments.fasta.gz", "ab") as out:
        out.write((extra / "segments.fasta.gz").read_bytes())  # gzip members concatenate
    rows = (extra / "segments.tsv").read_text().splitlines()[1:]
    with open(folder / "segments.tsv", "a") as out:
        out.write("\n".join(rows) + "\n")
    shutil.rmtree(extra)


def test_a_second_data_version_reuses_the_first(dagster_instance, data_root, flu):
    name = "master_embeddings_kmer_nt6"
    first = _md(_run(dagster_instance, data_root, "simulated_v1", [name]), name)
    v1 = data_root / "raw" / "flu_a" / "simulated_v1"
    v2 = data_root / "raw" / "flu_a" / "v2"
    shutil.copytree(v1, v2)
    _append_batch(v2, flu, 40, "B")
    with gzip.open(v2 / "segments.fasta.gz", "rt") as fh:
        assert sum(line.startswith(">") for line in fh) > 3164
    second = _md(_run(dagster_instance, data_root, "v2", [name]), name)
    assert second["reused_from_earlier_versions"] == first["unique_sequences"]
    assert second["reused_by_version"] == {"simulated_v1": first["unique_sequences"]}
    assert 0 < second["computed"] < second["unique_sequences"] / 5


def test_force_recompute_config(dagster_instance, data_root):
    name = "master_embeddings_kmer_aa3"
    _run(dagster_instance, data_root, "simulated_v1", [name])
    result = dg.materialize(
        ALL,
        instance=dagster_instance,
        resources=build_definitions(str(data_root)).resources,
        partition_key=partition_key("flu_a", "simulated_v1"),
        selection=dg.AssetSelection.assets(name),
        run_config={"ops": {name: {"config": {"force_recompute": True}}}},
    )
    md = _md(result, name)
    assert md["computed"] == md["unique_sequences"] and md["reused_in_place"] == 0
