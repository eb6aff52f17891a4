"""From raw protein records to `protein_final`: sequences ready for a protein LM.

The cleaning rule for `esm2_ready_seq`, applied in this order:

1. uppercase; whitespace, alignment gaps ('-', '.') removed;
2. one trailing stop ('*') removed; an internal stop means a frameshift or a
   pseudogene, so that record is dropped and counted (`internal_stop`);
3. residues outside the 20 standard amino acids (B, Z, J, U, O, X and anything
   else) are handled by `nonstandard_policy`:
   - "replace" (default): each becomes X, which every protein LM and the k-mer
     featurizer understand; counted per record in `n_ambiguous`;
   - "drop": the record is dropped and counted (`nonstandard_residues`);
   - "error": the first such record stops the run, named;
4. a record whose X share exceeds `max_ambiguous_fraction` is dropped and counted
   (`too_ambiguous`): mostly-unknown sequences carry no signal;
5. a protein of atypical length is flagged in `length_flag` and handled by
   `length_policy` ("drop", the default; "keep", flagged; or "error"):
   - `no_stop_codon`: nucleotide input whose reading frame runs off the record's end,
     i.e. the record is cut inside the gene (1 of 862 PA records in the real influenza
     set; none of the SFTS set);
   - `short`: under `min_length_fraction` x the registry's expected length (primary
     proteins only: alternative-frame proteins such as PB1-F2 are truncated by nature
     in whole lineages);
   - `long`: over `max_length_fraction` x the expected length (concatenated records,
     a wrong annotation). Complete genomes sit within 0.92-1.07 x (README).
   Counted per kind (`orf_without_stop`, `shorter_than_expected`, `longer_than_expected`).

The sequence hash is the MD5 of `esm2_ready_seq` (as BV-BRC's `aa_sequence_md5`),
so identical proteins share one hash across isolates and data versions.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from segpair.errors import InputDataError, IssueLog
from segpair.readers.common import RAW_COLUMNS
from segpair.registry import VirusSpec

STANDARD_AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
ALLOWED_RESIDUES = set(STANDARD_AMINO_ACIDS + "X")
NonstandardPolicy = Literal["replace", "drop", "error"]
LengthPolicy = Literal["drop", "keep", "error"]

# The raw record columns, with the cleaned sequence and its derived fields after `product`.
PROTEIN_FINAL_COLUMNS = [
    *RAW_COLUMNS[:6],
    "esm2_ready_seq",
    "length",
    "seq_hash",
    "n_ambiguous",
    "length_flag",
    *RAW_COLUMNS[6:],
]

_NONSTANDARD = re.compile(f"[^{STANDARD_AMINO_ACIDS}]")


@dataclass
class CleaningConfig:
    nonstandard_policy: NonstandardPolicy = "replace"
    max_ambiguous_fraction: float = 0.1
    length_policy: LengthPolicy = "drop"
    min_length_fraction: float = 0.8
    max_length_fraction: float = 1.25


@dataclass
class CleaningReport:
    n_input: int = 0
    n_output: int = 0
    issues: IssueLog = field(default_factory=IssueLog)
    isolates_single_segment: int = 0
    isolates_incomplete: int = 0


def sequence_hash(seq: str) -> str:
    return hashlib.md5(seq.encode("ascii")).hexdigest()


def clean_protein_sequence(
    seq: str, where: str, config: CleaningConfig, issues: IssueLog
) -> tuple[str, int] | None:
    """(esm2_ready_seq, number of residues set to X), or None when the record is dropped."""
    s = re.sub(r"[\s\-.]", "", seq.upper())
    if s.endswith("*"):
        s = s[:-1]
    if "*" in s:
        issues.add("internal_stop", where, f"stop codon at residue {s.index('*') + 1}")
        return None
    if not s:
        raise InputDataError(where, "empty sequence after cleaning", "remove the record")
    odd = _NONSTANDARD.findall(s)
    n_odd = len(odd)
    if n_odd:
        non_x = sorted(set(odd) - {"X"})
        if config.nonstandard_policy == "error":
            raise InputDataError(
                where,
                f"{n_odd} non-standard residue(s) {sorted(set(odd))}",
                "fix the sequence, or set nonstandard_policy to 'replace' (map to X) or 'drop'",
            )
        if config.nonstandard_policy == "drop":
            issues.add("nonstandard_residues", where, f"residues {sorted(set(odd))}")
            return None
        if non_x:
            issues.add("nonstandard_replaced", where, f"{non_x} -> X")
        s = _NONSTANDARD.sub("X", s)
    if n_odd / len(s) > config.max_ambiguous_fraction:
        issues.add(
            "too_ambiguous",
            where,
            f"{n_odd}/{len(s)} residues unknown > {config.max_ambiguous_fraction:g}",
        )
        return None
    return s, n_odd


_FLAG_ISSUE = {
    "no_stop_codon": "orf_without_stop",
    "short": "shorter_than_expected",
    "long": "longer_than_expected",
}


def length_flag(
    length: int, has_stop: bool | None, expected: int, primary: bool, config: CleaningConfig
) -> str:
    """'' for a protein of typical length, else the reasons joined by '+'."""
    flags = []
    if has_stop is False:
        flags.append("no_stop_codon")
    if primary and length < config.min_length_fraction * expected:
        flags.append("short")
    if length > config.max_length_fraction * expected:
        flags.append("long")
    return "+".join(flags)


def _apply_length_policy(
    df: pd.DataFrame, virus: VirusSpec, config: CleaningConfig, issues: IssueLog
) -> pd.DataFrame:
    specs = {p.name: p for seg in virus.segments for p in seg.proteins}
    stops = df["orf_has_stop"].astype(object).where(df["orf_has_stop"].notna(), None)
    flags = [
        length_flag(int(n), stop, specs[f].expected_length, specs[f].primary, config)
        for n, stop, f in zip(df["length"], stops, df["function"], strict=True)
    ]
    df["length_flag"] = pd.array(flags, dtype="string")
    for row, flag in zip(df.itertuples(), flags, strict=True):
        if not flag:
            continue
        where = f"{row.source} (brc_fea_id={row.brc_fea_id})"
        detail = (
            f"{row.function} of {row.length} aa, expected about "
            f"{specs[row.function].expected_length} aa ({flag})"
        )
        if config.length_policy == "error":
            raise InputDataError(
                where,
                f"atypical protein length: {detail}",
                "fix or remove the record, or set length_policy to 'drop' or 'keep' (flagged)",
            )
        for part in flag.split("+"):
            issues.add(_FLAG_ISSUE[part], where, detail)
    if config.length_policy == "drop":
        df = df[df["length_flag"] == ""]
    return df


def build_protein_final(
    records: pd.DataFrame, virus: VirusSpec, config: CleaningConfig | None = None
) -> tuple[pd.DataFrame, CleaningReport]:
    """Clean raw protein records into the `protein_final` table and a report."""
    config = config or CleaningConfig()
    report = CleaningReport(n_input=len(records))
    seqs, n_amb, keep = [], [], []
    for pid, src, raw in zip(
        records["brc_fea_id"], records["source"], records["prot_seq"], strict=True
    ):
        where = f"{src} (brc_fea_id={pid})"
        cleaned = clean_protein_sequence(str(raw), where, config, report.issues)
        keep.append(cleaned is not None)
        if cleaned is not None:
            seqs.append(cleaned[0])
            n_amb.append(cleaned[1])
    df = records.loc[np.asarray(keep, dtype=bool)].copy()
    df["esm2_ready_seq"] = pd.array(seqs, dtype="string")
    df["length"] = pd.array([len(s) for s in seqs], dtype="Int64")
    df["seq_hash"] = pd.array([sequence_hash(s) for s in seqs], dtype="string")
    df["n_ambiguous"] = pd.array(n_amb, dtype="Int64")
    df = _apply_length_policy(df, virus, config, report.issues)
    order = {name: i for i, name in enumerate(virus.segment_names)}
    df = (
        df.assign(_seg_order=df["segment"].map(order))
        .sort_values(["assembly_id", "_seg_order", "function", "brc_fea_id"], kind="stable")
        .drop(columns="_seg_order")
        .reset_index(drop=True)[PROTEIN_FINAL_COLUMNS]
    )
    report.n_output = len(df)
    segs_per_isolate = df.groupby("assembly_id")["segment"].nunique()
    report.isolates_single_segment = int((segs_per_isolate == 1).sum())
    report.isolates_incomplete = int((segs_per_isolate < len(virus.segments)).sum())
    for isolate in segs_per_isolate[segs_per_isolate == 1].index[:5]:
        report.issues.examples.setdefault("isolate_single_segment", []).append(str(isolate))
    if report.isolates_single_segment:
        report.issues.counts["isolate_single_segment"] = report.isolates_single_segment
    return df, report
