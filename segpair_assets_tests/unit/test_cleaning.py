"""The esm2_ready_seq cleaning rule, its policies, and protein_final's invariants."""

from __future__ import annotations

import pandas as pd
import pytest

from segpair.cleaning import (
    PROTEIN_FINAL_COLUMNS,
    CleaningConfig,
    build_protein_final,
    sequence_hash,
)
from segpair.errors import InputDataError
from segpair.readers.common import records_frame
from segpair.validation import check_protein_final


def _records(*rows: tuple[str, str, str, str]) -> pd.DataFrame:
    """(id, isolate, segment, sequence) rows as raw records."""
    return records_frame(
        [
            {"brc_fea_id": i, "assembly_id": iso, "segment": seg, "function": seg,
             "prot_seq": seq, "source": f"test.csv:{n + 2}"}
            for n, (i, iso, seg, seq) in enumerate(rows)
        ]
    )  # fmt: skip


def _clean(records: pd.DataFrame, virus, config: CleaningConfig | None = None):
    """Cleaning with atypical lengths kept: these records are short on purpose, to show
    one rule each; the length policy has its own tests below."""
    return build_protein_final(records, virus, config or CleaningConfig(length_policy="keep"))


def test_cleaning_rule(flu):
    df, report = _clean(_records(("a", "i1", "HA", "mkt-ii.al*"), ("b", "i1", "NA", "MNPNQK")), flu)
    assert df.set_index("brc_fea_id").loc["a", "esm2_ready_seq"] == "MKTIIAL"
    assert df.set_index("brc_fea_id").loc["a", "length"] == 7
    assert list(df.columns) == PROTEIN_FINAL_COLUMNS
    assert report.n_input == report.n_output == 2


def test_identical_sequences_share_a_hash(flu):
    df, _ = _clean(_records(("a", "i1", "HA", "MKT*"), ("b", "i2", "HA", "mkt")), flu)
    assert df["seq_hash"].nunique() == 1
    assert df["seq_hash"].iloc[0] == sequence_hash("MKT")


def test_nonstandard_replace_is_counted(flu):
    df, report = _clean(_records(("a", "i1", "HA", "MKBTZIIALSYILCLVFAQK")), flu)
    assert df["esm2_ready_seq"].iloc[0] == "MKXTXIIALSYILCLVFAQK"
    assert df["n_ambiguous"].iloc[0] == 2
    assert report.issues.counts["nonstandard_replaced"] == 1
    assert "brc_fea_id=a" in report.issues.examples["nonstandard_replaced"][0]


def test_nonstandard_drop_is_counted(flu):
    df, report = _clean(
        _records(("a", "i1", "HA", "MKBT"), ("b", "i1", "NA", "MNPN")),
        flu,
        CleaningConfig(length_policy="keep", nonstandard_policy="drop"),
    )
    assert df["brc_fea_id"].tolist() == ["b"]
    assert report.issues.counts["nonstandard_residues"] == 1


def test_nonstandard_error_names_the_record(flu):
    with pytest.raises(InputDataError, match=r"test\.csv:3 \(brc_fea_id=b\).*non-standard"):
        _clean(
            _records(("a", "i1", "HA", "MKT"), ("b", "i1", "NA", "MNUPN")),
            flu,
            CleaningConfig(length_policy="keep", nonstandard_policy="error"),
        )


def test_internal_stop_dropped_and_named(flu):
    df, report = _clean(_records(("a", "i1", "HA", "MKT*IIAL"), ("b", "i1", "NA", "MNPN")), flu)
    assert df["brc_fea_id"].tolist() == ["b"]
    assert report.issues.counts["internal_stop"] == 1
    assert "residue 4" in report.issues.examples["internal_stop"][0]


def test_mostly_unknown_sequence_dropped(flu):
    df, report = _clean(_records(("a", "i1", "HA", "MXXXXK"), ("b", "i1", "NA", "MNPN")), flu)
    assert df["brc_fea_id"].tolist() == ["b"]
    assert report.issues.counts["too_ambiguous"] == 1


def test_single_segment_isolates_kept_and_counted(flu):
    df, report = _clean(
        _records(("a", "i1", "HA", "MKT"), ("b", "i1", "NA", "MNP"), ("c", "i2", "HA", "MKA")),
        flu,
    )
    assert len(df) == 3
    assert report.isolates_single_segment == 1
    assert report.issues.examples["isolate_single_segment"] == ["i2"]


def test_validation_passes_on_clean_table_and_catches_each_fault(flu):
    df, _ = _clean(_records(("a", "i1", "HA", "MKT"), ("b", "i1", "NA", "MNP")), flu)
    assert all(o.passed for o in check_protein_final(df).values())

    dup = pd.concat([df, df.iloc[[0]]], ignore_index=True)
    assert not check_protein_final(dup)["unique_ids"].passed
    empty = df.assign(esm2_ready_seq=["", "MNP"], length=[0, 3])
    assert check_protein_final(empty)["non_empty_sequences"].failing_examples == ["a"]
    bad = df.assign(esm2_ready_seq=["MK*", "MNP"])
    assert check_protein_final(bad)["allowed_alphabet"].failing_examples == ["a"]
    wrong = df.assign(length=[99, 3])
    assert not check_protein_final(wrong)["length_matches_sequence"].passed


# ---------------------------------------------------------------- atypical lengths


def _pb2(n: int) -> str:
    return ("M" + "KTIIALSYIF" * (n // 10 + 1))[:n]


@pytest.mark.parametrize(
    "length, has_stop, flag",
    [(759, True, ""), (759, None, ""), (633, False, "no_stop_codon"), (500, None, "short"),
     (500, False, "no_stop_codon+short"), (40_000, None, "long")],
)  # fmt: skip
def test_length_flags(flu, length, has_stop, flag):
    row = {"brc_fea_id": "p", "assembly_id": "i1", "segment": "PB2", "function": "PB2",
           "source": "t.fasta:1", "orf_has_stop": has_stop}  # fmt: skip
    rows = [{**row, "prot_seq": _pb2(length)}]
    kept, report = _clean(records_frame(rows), flu)
    assert len(_pb2(length)) == length
    assert kept["length_flag"].tolist() == [flag]
    dropped, report = build_protein_final(records_frame(rows), flu)  # the default: drop
    assert len(dropped) == (0 if flag else 1)
    kinds = {"no_stop_codon": "orf_without_stop", "short": "shorter_than_expected",
             "long": "longer_than_expected"}  # fmt: skip
    expected_counts = {kinds[f]: 1 for f in flag.split("+") if f}
    assert {k: v for k, v in report.issues.counts.items() if k in kinds.values()} == (
        expected_counts
    )
    if flag:
        with pytest.raises(InputDataError, match=r"t\.fasta:1 \(brc_fea_id=p\).*PB2 of"):
            build_protein_final(records_frame(rows), flu, CleaningConfig(length_policy="error"))


def test_short_alternative_frame_protein_is_not_flagged(flu):
    # PB1-F2 is truncated by nature in whole lineages (57 of 90 aa): no partial record.
    row = {"brc_fea_id": "f2", "assembly_id": "i1", "segment": "PB1", "function": "PB1-F2"}
    rows = [{**row, "prot_seq": "M" + "EQGQDTPWTQSTEHTNIQ" * 3 + "KRGSGQQTQ", "source": "t:1"}]
    df, _ = build_protein_final(records_frame(rows), flu)
    assert df["length_flag"].tolist() == [""]
