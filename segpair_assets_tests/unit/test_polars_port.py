"""The polars port changes no output: protein_final, cooccurrence_sets, segment_pairs, its
leakage checks, and the scoring path's isolate pairs and seen_in equal, row for row and
dtype for dtype, what the pandas code they replaced gives (benchmarks/pandas_baseline.py),
on simulated data with odd records planted and under each policy."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from segpair.cleaning import CleaningConfig, build_protein_final
from segpair.errors import InputDataError
from segpair.pairs.cooccurrence import build_cooccurrence
from segpair.pairs.leakage import leakage_report, proteins_without_embedding
from segpair.pairs.segment_pairs import PairConfig, build_segment_pairs
from segpair.readers.common import records_frame
from segpair.readers.manifest import read_data_version
from segpair.scoring import isolate_pairs, mark_seen_pairs, orient
from segpair.simulator import SimulationConfig, simulate_population
from segpair_assets_tests.conftest import REPO_ROOT, require_shared_data


@pytest.fixture(scope="module")
def baseline():
    path = REPO_ROOT / "benchmarks" / "pandas_baseline.py"
    spec = importlib.util.spec_from_file_location("pandas_baseline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _plant_odd_records(rows: list[dict]) -> list[dict]:
    """Every kind of record the cleaning rule and the length policy treat specially."""
    rng = np.random.default_rng(0)
    edits = [
        lambda s: s.lower(),
        lambda s: f"{s[:10]}-{s[10:20]}.{s[20:]} ",
        lambda s: s[:30] + "X" + s[31:],
        lambda s: s[:30] + "*" + s[31:],  # internal stop
        lambda s: s[:30] + "BZJ" + s[33:],
        lambda s: "X" * 100 + s[100:],  # too ambiguous
        lambda s: s[:50],  # short
        lambda s: s + s,  # long
    ]
    picks = rng.choice(len(rows), 60, replace=False)
    for k, i in enumerate(picks[:48]):
        rows[i]["prot_seq"] = edits[k % len(edits)](rows[i]["prot_seq"])
    for k, i in enumerate(picks[48:]):  # nucleotide input: with or without a stop codon
        rows[i]["orf_has_stop"] = bool(k % 2)
    return [*rows, dict(rows[3]), dict(rows[5], segment="XX")]  # a duplicate; unknown segment


@pytest.fixture(scope="module")
def records(flu):
    pop = simulate_population(flu, SimulationConfig(n_isolates=300, seed=4))
    rows = pop.proteins.merge(pop.isolates[["assembly_id", "subtype", "host", "year"]])
    rows = rows.assign(source="sim", product=rows["function"])
    return records_frame(_plant_odd_records(rows.to_dict("records")))


@pytest.fixture(scope="module")
def proteins(flu, records):
    return build_protein_final(records, flu)[0]


def _assert_identical(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(ours, theirs, check_exact=True, check_categorical=True)
    for column in ours.select_dtypes("category"):
        assert ours[column].cat.categories.dtype == theirs[column].cat.categories.dtype, column


def _report(report) -> tuple:
    issues = report.issues
    return (report.n_input, report.n_output, report.isolates_single_segment,
            report.isolates_incomplete, list(issues.counts.items()), issues.examples)  # fmt: skip


@pytest.mark.parametrize(
    "config",
    [CleaningConfig(), CleaningConfig(length_policy="keep"),
     CleaningConfig(nonstandard_policy="drop", max_ambiguous_fraction=0.5),
     CleaningConfig(min_length_fraction=0.99, max_length_fraction=1.01)],
    ids=["default", "keep", "drop-nonstandard", "tight-lengths"],
)  # fmt: skip
def test_protein_final_is_unchanged(flu, records, baseline, config):
    ours, report = build_protein_final(records, flu, config)
    theirs, their_report = baseline.build_protein_final(records, flu, config)
    _assert_identical(ours, theirs)
    assert _report(report) == _report(their_report)
    assert report.issues.counts["internal_stop"] and report.issues.counts["orf_without_stop"]


@pytest.mark.parametrize(
    "config", [CleaningConfig(nonstandard_policy="error"), CleaningConfig(length_policy="error")]
)
def test_protein_final_stops_at_the_same_record(flu, records, baseline, config):
    with pytest.raises(InputDataError) as ours:
        build_protein_final(records, flu, config)
    with pytest.raises(InputDataError) as theirs:
        baseline.build_protein_final(records, flu, config)
    assert str(ours.value) == str(theirs.value)


def test_cooccurrence_sets_are_unchanged(proteins, baseline):
    (ours, stats), (theirs, their_stats) = (
        build_cooccurrence(proteins),
        baseline.build_cooccurrence(proteins),
    )
    _assert_identical(ours, theirs)
    assert stats == their_stats and stats["pairs_in_multiple_isolates"] > 0


@pytest.mark.parametrize(
    "config",
    [PairConfig(), PairConfig(split_mode="sequence", hard_negative_share=0.5),
     PairConfig(allow_same_func_negatives=True, max_isolates_to_process=200, seed=5),
     PairConfig(schema_pairs=[("NA", "HA")], hard_negative_share=1.0)],
    ids=["default", "sequence-hard", "same-func-sampled", "one-schema-pair"],
)  # fmt: skip
def test_segment_pairs_are_unchanged(flu, proteins, baseline, config):
    cooccurrence = build_cooccurrence(proteins)[0]
    ours, stats, sampled = build_segment_pairs(proteins, cooccurrence, flu, config)
    theirs, their_stats, their_sampled = baseline.build_segment_pairs(
        proteins, cooccurrence, flu, config
    )
    _assert_identical(ours, theirs)
    assert json.dumps(asdict(stats)) == json.dumps(asdict(their_stats))
    assert sampled == their_sampled


@pytest.mark.parametrize("schema_pairs", [None, [["HA", "NA"], ["PB2", "PB1"]], [["NA", "HA"]]])
@pytest.mark.parametrize("only_training_schema", [True, False])
def test_isolate_pairs_are_unchanged(flu, proteins, baseline, schema_pairs, only_training_schema):
    shuffled = proteins.sample(frac=1, random_state=0)  # row order is part of the output
    ours = isolate_pairs(shuffled, flu, schema_pairs, only_training_schema)
    _assert_identical(ours, baseline.isolate_pairs(shuffled, flu, schema_pairs,
                                                   only_training_schema))  # fmt: skip
    # listed pairs, across isolates, oriented again
    listed = ours.sample(frac=1, random_state=1)
    for column in ("brc_b", "function_b", "assembly_id_b"):
        listed[column] = np.roll(listed[column].to_numpy(), 1)
    _assert_identical(orient(listed, flu, [["NA", "HA"]]),
                      baseline.orient(listed, flu, [["NA", "HA"]]))  # fmt: skip


def test_no_isolate_pair_gives_the_columns(flu, proteins):
    """Where pandas gave no columns (or a float in_training_schema), polars gives the table's
    columns with no rows."""
    one_segment = proteins[proteins["segment"] == "HA"]
    for only in (True, False):
        pairs = isolate_pairs(one_segment, flu, None, only)
        assert pairs.empty and pairs["in_training_schema"].dtype == bool
        assert list(pairs.columns)[-2:] == ["schema_pair", "in_training_schema"]


def test_leakage_checks_are_unchanged(flu, proteins, baseline):
    """Each check finds the same leaks, with the same examples, as the pandas code did."""
    cooccurrence = build_cooccurrence(proteins)[0]
    pairs = build_segment_pairs(proteins, cooccurrence, flu)[0]
    train = pairs[pairs["split"] == "train"]
    planted = pd.concat(
        [pairs, train.iloc[:12].assign(split="test"),  # pair keys, isolates in two splits
         pairs[pairs["label"] == 1].iloc[:12].assign(label=0, neg_type="random")],
        ignore_index=True,
    )  # fmt: skip
    ids = set(proteins["brc_fea_id"]) - set(pairs["brc_b"].iloc[:12])
    for table in (pairs, planted):
        ours = leakage_report(table, cooccurrence, "sequence")
        assert ours == baseline.leakage_report(table, cooccurrence, "sequence")
        assert proteins_without_embedding(table, ids) == baseline.proteins_without_embedding(
            table, ids
        )
    assert not any(o.passed for o in leakage_report(planted, cooccurrence, "sequence").values())


def test_seen_pairs_are_unchanged(flu, proteins, baseline):
    """seen_in as before, also where a labelled pair is listed twice, reversed, in two splits
    (the last one listed counts)."""
    segment_pairs = build_segment_pairs(proteins, build_cooccurrence(proteins)[0], flu)[0]
    scores = isolate_pairs(proteins, flu, None).assign(score=0.5)
    again = segment_pairs[segment_pairs["label"] == 1].iloc[:20]
    again = again.rename(columns={"brc_a": "brc_b", "brc_b": "brc_a"}).assign(split="test")
    relisted = pd.concat([segment_pairs, again], ignore_index=True)
    for labelled in (segment_pairs, relisted):
        ours = mark_seen_pairs(scores, labelled)
        _assert_identical(ours, baseline.mark_seen_pairs(scores, labelled))
        assert {"train", "new"} <= set(ours["seen_in"])


@pytest.mark.real_data
def test_real_influenza_gives_the_same_tables(flu, baseline, tmp_path):
    """The NCBI influenza A set (868 genomes, read in place): every ported stage as before."""
    src = require_shared_data("influenza_a")
    (tmp_path / "manifest.toml").write_text(
        'format = "fasta"\norigin = "real"\n'
        f'[fasta]\nfiles = ["{src / "influenza_a_2010s.fasta.gz"}"]\n'
        f'metadata_table = "{src / "influenza_a_2010s.genomes.tsv"}"\n'
        'accession_column = "accession"\nisolate_column = "genome_id"\n'
    )
    records = read_data_version(tmp_path, flu)[0].records
    proteins, report = build_protein_final(records, flu)
    theirs, their_report = baseline.build_protein_final(records, flu)
    _assert_identical(proteins, theirs)
    assert _report(report) == _report(their_report)
    cooccurrence = build_cooccurrence(proteins)[0]
    _assert_identical(cooccurrence, baseline.build_cooccurrence(proteins)[0])
    config = PairConfig(hard_negative_share=0.5)
    pairs = build_segment_pairs(proteins, cooccurrence, flu, config)[0]
    _assert_identical(pairs, baseline.build_segment_pairs(proteins, cooccurrence, flu, config)[0])
    assert leakage_report(pairs, cooccurrence, "sequence") == baseline.leakage_report(
        pairs, cooccurrence, "sequence"
    )
    scores = isolate_pairs(proteins, flu, None, False)
    _assert_identical(scores, baseline.isolate_pairs(proteins, flu, None, False))
    _assert_identical(mark_seen_pairs(scores, pairs), baseline.mark_seen_pairs(scores, pairs))
