"""What every reader shares: the raw record schema, column resolution, row assembly."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from segpair.errors import InputDataError, IssueLog
from segpair.registry import VirusSpec
from segpair.translate import find_segment_proteins, looks_like_nucleotide, normalize_nucleotide

# Columns every reader returns, one row per protein, before cleaning.
RAW_COLUMNS = [
    "brc_fea_id",
    "assembly_id",
    "isolate_name",
    "segment",
    "function",
    "product",
    "prot_seq",
    "nt_seq",
    "accession",
    "subtype",
    "host",
    "year",
    "country",
    "location",
    "source",
    # Nucleotide input: whether the ORF ends in a stop codon (False: the record is cut
    # inside the gene); empty for protein input, which carries no such evidence.
    "orf_has_stop",
]

# Metadata columns users' tables carry, by the names seen in BV-BRC, NCBI and IRD exports.
METADATA_ALIASES: dict[str, list[str]] = {
    "isolate_name": ["isolate_name", "strain", "strain_name", "genome_name", "Genome Name"],
    "subtype": ["subtype", "Subtype", "serotype", "Serotype", "genotype", "Genotype"],
    "host": ["host", "Host", "host_common_name", "Host Common Name", "host_name", "Host Name"],
    "year": ["year", "Year", "collection_year", "Collection Year", "Collection year"],
    "country": ["country", "Country", "isolation_country", "Isolation Country"],
    "accession": ["accession", "Accession", "GenBank Accessions", "genbank_accessions"],
}


@dataclass
class ReadResult:
    """Raw protein records plus the non-fatal problems met while reading them."""

    records: pd.DataFrame
    issues: IssueLog
    reader: str
    files: list[str]


# What a truncated, bit-flipped or mislabelled .gz raises part-way through reading.
CORRUPT_GZIP_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)


def corrupt_gzip_error(path: Path, exc: BaseException, where: str = "") -> InputDataError:
    """One error naming the unreadable compressed file, for any of CORRUPT_GZIP_ERRORS."""
    kind = {
        EOFError: "ends early (truncated download or copy)",
        gzip.BadGzipFile: "is not gzip data or fails its checksum",
    }.get(type(exc), "has corrupt compressed data")
    return InputDataError(
        f"{path}{where}",
        f"{kind}: {type(exc).__name__}: {exc}",
        f"test it with `gzip -t {path.name}` and copy or download it again; a file that is "
        "not compressed must not end in .gz",
    )


def open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="strict")
    return open(path, encoding="utf-8")


def read_any_table(path: Path) -> pd.DataFrame:
    """CSV, TSV or Parquet by extension, every column read as text (ids keep leading zeros)."""
    name = path.name.lower().removesuffix(".gz")
    try:
        if name.endswith(".parquet"):
            return pd.read_parquet(path).astype("string")
        sep = "," if name.endswith(".csv") else "\t"
        return pd.read_csv(path, sep=sep, dtype="string", keep_default_na=False, na_values=[""])
    except CORRUPT_GZIP_ERRORS as exc:
        raise corrupt_gzip_error(path, exc) from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise InputDataError(
            str(path),
            f"cannot be parsed as a {'Parquet' if name.endswith('.parquet') else 'delimited'} "
            f"table ({exc})",
            "check the delimiter (.csv is comma, .tsv/.txt is tab), quoting and encoding (UTF-8)",
        ) from exc


def resolve_columns(
    columns: Sequence[str],
    wanted: Mapping[str, Sequence[str]],
    required: Sequence[str],
    where: str,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Map canonical names to the table's own column names.

    `overrides` (canonical -> user column, from the manifest) wins; otherwise the
    first alias present. A required name with no column is an error listing what
    the table does have.
    """
    present = set(columns)
    found: dict[str, str] = {}
    for canon, aliases in wanted.items():
        user = (overrides or {}).get(canon)
        if user is not None:
            if user not in present:
                raise InputDataError(
                    where,
                    f"manifest maps {canon!r} to column {user!r}, which the table lacks",
                    f"use one of its columns: {sorted(present)}",
                )
            found[canon] = user
            continue
        for alias in aliases:
            if alias in present:
                found[canon] = alias
                break
    missing = [c for c in required if c not in found]
    if missing:
        raise InputDataError(
            where,
            f"missing required column(s) {missing} (accepted names: "
            + "; ".join(f"{m}: {list(wanted[m])}" for m in missing)
            + f"); the table has {sorted(present)}",
            "rename the columns or map them in the data version's manifest.toml "
            "([table.columns] / [bvbrc.columns])",
        )
    return found


def clean_str(value: object) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return None
    text = str(value).strip()
    return text or None


def parse_year(value: object) -> int | None:
    text = clean_str(value)
    if text is None:
        return None
    digits = text[:4]
    return int(digits) if digits.isdigit() else None


class FoundProtein(NamedTuple):
    name: str
    protein: str
    nt_seq: str | None  # the coding sequence, for nucleotide input
    has_stop: bool | None  # None for protein input


def proteins_from_sequence(
    seq: str,
    segment: str,
    protein: str | None,
    virus: VirusSpec,
    where: str,
    issues: IssueLog,
    min_orf_fraction: float,
) -> list[FoundProtein]:
    """The protein(s) of one record's sequence, with coding sequence and stop evidence.

    A protein sequence is taken as it is. A nucleotide sequence is searched for the
    segment's ORFs (see `segpair.translate`); when the record names its protein,
    only that one is kept.
    """
    if not looks_like_nucleotide(seq):
        if protein is None:
            primaries = virus.segment(segment).primary_proteins
            if len(primaries) != 1:
                raise InputDataError(
                    where,
                    f"protein sequence on segment {segment}, which encodes "
                    f"{[p.name for p in primaries]}, with no protein name",
                    "name the protein in the header (e.g. '(N)') or in a product/function column",
                )
            protein = primaries[0].name
        return [FoundProtein(protein, seq, None, None)]
    nt = normalize_nucleotide(seq)
    bad = sorted(set(nt) - set("ACGTNRYKMSWBDHV"))
    if bad:
        raise InputDataError(
            where,
            f"nucleotide sequence has characters {bad} that are no IUPAC nucleotide code",
            "remove them or fix the record",
        )
    found, problems = find_segment_proteins(nt, virus.segment(segment), min_orf_fraction)
    for problem in problems:
        issues.add("no_usable_orf", where, problem)
    if protein is not None:
        found = [(name, orf) for name, orf in found if name == protein]
    return [FoundProtein(name, orf.protein, orf.nt_seq, orf.has_stop) for name, orf in found]


def records_frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=RAW_COLUMNS)
    df["year"] = pd.array(df["year"], dtype="Int64")
    df["orf_has_stop"] = pd.array(df["orf_has_stop"], dtype="boolean")
    for col in RAW_COLUMNS:
        if col not in ("year", "orf_has_stop"):
            df[col] = df[col].astype("string")
    return df


def check_unique_ids(df: pd.DataFrame) -> None:
    dup = df[df["brc_fea_id"].duplicated(keep=False)]
    if not dup.empty:
        first = dup.iloc[0]["brc_fea_id"]
        sources = dup.loc[dup["brc_fea_id"] == first, "source"].tolist()
        raise InputDataError(
            f"protein id {first!r}",
            f"appears {len(sources)} times ({'; '.join(sources[:4])}); "
            f"{dup['brc_fea_id'].nunique()} ids are duplicated in all",
            "protein ids must be unique within a data version: drop the repeated records "
            "or give them distinct ids",
        )
