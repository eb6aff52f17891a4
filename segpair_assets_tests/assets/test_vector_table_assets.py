"""Vector table assets through Dagster and `segpair neighbours` on them: the demo's table
with its metadata, a second data version built incrementally, the main job's selection,
and the command on simulated data (the real set: test_vector_tables_real.py)."""

from __future__ import annotations

import shutil

import dagster as dg
import pandas as pd
import pytest

from segpair.embeddings.catalog import CATALOG
from segpair.vectors import ANN_MIN_ROWS, open_vector_table
from segpair_assets.assets.embeddings import build_embedding_assets
from segpair_assets.assets.preprocessing import protein_final
from segpair_assets.assets.vectors import build_vector_table_assets
from segpair_assets.cli import main
from segpair_assets.definitions import build_definitions
from segpair_assets.partitions import DATA_VERSION_PARTITIONS_NAME, partition_key
from segpair_assets_tests.assets.test_embedding_assets import _append_batch

ASSETS = [protein_final, *build_embedding_assets(CATALOG), *build_vector_table_assets(CATALOG)]
TABLE = CATALOG.get("kmer_aa3").vector_table_asset


def _materialize(instance, data_root, version: str, run_config=None):
    if not instance.has_dynamic_partition(DATA_VERSION_PARTITIONS_NAME, version):
        instance.add_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME, [version])
    selection = dg.AssetSelection.assets(TABLE)
    result = dg.materialize(
        ASSETS,
        instance=instance,
        resources=build_definitions(str(data_root)).resources,
        partition_key=partition_key("flu_a", version),
        selection=selection | selection.upstream(),
        run_config=run_config,
    )
    (mat,) = result.asset_materializations_for_node(TABLE)
    return {k: v.value for k, v in mat.metadata.items()}, result


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The flu demo partition's kmer_aa3 vector table, materialized once: (data_root,
    metadata, protein_final)."""
    tmp = tmp_path_factory.mktemp("vectors")
    (tmp / "data" / "raw").mkdir(parents=True)
    with dg.instance_for_test(temp_dir=str(tmp)) as instance:
        md, result = _materialize(instance, tmp / "data", "simulated_v1")
        yield tmp / "data", md, result.output_for_node("protein_final"), instance


def test_the_demo_table_and_its_metadata(demo):
    data_root, md, proteins, _instance = demo
    assert md["dagster/row_count"] == len(proteins) and md["dim"] == 8000
    assert md["index"] == f"none: exact search (under {ANN_MIN_ROWS} rows)"
    assert md["build"] == "full" and md["proteins_without_vector"] == 0
    preview = md["preview_neighbours"].records
    assert [r.data["rank"] for r in preview] == [1, 2, 3, 4, 5]
    assert md["preview_query"] in set(proteins["brc_fea_id"])
    table = open_vector_table(data_root, "flu_a", "simulated_v1", "kmer_aa3")
    assert table.n_rows == len(proteins) and str(md["path"]).endswith(".lance")


def test_a_second_data_version_keeps_the_first_versions_rows(demo, flu):
    data_root, md, proteins, instance = demo
    v2 = data_root / "raw" / "flu_a" / "v2"
    shutil.copytree(data_root / "raw" / "flu_a" / "simulated_v1", v2)
    _append_batch(v2, flu, 20, "B")
    second, result = _materialize(instance, data_root, "v2")
    n_v2 = len(result.output_for_node("protein_final"))
    assert second["build"] == "incremental" and second["dagster/row_count"] == n_v2
    assert (second["reused_rows"], second["removed_rows"]) == (len(proteins), 0)
    assert second["added_rows"] == n_v2 - len(proteins) > 0
    assert second["reused_from"].startswith("kmer_aa3-")


def test_the_main_job_builds_the_weight_free_tables_only():
    job = build_definitions().resolve_job_def("segpair_main_job")
    keys = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    tables = {k for k in keys if k.startswith("vector_table_")}
    assert tables == {s.vector_table_asset for s in CATALOG.in_main_job()}
    assert CATALOG.get("esm2").vector_table_asset not in keys


# ------------------------------------------------------------------ segpair neighbours


def test_segpair_neighbours_by_protein_on_the_demo(demo, monkeypatch, capsys, tmp_path):
    data_root, _md, proteins, _instance = demo
    monkeypatch.setenv("SEGPAIR_DATA_ROOT", str(data_root))
    ha = proteins[proteins["function"] == "HA"]["brc_fea_id"].iloc[0]
    out = tmp_path / "neighbours.tsv"
    args = [
        "neighbours",
        "-v",
        "flu_a",
        "-d",
        "simulated_v1",
        "--protein",
        ha,
        "-k",
        "4",
        "--partner",
        "NA",
        "-o",
        str(out),
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"query {ha}: 4 nearest" in printed and "exact (every row scanned" in printed
    found = pd.read_csv(out, sep="\t")
    assert found["rank"].tolist() == [1, 2, 3, 4] and set(found["function"]) == {"HA"}
    na_of = proteins[proteins["function"] == "NA"].set_index("assembly_id")["brc_fea_id"]
    expected = na_of.reindex(found["assembly_id"]).fillna("none").tolist()
    assert found["partner_brc_fea_id"].fillna("none").tolist() == expected


def test_segpair_neighbours_by_fasta_and_its_refusals(demo, monkeypatch, capsys, tmp_path):
    data_root, _md, proteins, _instance = demo
    monkeypatch.setenv("SEGPAIR_DATA_ROOT", str(data_root))
    na = proteins[proteins["function"] == "NA"].iloc[0]
    fasta = tmp_path / "query.fasta"
    fasta.write_text(f">new_na\n{na['nt_seq']}\n")
    base = ["neighbours", "-v", "flu_a", "-d", "simulated_v1"]
    assert main([*base, "--fasta", str(fasta), "-k", "2"]) == 0
    printed = capsys.readouterr().out
    assert "query new_na (read as nucleotide: longest ORF, + strand" in printed
    assert na["brc_fea_id"] in printed.split("query new_na")[1]
    fasta.write_text(f">prot\n{na['esm2_ready_seq']}\n")
    assert main([*base, "-e", "kmer_nt6", "--fasta", str(fasta)]) == 2
    err = capsys.readouterr().err
    assert "no kmer_nt6 vector table of flu_a x simulated_v1" in err
    assert "--assets master_embeddings_kmer_nt6 vector_table_kmer_nt6" in err
    assert main([*base, "--protein", "missing:HA"]) == 2
    assert "protein 'missing:HA': is not in the kmer_aa3 vector table" in capsys.readouterr().err
