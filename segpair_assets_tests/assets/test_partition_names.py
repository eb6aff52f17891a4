"""A data-version partition added in the UI or through the API (launchpad, GraphQL,
`instance.add_dynamic_partitions`) is not checked by Dagster: a run of a partition named
like a path must fail before it reads or writes anything outside its own folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from resources.storage import SegpairStorage
from segpair.errors import InputDataError
from segpair_assets.definitions import build_definitions
from segpair_assets.partitions import DATA_VERSION_PARTITIONS_NAME, partition_key
from segpair_assets_tests.conftest import FIXTURES


def _files(folder: Path, skip: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns
        for p in folder.rglob("*")
        if p.is_file() and skip not in p.parents
    }


@pytest.mark.parametrize("relative", [True, False], ids=["dot-dot", "absolute"])
def test_a_partition_named_like_a_path_fails_before_writing(tmp_path, dagster_instance, relative):
    data_root = tmp_path / "data"
    (data_root / "raw" / "flu_a").mkdir(parents=True)
    outside = tmp_path / "outside"  # readable raw data the bad name points at
    shutil.copytree(FIXTURES / "bvbrc", outside)
    # from data/raw/flu_a/ (and data/processed/flu_a/) three levels up is tmp_path
    bad = "../../../outside" if relative else str(outside)
    before = _files(tmp_path, skip=tmp_path / "dagster_home")
    dagster_instance.add_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME, [bad])
    job = build_definitions(str(data_root)).resolve_job_def("segpair_main_job")
    result = job.execute_in_process(
        instance=dagster_instance,
        partition_key=dg.MultiPartitionKey({"virus": "flu_a", "data_version": bad}),
        asset_selection=[dg.AssetKey("protein_final")],
        raise_on_error=False,
    )
    assert not result.success
    error = result.get_step_failure_events()[0].step_failure_data.error
    error = error.cause or error
    assert error.cls_name == "InputDataError", error.to_string()
    assert repr(bad) in error.message and "letters, digits" in error.message
    assert _files(tmp_path, skip=tmp_path / "dagster_home") == before


def test_storage_builds_no_path_from_a_bad_data_version(tmp_path):
    storage = SegpairStorage(data_root=str(tmp_path))
    for method in (storage.raw_dir, storage.processed_dir):
        with pytest.raises(InputDataError, match="letters, digits"):
            method("flu_a", "..")
    with pytest.raises(InputDataError):
        storage.model_dir("flu_a", "/etc", "kmer_aa3")  # also a launchpad model_data_version
    with pytest.raises(InputDataError):
        storage.cache_paths("flu_a", "../v1", "kmer_aa3")
    with pytest.raises(InputDataError):
        storage.earlier_caches("flu_a", "../v1", "kmer_aa3")
    assert storage.processed_dir("flu_a", "v1") == tmp_path.resolve() / "processed/flu_a/v1"


def test_partition_keys_are_built_from_plain_names_only():
    assert partition_key("flu_a", "brc_2025").keys_by_dimension["data_version"] == "brc_2025"
    with pytest.raises(InputDataError, match="'\\.\\./x'"):
        partition_key("flu_a", "../x")


def test_the_io_managers_refuse_a_path_like_partition(tmp_path, dagster_instance):
    """Assets that never call the storage resource (cooccurrence_sets, segment_pairs) write
    through the IO managers: those check the key too."""
    import pandas as pd

    from resources.embedding_io_manager import EmbeddingCacheIOManager
    from resources.parquet_io_manager import PartitionedParquetIOManager
    from segpair_assets.partitions import virus_data_version_partitions

    key = dg.MultiPartitionKey({"virus": "flu_a", "data_version": "../../x"})
    dagster_instance.add_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME, ["../../x"])
    parquet = PartitionedParquetIOManager(base_dir=str(tmp_path / "processed"))
    out = dg.build_output_context(
        asset_key=dg.AssetKey("cooccurrence_sets"),
        partition_key=key,
        asset_partitions_def=virus_data_version_partitions,
        instance=dagster_instance,
    )
    with pytest.raises(InputDataError, match="not a plain name"):
        parquet.handle_output(out, pd.DataFrame({"a": [1]}))
    assert not any(tmp_path.rglob("*.parquet"))

    upstream = dg.build_output_context(
        asset_key=dg.AssetKey("master_embeddings_kmer_aa3"),
        definition_metadata={"segpair/embedder": "kmer_aa3"},
    )
    cache = EmbeddingCacheIOManager(data_root=str(tmp_path))
    inp = dg.build_input_context(
        asset_key=dg.AssetKey("master_embeddings_kmer_aa3"),
        partition_key=key,
        asset_partitions_def=virus_data_version_partitions,
        upstream_output=upstream,
        instance=dagster_instance,
    )
    with pytest.raises(InputDataError, match="not a plain name"):
        cache.load_input(inp)
