"""cooccurrence_sets and segment_pairs through Dagster, with their leakage checks."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from segpair.simulator import SimulationConfig, simulate_population
from segpair_assets.asset_checks import segment_pairs_leakage_free
from segpair_assets.definitions import build_definitions
from segpair_assets.partitions import DATA_VERSION_PARTITIONS_NAME, partition_key


def _main_job(instance, data_root, virus="flu_a", version="simulated_v1", run_config=None):
    instance.add_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME, [version])
    defs = build_definitions(str(data_root))
    return defs.resolve_job_def("segpair_main_job").execute_in_process(
        instance=instance,
        partition_key=partition_key(virus, version),
        run_config=run_config,
        raise_on_error=False,
    )


def test_main_job_builds_leakage_free_pairs(trained):
    # the session's main-job run of the flu demo (hard_negative_share 0.3), see conftest
    data_root, result, _second, _defs = trained
    assert result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["segment_pairs_leakage_free"].passed
    assert checks["segment_pairs_proteins_embedded"].passed
    (mat,) = result.asset_materializations_for_node("segment_pairs")
    md = {k: v.value for k, v in mat.metadata.items()}
    assert md["split_mode"] == "isolate" and md["dagster/row_count"] > 10_000
    assert "blocked_cooccur" in {r.data["reason"] for r in md["rejections"].records}
    assert {r.data["split"] for r in md["split_counts"].records} == {"train", "val", "test"}
    assert sum(r.data["isolates"] for r in md["isolates_per_split"].records) > 300
    (co,) = result.asset_materializations_for_node("cooccurrence_sets")
    assert co.metadata["total_cooccur_pairs"].value > 0

    # a leak planted in the stored table makes the check fail
    folder = data_root / "processed" / "flu_a" / "simulated_v1"
    pairs = pd.read_parquet(folder / "segment_pairs.parquet")
    cooc = pd.read_parquet(folder / "cooccurrence_sets.parquet")
    leak = pairs[pairs["split"] == "train"].iloc[[0]].assign(split="test")
    evaluation = segment_pairs_leakage_free(pd.concat([pairs, leak]), cooc)
    assert not evaluation.passed
    assert "FAIL" in evaluation.metadata["pair_key_in_one_split"].value


def test_protein_only_data_warns_for_nucleotide_embeddings(dagster_instance, data_root, flu):
    # a protein-only table (as a BV-BRC export gives): SIMULATED proteins, no nt_seq
    pop = simulate_population(flu, SimulationConfig(n_isolates=120, seed=8))
    table = pop.proteins.rename(
        columns={"brc_fea_id": "protein_id", "assembly_id": "isolate_id", "prot_seq": "sequence"}
    )[["protein_id", "isolate_id", "function", "sequence"]]
    folder = data_root / "raw" / "flu_a" / "tbl"
    folder.mkdir(parents=True)
    table.to_csv(folder / "proteins.csv", index=False)
    config = {"ops": {"segment_pairs": {"config": {"schema_pairs": [["HA", "NA"]]}}}}
    result = _main_job(dagster_instance, data_root, version="tbl", run_config=config)
    # the nucleotide k-mer classifier cannot train on protein-only data, and says why
    failures = {f.step_key: f.event_specific_data.error.cause.message
                for f in result.get_step_failure_events()}  # fmt: skip
    assert set(failures) == {"pair_classifier_kmer_nt6", "embedding_diagnostics_kmer_nt6"}
    assert all("no vector for" in message for message in failures.values()), failures
    assert result.asset_materializations_for_node("pair_classifier_kmer_aa3")
    (check,) = [
        e for e in result.get_asset_check_evaluations()
        if e.check_name == "segment_pairs_proteins_embedded"
    ]  # fmt: skip
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["kmer_aa3"].value == "pass"
    assert "FAIL" in check.metadata["kmer_nt6"].value
