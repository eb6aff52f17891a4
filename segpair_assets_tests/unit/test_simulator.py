"""The simulated population: seeded, reassorting, conserved where it should be, and labelled."""

from __future__ import annotations

import numpy as np
import pytest

from segpair.cleaning import build_protein_final
from segpair.readers import read_data_version
from segpair.simulator import SimulationConfig, simulate_population, write_data_version


@pytest.fixture(scope="module")
def flu_population(flu):
    return simulate_population(flu, SimulationConfig(n_isolates=600, seed=11))


def test_same_seed_same_population(flu):
    a = simulate_population(flu, SimulationConfig(n_isolates=50, seed=3))
    b = simulate_population(flu, SimulationConfig(n_isolates=50, seed=3))
    c = simulate_population(flu, SimulationConfig(n_isolates=50, seed=4))
    assert a.records.equals(b.records)
    assert not a.records["nt_seq"].equals(c.records["nt_seq"])


def test_reassortment_mixes_segment_lineages(flu_population):
    iso = flu_population.isolates
    assert 0.05 < iso["reassortant"].mean() < 0.6
    mixed = iso[iso["lineage_HA"] != iso["lineage_NA"]]
    assert len(mixed) > 0
    # Subtype follows the HA and NA lineages, so reassortants carry new combinations.
    assert {"H1N2", "H3N2", "H1N1", "H9N2", "H5N1"} <= set(iso["subtype"])
    assert len(set(iso["subtype"])) > 5


def _mean_identity_between_lineages(pop, protein):
    p = pop.proteins[pop.proteins["function"] == protein].merge(
        pop.isolates[["assembly_id", "lineage"]], on="assembly_id"
    )
    firsts = p.groupby("lineage")["prot_seq"].first().tolist()
    arr = np.array([list(s) for s in firsts])
    n = len(arr)
    return np.mean([(arr[i] == arr[j]).mean() for i in range(n) for j in range(i + 1, n)])


def test_conservation_follows_the_registry(flu_population):
    prots = flu_population.proteins
    distinct = prots.groupby("function")["prot_seq"].nunique() / prots.groupby("function").size()
    # PB1 is the most conserved, HA and NA the most variable (as in real influenza A).
    assert distinct["PB1"] < distinct["PB2"] < distinct["HA"]
    assert distinct["PB1"] < distinct["NA"]
    assert distinct.idxmax() in ("HA", "NA")
    assert _mean_identity_between_lineages(flu_population, "HA") < 0.8
    assert _mean_identity_between_lineages(flu_population, "PB1") > 0.9


def test_duplicate_sequences_across_isolates(flu_population):
    pb1 = flu_population.proteins[flu_population.proteins["function"] == "PB1"]
    assert pb1["prot_seq"].duplicated().any()


def test_realistic_lengths(flu_population, flu):
    lengths = flu_population.proteins.groupby("function")["prot_seq"].apply(
        lambda s: s.str.len().median()
    )
    for seg in flu.segments:
        for p in seg.primary_proteins:
            assert lengths[p.name] == p.expected_length


@pytest.mark.parametrize("virus_name", ["flu_a", "bunya"])
def test_written_version_reads_back_as_the_truth(registry, tmp_path, virus_name):
    virus = registry.get(virus_name)
    config = SimulationConfig(n_isolates=80, seed=5)
    pop = simulate_population(virus, config)
    folder = write_data_version(pop, tmp_path / "v", virus, config)
    result, manifest, _ = read_data_version(folder, virus)
    df, _ = build_protein_final(result.records, virus)
    truth = pop.proteins.set_index("brc_fea_id")
    got = df.set_index("brc_fea_id")
    assert set(got.index) == set(truth.index)
    assert (got["esm2_ready_seq"] == truth.loc[got.index, "prot_seq"]).all()
    assert (got["nt_seq"] == truth.loc[got.index, "nt_seq"]).all()
    assert manifest.origin == "simulated" and "SIMULATED" in manifest.description
    assert (folder / "SIMULATED.txt").exists()
    assert manifest.simulation["n_isolates"] == 80


def test_ambisense_s_segment_has_both_proteins(bunya):
    pop = simulate_population(bunya, SimulationConfig(n_isolates=30, seed=2))
    s = pop.proteins[pop.proteins["segment"] == "S"]
    assert set(s["function"]) == {"N", "NSs"}


def test_incomplete_genomes_occur(bunya):
    pop = simulate_population(bunya, SimulationConfig(n_isolates=300, seed=2))
    per_isolate = pop.records.groupby("assembly_id")["segment"].nunique()
    assert (per_isolate < 3).any() and (per_isolate >= 1).all()


def test_scales_to_many_isolates(flu):
    pop = simulate_population(flu, SimulationConfig(n_isolates=5000, seed=1))
    assert pop.isolates["assembly_id"].is_unique and len(pop.isolates) == 5000
