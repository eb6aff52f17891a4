"""FASTA of proteins, coding sequences or whole segments (NCBI/IRD style headers).

Isolate and segment come from the header or from a metadata table keyed by
accession (for example the `accession -> genome_id` table that ships with
NCBI-derived sets). Nucleotide records are translated (see `segpair.translate`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from segpair.errors import InputDataError, IssueLog
from segpair.headers import HeaderInfo, parse_header
from segpair.readers.common import (
    CORRUPT_GZIP_ERRORS,
    METADATA_ALIASES,
    ReadResult,
    check_unique_ids,
    clean_str,
    corrupt_gzip_error,
    open_text,
    parse_year,
    proteins_from_sequence,
    read_any_table,
    records_frame,
    resolve_columns,
)
from segpair.registry import VirusSpec
from segpair.translate import looks_like_nucleotide

_SEQ_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz*-.")


def iter_fasta(path: Path) -> Iterator[tuple[str, str, int]]:
    """(header, sequence, header line number) for each record; malformed input is an error."""
    header: str | None = None
    header_line = lineno = 0
    chunks: list[str] = []
    with open_text(path) as fh:
        try:
            for lineno, line in enumerate(fh, start=1):
                line = line.rstrip("\r\n")
                if line.startswith(">"):
                    if header is not None:
                        yield header, "".join(chunks), header_line
                    header, header_line, chunks = line[1:], lineno, []
                    continue
                stripped = line.strip()
                if not stripped or stripped.startswith(";"):
                    continue
                if header is None:
                    raise InputDataError(
                        f"{path}:{lineno}",
                        "sequence data before the first '>' header line: not FASTA",
                        "start every record with a '>' header line",
                    )
                bad = set(stripped) - _SEQ_CHARS
                if bad:
                    raise InputDataError(
                        f"{path}:{lineno} (record {header.split()[0] if header else '?'})",
                        f"sequence line has characters {sorted(bad)!r}",
                        "sequence lines may hold only residue letters, '*', '-' or '.'; "
                        "remove numbers and spaces (GenBank flat-file layout is not FASTA)",
                    )
                chunks.append(stripped)
        except CORRUPT_GZIP_ERRORS as exc:
            raise corrupt_gzip_error(path, exc, f" (after line {lineno})") from exc
        except UnicodeDecodeError as exc:
            raise InputDataError(
                str(path),
                f"is not UTF-8 text ({exc})",
                "re-export it as UTF-8 text"
                + (
                    "; a .gz that decodes to garbage may be corrupt: test it with gzip -t"
                    if path.suffix == ".gz"
                    else ""
                ),
            ) from exc
    if header is not None:
        yield header, "".join(chunks), header_line


class IsolateTable:
    """accession -> isolate id and metadata, from a user's metadata table."""

    def __init__(
        self, path: Path, accession_column: str | None, isolate_column: str | None
    ) -> None:
        df = read_any_table(path)
        wanted = {
            "accession": [accession_column] if accession_column else METADATA_ALIASES["accession"],
            "assembly_id": [isolate_column]
            if isolate_column
            else ["genome_id", "assembly_id", "isolate_id", "Genome ID"],
            **{k: v for k, v in METADATA_ALIASES.items() if k != "accession"},
        }
        cols = resolve_columns(df.columns, wanted, ["accession", "assembly_id"], str(path))
        self.path = path
        self.rows: dict[str, dict] = {}
        for i, rec in enumerate(df.to_dict("records")):
            acc = clean_str(rec[cols["accession"]])
            if acc is None:
                raise InputDataError(
                    f"{path}:{i + 2}", "empty accession", "fill in or drop the row"
                )
            meta = {k: clean_str(rec[c]) for k, c in cols.items() if k != "accession"}
            self.rows[acc] = meta
            self.rows.setdefault(acc.split(".")[0], meta)

    def lookup(self, accession: str | None) -> dict | None:
        if accession is None:
            return None
        return self.rows.get(accession) or self.rows.get(accession.split(".")[0])


def _isolate_and_meta(info: HeaderInfo, table: IsolateTable | None) -> dict:
    row = table.lookup(info.accession) if table else None
    meta = {
        "assembly_id": None,
        "isolate_name": info.strain,
        "subtype": info.fields.get("subtype") or info.subtype,
        "host": info.host,
        "year": info.year,
        "country": None,
        "location": info.location,
    }
    if row:
        for key, value in row.items():
            if value is not None:
                meta[key] = parse_year(value) if key == "year" else value
    if meta["assembly_id"] is None:
        meta["assembly_id"] = info.strain
    return meta


UnmatchedPolicy = Literal["error", "use_header"]


