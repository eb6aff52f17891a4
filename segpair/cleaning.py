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
import polars as pl

from segpair.errors import InputDataError, IssueLog
from segpair.readers.common import RAW_COLUMNS
from segpair.registry import VirusSpec

STANDARD_AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
ALLOWED_RESIDUES = set(STANDARD_AMINO_ACIDS + "X")
NonstandardPolicy = Literal["replace", "drop", "error"]
LengthPolicy = Literal["drop", "keep", "error"]

# The raw record columns, with the cleaned sequence and its derived fields after `product`.
# What identifies and describes a protein beside its vector (maps, vector tables).
PROTEIN_DESCRIPTION_COLUMNS = ("brc_fea_id", "assembly_id", "isolate_name", "segment",
                               "function", "subtype", "host", "year", "seq_hash")  # fmt: skip
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


def _length_flags(virus: VirusSpec, config: CleaningConfig) -> pl.Expr:
    """`length_flag` (see `length_flag`) as a polars expression over the columns function,
    length and orf_has_stop: every protein at once."""
    specs = {p.name: p for seg in virus.segments for p in seg.proteins}
    function = pl.col("function")
    expected = function.replace_strict({n: p.expected_length for n, p in specs.items()},
                                       return_dtype=pl.Int64)  # fmt: skip
    primary = function.replace_strict({n: p.primary for n, p in specs.items()},
                                      return_dtype=pl.Boolean)  # fmt: skip
    length = pl.col("length")
    flags = [
        pl.when(pl.col("orf_has_stop").not_().fill_null(False)).then(pl.lit("no_stop_codon")),
        pl.when(primary & (length < config.min_length_fraction * expected)).then(pl.lit("short")),
        pl.when(length > config.max_length_fraction * expected).then(pl.lit("long")),
    ]
    return pl.concat_list(flags).list.drop_nulls().list.join("+")


