"""protein_final through Dagster: the demo partition, real formats, checks, failed runs."""

from __future__ import annotations

import gzip
import hashlib
import shutil

import dagster as dg
import pandas as pd
import pytest

from segpair_assets.asset_checks import protein_final_is_valid
from segpair_assets.assets.preprocessing import protein_final
from segpair_assets.definitions import build_definitions
from segpair_assets.partitions import DATA_VERSION_PARTITIONS_NAME, partition_key
from segpair_assets_tests.conftest import FIXTURES


def _materialize(instance, data_root, virus, version, run_config=None):
    if not instance.has_dynamic_partition(DATA_VERSION_PARTITIONS_NAME, version):
        instance.add_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME, [version])
    defs = build_definitions(str(data_root))
    return dg.materialize(
        [protein_final, protein_final_is_valid],
        instance=instance,
        resources=defs.resources,
        partition_key=partition_key(virus, version),
        run_config=run_config,
        raise_on_error=False,
    )


def _metadata(result):
    (mat,) = result.asset_materializations_for_node("protein_final")
    return {k: v.value for k, v in mat.metadata.items()}


def test_demo_partition_is_simulated_and_valid(dagster_instance, data_root):
    result = _materialize(dagster_instance, data_root, "flu_a", "simulated_v1")
    assert result.success
    raw = data_root / "raw" / "flu_a" / "simulated_v1"
    assert (raw / "manifest.toml").exists() and (raw / "SIMULATED.txt").exists()
    md = _metadata(result)
    assert md["data_origin"] == "SIMULATED"
    assert md["dagster/row_count"] > 3000 and md["isolates"] == 400
    assert "| HA | HA |" in md["proteins_per_segment"] and "esm2_ready_seq" in md["preview"]
    (check,) = result.get_asset_check_evaluations()
    assert check.passed and check.check_name == "protein_final_is_valid"
    df = pd.read_parquet(
        data_root / "processed" / "flu_a" / "simulated_v1" / "protein_final.parquet"
    )
    assert len(df) == md["dagster/row_count"]
    assert set(df["segment"]) == {"PB2", "PB1", "PA", "HA", "NP", "NA", "M", "NS"}


@pytest.mark.parametrize(
    "fixture, reader, rows",
    [("bvbrc", "bvbrc", 7), ("ncbi_protein_fasta", "fasta", 6), ("table", "table", 6)],
)
def test_real_format_samples(dagster_instance, data_root, fixture, reader, rows):
    shutil.copytree(FIXTURES / fixture, data_root / "raw" / "flu_a" / f"{fixture}_sample")
    result = _materialize(dagster_instance, data_root, "flu_a", f"{fixture}_sample")
    assert result.success
    md = _metadata(result)
    assert (md["reader"], md["dagster/row_count"], md["data_origin"]) == (reader, rows, "real")
    assert "detected" in md["reader_reason"]
    assert md["cleaning_policies"]["length_policy"] == "drop"
    assert result.get_asset_check_evaluations()[0].passed


def test_config_policy_error_fails_the_run_naming_the_record(dagster_instance, data_root):
    folder = data_root / "raw" / "flu_a" / "v_bad"
    folder.mkdir(parents=True)
    (folder / "p.csv").write_text(
        "protein_id,isolate_id,segment,sequence\np1,i1,4,MKTIIAL\np2,i1,6,MNPZQK\n"
    )
    config = {"ops": {"protein_final": {"config": {"nonstandard_policy": "error"}}}}
    result = _materialize(dagster_instance, data_root, "flu_a", "v_bad", run_config=config)
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error
    assert "p.csv:3 (brc_fea_id=p2)" in str(failure)


def _md5s(folder) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _duplicate_id(folder):
    with open(folder / "proteins.csv", "a") as fh:
        fh.write("p001,iso9,4,HA,MKT,H3N2,Human,2013,USA\n")


def _truncated_gzip(folder):
    data = gzip.compress((folder / "proteins.csv").read_bytes())
    (folder / "proteins.csv").unlink()
    (folder / "proteins.csv.gz").write_bytes(data[: len(data) // 2])


def _bad_manifest(folder):
    (folder / "manifest.toml").write_text('format = "fastq"\n')


def _unmatched_accession(folder):
    (folder / "s.fasta").write_text(">AB1 A/x/1/2015 segment 4 (HA)\n" + "M" * 566 + "\n")
    (folder / "genomes.tsv").write_text("accession\tgenome_id\nXX9\tg1\n")
    (folder / "manifest.toml").write_text(
        'format = "fasta"\n[fasta]\nfiles = ["s.fasta"]\nmetadata_table = "genomes.tsv"\n'
    )


def _truncated_protein(folder):
    with open(folder / "proteins.csv", "a") as fh:  # a 40,000-residue HA, under 'error'
        fh.write("p009,iso9,4,HA," + "M" * 40_000 + ",H3N2,Human,2013,USA\n")


@pytest.mark.parametrize(
    "spoil, named",
    [(_duplicate_id, "p001"), (_truncated_gzip, "proteins.csv.gz"),
     (_bad_manifest, "fastq"), (_unmatched_accession, "AB1"), (_truncated_protein, "p009")],
)  # fmt: skip
def test_bad_input_fails_the_run_and_changes_no_stored_byte(
    dagster_instance, data_root, spoil, named
):
    folder = data_root / "raw" / "flu_a" / "v1"
    shutil.copytree(FIXTURES / "table", folder)
    assert _materialize(dagster_instance, data_root, "flu_a", "v1").success
    processed = data_root / "processed" / "flu_a" / "v1"
    before = _md5s(processed)

    spoil(folder)
    error = {"ops": {"protein_final": {"config": {"length_policy": "error"}}}}
    result = _materialize(dagster_instance, data_root, "flu_a", "v1", error)
    assert not result.success
    assert named in str(result.get_step_failure_events()[0].event_specific_data.error)
    assert _md5s(processed) == before
    assert not list(processed.glob("*.partial"))


def test_check_fails_on_a_planted_invalid_table(dagster_instance, data_root):
    folder = data_root / "raw" / "flu_a" / "v1"
    shutil.copytree(FIXTURES / "table", folder)
    assert _materialize(dagster_instance, data_root, "flu_a", "v1").success
    stored = data_root / "processed" / "flu_a" / "v1" / "protein_final.parquet"
    df = pd.read_parquet(stored)
    df.loc[0, "brc_fea_id"] = df.loc[1, "brc_fea_id"]  # plant a duplicate id
    df.loc[2, "esm2_ready_seq"] = "MK*T"  # and a residue outside the alphabet

    evaluation = protein_final_is_valid(df)
    assert not evaluation.passed
    assert "FAIL" in evaluation.metadata["unique_ids"].value
    assert "FAIL" in evaluation.metadata["allowed_alphabet"].value
    assert evaluation.metadata["non_empty_sequences"].value == "pass"


def test_other_virus_partition_of_unknown_version_fails_clearly(dagster_instance, data_root):
    result = _materialize(dagster_instance, data_root, "bunya", "not_there")
    assert not result.success
    assert "does not exist" in str(result.get_step_failure_events()[0].event_specific_data.error)
