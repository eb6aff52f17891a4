"""Plain tables (CSV, TSV, Parquet) with named columns, and the row logic BV-BRC shares.

Required: a protein id, an isolate id, a sequence (protein or nucleotide), and a
segment or a protein name (function/product). Other columns the table has under
known names (subtype, host, year, country, strain) are kept as metadata.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from segpair.errors import InputDataError, IssueLog
from segpair.headers import parse_header
from segpair.readers.common import (
    METADATA_ALIASES,
    ReadResult,
    check_unique_ids,
    clean_str,
    parse_year,
    proteins_from_sequence,
    read_any_table,
    records_frame,
    resolve_columns,
)
from segpair.registry import VirusSpec

TABLE_ALIASES: dict[str, list[str]] = {
    "brc_fea_id": ["brc_fea_id", "protein_id", "id"],
    "assembly_id": ["assembly_id", "isolate_id", "genome_id"],
    "segment": ["segment"],
    "function": ["function", "protein", "protein_name", "product", "gene"],
    "prot_seq": ["prot_seq", "protein_sequence", "aa_sequence", "sequence"],
    "nt_seq": ["nt_seq", "nucleotide_sequence", "cds_sequence", "na_sequence"],
    **METADATA_ALIASES,
}


def rows_to_records(
    df: pd.DataFrame,
    cols: Mapping[str, str],
    virus: VirusSpec,
    where_of_row,
    issues: IssueLog,
    min_orf_fraction: float,
) -> list[dict]:
    """Turn table rows into raw protein records.

    The segment comes from a segment column or from the protein's annotation; the
    protein from a function/product/gene column matched against the registry. A
    row whose annotation names no protein of this virus is dropped and counted.
    """
    records: list[dict] = []
    # The frame's index is the row's position in the file, also after filtering.
    for i, row in zip(df.index, df.to_dict("records"), strict=True):
        where = where_of_row(int(i), row)
        get = lambda key, row=row: clean_str(row[cols[key]]) if key in cols else None  # noqa: E731
        pid, isolate = get("brc_fea_id"), get("assembly_id")
        if pid is None:
            raise InputDataError(where, "empty protein id", "fill in or drop the row")
        if isolate is None:
            raise InputDataError(where, "empty isolate id", "fill in or drop the row")
        annotation = get("function")
        match = virus.match_product(annotation) if annotation else None
        seg_token = get("segment")
        segment = virus.resolve_segment(seg_token) if seg_token else None
        if seg_token and segment is None:
            raise InputDataError(
                where,
                f"segment {seg_token!r} is no segment of {virus.name} {virus.segment_names}",
                "use the registry's segment names or numbers, or check the virus of this data",
            )
        if annotation and match is None:
            issues.add("unrecognised_product", where, f"product {annotation!r}")
            continue
        if segment is None:
            if match is None:
                raise InputDataError(
                    where,
                    "neither a segment nor a protein name",
                    "add a segment column or a function/product column",
                )
            segment = match[0]
        elif match is not None and match[0] != segment:
            raise InputDataError(
                where,
                f"product {annotation!r} is {match[1]} on segment {match[0]}, "
                f"but the row says segment {segment}",
                "correct the segment or the product",
            )
        seq = get("prot_seq") or get("nt_seq")
        if seq is None:
            raise InputDataError(where, "empty sequence", "remove the row or supply its sequence")
        protein = match[1] if match else None
        found = proteins_from_sequence(
            seq, segment, protein, virus, where, issues, min_orf_fraction
        )
        name_info = parse_header(get("isolate_name") or "") if get("isolate_name") else None
        for name, prot_seq, nt_seq, has_stop in found:
            records.append(
                {
                    "brc_fea_id": pid if len(found) == 1 else f"{pid}:{name}",
                    "assembly_id": isolate,
                    "isolate_name": get("isolate_name"),
                    "segment": segment,
                    "function": name,
                    "product": annotation or name,
                    "prot_seq": prot_seq,
                    "nt_seq": nt_seq or get("nt_seq"),
                    "accession": get("accession"),
                    "subtype": get("subtype") or (name_info.subtype if name_info else None),
                    "host": get("host") or (name_info.host if name_info else None),
                    "year": parse_year(get("year")) or (name_info.year if name_info else None),
                    "country": get("country"),
                    "location": name_info.location if name_info else None,
                    "source": where,
                    "orf_has_stop": has_stop,
                }
            )
    return records


def read_tables(
    files: Sequence[Path],
    virus: VirusSpec,
    columns: Mapping[str, str] | None = None,
    min_orf_fraction: float = 0.5,
) -> ReadResult:
    issues = IssueLog()
    rows: list[dict] = []
    for path in files:
        df = read_any_table(path)
        if df.empty:
            raise InputDataError(str(path), "has no rows", "check the file")
        cols = resolve_columns(
            df.columns, TABLE_ALIASES, ["brc_fea_id", "assembly_id"], str(path), columns
        )
        if "prot_seq" not in cols and "nt_seq" not in cols:
            raise InputDataError(
                str(path),
                "no sequence column (accepted: "
                f"{TABLE_ALIASES['prot_seq'] + TABLE_ALIASES['nt_seq']})",
                "add the protein or coding sequence, or map the column in manifest.toml",
            )
        if "segment" not in cols and "function" not in cols:
            raise InputDataError(
                str(path),
                f"neither a segment nor a protein-name column; the table has {list(df.columns)}",
                "add a 'segment' or 'function' column, or map one in manifest.toml",
            )
        parquet = path.suffix == ".parquet"
        rows += rows_to_records(
            df,
            cols,
            virus,
            lambda i, _r, p=path, pq=parquet: (
                f"{p.name}:{'row ' if pq else ''}{i + (1 if pq else 2)}"
            ),
            issues,
            min_orf_fraction,
        )
    df = records_frame(rows)
    check_unique_ids(df)
    return ReadResult(df, issues, "table", [str(p) for p in files])