def _apply_length_policy(
    kept: pl.DataFrame, virus: VirusSpec, config: CleaningConfig, issues: IssueLog
) -> pl.DataFrame:
    """Flag atypical lengths in `length_flag`, count (or stop at) each flagged protein in
    row order, and drop them under length_policy 'drop'."""
    specs = {p.name: p for seg in virus.segments for p in seg.proteins}
    unknown = kept.filter(~pl.col("function").is_in(list(specs)))
    if len(unknown):
        row = unknown.row(0, named=True)
        raise InputDataError(
            f"{row['source']} (brc_fea_id={row['brc_fea_id']})",
            f"function {row['function']!r} is no protein of {virus.name}",
            f"give proteins of {virus.name} ({', '.join(specs)}), or read them as another virus",
        )
    kept = kept.with_columns(length_flag=_length_flags(virus, config))
    flagged = kept.filter(pl.col("length_flag") != "")
    for source, pid, function, length, flag in flagged.select(
        "source", "brc_fea_id", "function", "length", "length_flag"
    ).iter_rows():
        where = f"{source} (brc_fea_id={pid})"
        detail = (
            f"{function} of {length} aa, expected about "
            f"{specs[function].expected_length} aa ({flag})"
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
        kept = kept.filter(pl.col("length_flag") == "")
    return kept


# A record of nothing but standard residues needs only its trailing stop removed.
_CLEAN_RECORD = f"^[{STANDARD_AMINO_ACIDS}]+\\*?$"


def _clean_sequences(
    records: pd.DataFrame, config: CleaningConfig, issues: IssueLog
) -> tuple[np.ndarray, pl.Series, np.ndarray]:
    """(kept, esm2_ready_seq, n_ambiguous) of every record; esm2_ready_seq is null where
    the record is dropped."""
    raw = pl.from_pandas(records["prot_seq"].astype("string"))
    clean = raw.str.contains(_CLEAN_RECORD).fill_null(False).to_numpy()
    if config.max_ambiguous_fraction < 0:  # such a threshold drops even clean records
        clean[:] = False
    seqs = raw.str.strip_suffix("*")
    keep = np.ones(len(raw), dtype=bool)
    n_amb = np.zeros(len(raw), dtype=np.int64)
    # The others take the rule record by record, in input order (issues and errors as ever).
    rows = np.flatnonzero(~clean)
    others = records.iloc[rows]
    fixed = []
    for i, pid, src, value in zip(
        rows, others["brc_fea_id"], others["source"], others["prot_seq"], strict=True
    ):
        cleaned = clean_protein_sequence(str(value), f"{src} (brc_fea_id={pid})", config, issues)
        keep[i] = cleaned is not None
        fixed.append(cleaned[0] if cleaned else None)
        n_amb[i] = cleaned[1] if cleaned else 0
    seqs = seqs.scatter(rows, pl.Series(fixed, dtype=pl.String)) if len(rows) else seqs
    return keep, seqs, n_amb


def build_protein_final(
    records: pd.DataFrame, virus: VirusSpec, config: CleaningConfig | None = None
) -> tuple[pd.DataFrame, CleaningReport]:
    """Clean raw protein records into the `protein_final` table and a report.

    Rows are sorted by assembly_id, segment (registry order), function and brc_fea_id;
    rows equal on all four keep their input order.
    """
    config = config or CleaningConfig()
    report = CleaningReport(n_input=len(records))
    # polars for the column work (BENCHMARKS.md); pandas out, for the IO manager and previews
    keep, seqs, n_amb = _clean_sequences(records, config, report.issues)
    columns = ["brc_fea_id", "assembly_id", "segment", "function", "source", "orf_has_stop"]
    kept = pl.from_pandas(records[columns]).with_columns(
        row=pl.int_range(pl.len()), esm2_ready_seq=seqs, n_ambiguous=pl.Series(n_amb)
    )
    kept = kept.filter(pl.Series(keep)).with_columns(
        length=pl.col("esm2_ready_seq").str.len_chars().cast(pl.Int64)
    )
    kept = _apply_length_policy(kept, virus, config, report.issues)
    order = {name: i for i, name in enumerate(virus.segment_names)}
    seg_order = pl.col("segment").replace_strict(order, default=None, return_dtype=pl.Int64)
    kept = kept.sort(
        pl.col("assembly_id"), seg_order, pl.col("function"), pl.col("brc_fea_id"),
        nulls_last=True, maintain_order=True,
    )  # fmt: skip
    df = records.iloc[kept["row"].to_numpy()].reset_index(drop=True)
    df["esm2_ready_seq"] = _pandas_string(kept["esm2_ready_seq"])
    df["length"] = pd.array(kept["length"].to_numpy(), dtype="Int64")
    df["seq_hash"] = pd.array(
        [sequence_hash(s) for s in kept["esm2_ready_seq"].to_list()], dtype="string"
    )
    df["n_ambiguous"] = pd.array(kept["n_ambiguous"].to_numpy(), dtype="Int64")
    df["length_flag"] = _pandas_string(kept["length_flag"])
    df = df[PROTEIN_FINAL_COLUMNS]
    report.n_output = len(df)
    _count_incomplete_isolates(kept, len(virus.segments), report)
    return df, report


def _pandas_string(values: pl.Series) -> pd.arrays.ArrowStringArray:
    """A polars string column as a pandas "string" array (held as Arrow large_string)."""
    return pd.array(values.to_arrow(compat_level=pl.CompatLevel.oldest()), dtype="string")


def _count_incomplete_isolates(kept: pl.DataFrame, n_segments: int, report: CleaningReport):
    segments = (
        kept.filter(pl.col("assembly_id").is_not_null())
        .group_by("assembly_id")
        .agg(n=pl.col("segment").drop_nulls().n_unique())
        .sort("assembly_id")
    )
    single = segments.filter(pl.col("n") == 1)["assembly_id"]
    report.isolates_single_segment = len(single)
    report.isolates_incomplete = int((segments["n"] < n_segments).sum())
    for isolate in single.head(5):
        report.issues.examples.setdefault("isolate_single_segment", []).append(str(isolate))
    if report.isolates_single_segment:
        report.issues.counts["isolate_single_segment"] = report.isolates_single_segment