def _check_unmatched(
    unmatched: list[str], n_records: int, table: IsolateTable, policy: UnmatchedPolicy
) -> None:
    """Records the metadata table lacks: an error by default, since the header's strain
    name would then stand for their isolate and split one genome into two 'isolates'."""
    if unmatched and policy == "error":
        raise InputDataError(
            str(table.path),
            f"{len(unmatched)} of {n_records} FASTA records have an accession this metadata "
            f"table lacks, e.g. {'; '.join(unmatched[:5])}",
            "add rows for those accessions (check that the table's accession column holds "
            "GenBank accessions), or drop the records; to accept the strain name in the header "
            'as their isolate, set unmatched_accessions = "use_header" under [fasta] in '
            "manifest.toml (those records are then counted as metadata_from_header)",
        )


def _segment_of(info: HeaderInfo, virus: VirusSpec, where: str) -> tuple[str, tuple | None]:
    """(segment, (segment, protein) the annotation names or None), or an error."""
    match = virus.match_product(info.description)
    segment = virus.resolve_segment(info.segment_token) if info.segment_token else None
    if segment is None and match is not None:
        segment = match[0]
    if segment is None:
        raise InputDataError(
            where,
            f"no segment of {virus.name} ({virus.segment_names}) can be read from the "
            f"header (segment token: {info.segment_token!r})",
            "add 'segment N' / '[segment N]' / 'Segment:N' or a gene name to the header",
        )
    return segment, match


def _record_rows(
    info: HeaderInfo, seq: str, where: str, meta: dict, virus: VirusSpec, read: _ReadState
) -> list[dict]:
    """The protein rows of one FASTA record (one, or one per ORF of a nucleotide record)."""
    segment, match = _segment_of(info, virus, where)
    # A header names a protein only for protein records: a nucleotide record's
    # header describes the whole segment ("nonstructural protein and NP genes").
    named = match is not None and match[0] == segment and not looks_like_nucleotide(seq)
    protein = match[1] if named else None
    found = proteins_from_sequence(
        seq, segment, protein, virus, where, read.issues, read.min_orf_fraction
    )
    acc = info.accession or info.record_id
    return [
        {
            "brc_fea_id": f"{acc}:{p.name}" if p.nt_seq is not None else info.record_id,
            "segment": segment,
            "function": p.name,
            "product": p.name,
            "prot_seq": p.protein,
            "nt_seq": p.nt_seq,
            "orf_has_stop": p.has_stop,
            "accession": acc,
            "source": where,
            **meta,
        }
        for p in found
    ]


@dataclass
class _ReadState:
    table: IsolateTable | None
    min_orf_fraction: float
    issues: IssueLog = field(default_factory=IssueLog)
    unmatched: list[str] = field(default_factory=list)
    n_records: int = 0


def _read_one_file(path: Path, virus: VirusSpec, read: _ReadState) -> list[dict]:
    rows: list[dict] = []
    n_before = read.n_records
    for header, seq, lineno in iter_fasta(path):
        read.n_records += 1
        where = f"{path.name}:{lineno} (record {header.split()[0] if header else '?'})"
        if not header.strip():
            raise InputDataError(where, "empty header", "give every record an id")
        if not seq.strip("-.*"):
            raise InputDataError(
                where, "empty sequence", "remove the record or supply its sequence"
            )
        info = parse_header(header)
        if read.table is not None and read.table.lookup(info.accession) is None:
            read.unmatched.append(f"{info.accession or info.record_id} ({where})")
            read.issues.add("metadata_from_header", where, f"accession {info.accession}")
        meta = _isolate_and_meta(info, read.table)
        if meta["assembly_id"] is None:
            raise InputDataError(
                where,
                "no isolate: the header names no strain/isolate and no metadata table "
                "maps its accession",
                "add a metadata table with accession and isolate columns "
                "([fasta] metadata_table in manifest.toml) or put the strain name in the header",
            )
        rows += _record_rows(info, seq, where, meta, virus, read)
    if read.n_records == n_before:
        raise InputDataError(str(path), "holds no FASTA records", "check the file")
    return rows


def read_fasta(
    files: list[Path],
    virus: VirusSpec,
    metadata_table: Path | None = None,
    accession_column: str | None = None,
    isolate_column: str | None = None,
    min_orf_fraction: float = 0.5,
    unmatched_accessions: UnmatchedPolicy = "error",
) -> ReadResult:
    table = (
        IsolateTable(metadata_table, accession_column, isolate_column) if metadata_table else None
    )
    read = _ReadState(table, min_orf_fraction)
    rows = [row for path in files for row in _read_one_file(path, virus, read)]
    if table is not None:
        _check_unmatched(read.unmatched, read.n_records, table, unmatched_accessions)
    df = records_frame(rows)
    check_unique_ids(df)
    return ReadResult(df, read.issues, "fasta", [str(p) for p in files])
