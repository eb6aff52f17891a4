"""The pipeline on the real NCBI sets in ../shared/data, read in place (skipped when absent)."""

from __future__ import annotations

import dagster as dg
import pytest

from segpair_assets.asset_checks import protein_final_is_valid
from segpair_assets.assets.preprocessing import protein_final
from segpair_assets.definitions import build_definitions
from segpair_assets.partitions import DATA_VERSION_PARTITIONS_NAME, partition_key
from segpair_assets_tests.conftest import require_shared_data

pytestmark = pytest.mark.real_data

SETS = {
    "flu_a": ("influenza_a", "influenza_a_2010s"),
    "bunya": ("sfts", "sfts"),
}


def _write_manifest(data_root, virus):
    folder_name, stem = SETS[virus]
    src = require_shared_data(folder_name)
    version = f"ncbi_{stem}"
    folder = data_root / "raw" / virus / version
    folder.mkdir(parents=True)
    (folder / "manifest.toml").write_text(
        'format = "fasta"\norigin = "real"\n'
        f'description = "NCBI GenBank complete genomes ({stem}), read in place"\n'
        f'[fasta]\nfiles = ["{src / (stem + ".fasta.gz")}"]\n'
        f'metadata_table = "{src / (stem + ".genomes.tsv")}"\n'
        'accession_column = "accession"\nisolate_column = "genome_id"\n'
    )
    return version


@pytest.mark.parametrize(
    "virus, isolates, proteins, functions, length_drops",
    [
        # one influenza PA record is cut inside its gene (no stop codon): dropped, counted
        ("flu_a", 868, 6898, {"PB2", "PB1", "PA", "HA", "NP", "NA", "M1", "NS1"},
         {"orf_without_stop": 1}),
        ("bunya", 276, 828, {"RdRp", "GP", "N", "NSs"}, {}),
    ],
)  # fmt: skip
def test_protein_final_on_real_data(
    dagster_instance, data_root, virus, isolates, proteins, functions, length_drops
):
    version = _write_manifest(data_root, virus)
    dagster_instance.add_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME, [version])
    result = dg.materialize(
        [protein_final, protein_final_is_valid],
        instance=dagster_instance,
        resources=build_definitions(str(data_root)).resources,
        partition_key=partition_key(virus, version),
    )
    (mat,) = result.asset_materializations_for_node("protein_final")
    md = {k: v.value for k, v in mat.metadata.items()}
    assert md["data_origin"] == "real"
    assert md["isolates"] == isolates
    assert md["dagster/row_count"] == proteins
    length_kinds = {"orf_without_stop", "shorter_than_expected", "longer_than_expected"}
    assert {k: v for k, v in md["issue_counts"].items() if k in length_kinds} == length_drops
    assert "metadata_from_header" not in md["issue_counts"]  # the table covers every record
    assert result.get_asset_check_evaluations()[0].passed
    df = result.output_for_node("protein_final")
    assert set(df["function"]) == functions
    # Every protein is a full-length translation: no internal stops, lengths as expected.
    medians = df.groupby("function")["length"].median()
    if virus == "flu_a":
        expected = {"HA": 566, "M1": 252, "NA": 469, "NP": 498, "NS1": 230, "PA": 716}
        assert medians.to_dict() == {**expected, "PB1": 757, "PB2": 759}
        assert df["subtype"].notna().all() and df["year"].notna().all()
    else:
        assert medians.to_dict() == {"GP": 1073, "N": 245, "NSs": 293, "RdRp": 2084}
