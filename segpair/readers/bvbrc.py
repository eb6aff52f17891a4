"""BV-BRC protein exports: the genome feature table, with sequences in the table or in
the protein FASTA exported beside it, and optionally the genome table for metadata.

Column names are accepted as the BV-BRC web UI exports them ("BRC ID", "Genome ID",
"Product") and as the API names them (patric_id, genome_id, product).
`brc_fea_id` is the BRC ID (patric_id, e.g. ``fig|11320.12345.peg.4``); rows
without one fall back to the Feature ID. Only CDS features are kept when the
table has a feature type column (mature peptides would repeat their precursor).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from segpair.errors import InputDataError, IssueLog
from segpair.headers import parse_header
from segpair.readers.common import (
    METADATA_ALIASES,
    ReadResult,
    check_unique_ids,
    clean_str,
    read_any_table,
    records_frame,
    resolve_columns,
)
from segpair.readers.fasta import iter_fasta
from segpair.readers.table import rows_to_records
from segpair.registry import VirusSpec

BVBRC_ALIASES: dict[str, list[str]] = {
    "brc_fea_id": ["brc_fea_id", "BRC ID", "patric_id", "PATRIC ID", "Feature ID", "feature_id"],
    "assembly_id": ["Genome ID", "genome_id", "assembly_id"],
    "segment": ["Segment", "segment"],
    "function": ["Product", "product", "Gene Symbol", "gene"],
    "prot_seq": ["aa_sequence", "AA Sequence", "Protein Sequence", "protein_sequence"],
    "nt_seq": ["na_sequence", "NA Sequence"],
    "feature_type": ["Feature Type", "feature_type"],
    **METADATA_ALIASES,
}
GENOME_ALIASES: dict[str, list[str]] = {
    "assembly_id": ["Genome ID", "genome_id"],
    **{k: v for k, v in METADATA_ALIASES.items() if k != "accession"},
}


def looks_like_bvbrc(columns: Sequence[str]) -> bool:
    cols = set(columns)
    has_id = bool(cols & {"BRC ID", "patric_id", "brc_fea_id", "Feature ID", "feature_id"})
    has_genome = bool(cols & {"Genome ID", "genome_id"})
    return has_id and has_genome


def _feature_key(header: str) -> str:
    """'fig|11320.123.peg.4|CY171735   product ...' -> 'fig|11320.123.peg.4'."""
    token = header.split()[0] if header.strip() else ""
    m = re.match(r"^(fig\|[^|]+)", token)
    return m.group(1) if m else token


def _protein_fasta_sequences(paths: Sequence[Path]) -> dict[str, str]:
    seqs: dict[str, str] = {}
    for path in paths:
        for header, seq, lineno in iter_fasta(path):
            key = _feature_key(header)
            if key in seqs:
                raise InputDataError(
                    f"{path.name}:{lineno}",
                    f"protein {key!r} appears twice in the protein FASTA",
                    "export each feature once",
                )
            seqs[key] = seq
    return seqs


def read_bvbrc(
    feature_tables: Sequence[Path],
    virus: VirusSpec,
    protein_fasta: Sequence[Path] = (),
    genome_table: Path | None = None,
    columns: Mapping[str, str] | None = None,
    min_orf_fraction: float = 0.5,
) -> ReadResult:
    issues = IssueLog()
    fasta_seqs = _protein_fasta_sequences(protein_fasta)
    genomes: dict[str, dict] = {}
    if genome_table is not None:
        gdf = read_any_table(genome_table)
        gcols = resolve_columns(gdf.columns, GENOME_ALIASES, ["assembly_id"], str(genome_table))
        for rec in gdf.to_dict("records"):
            meta = {k: clean_str(rec[c]) for k, c in gcols.items()}
            genomes[meta.pop("assembly_id") or ""] = meta

    rows: list[dict] = []
    for path in feature_tables:
        df = read_any_table(path)
        if df.empty:
            raise InputDataError(str(path), "has no rows", "check the export")
        cols = resolve_columns(
            df.columns,
            BVBRC_ALIASES,
            ["brc_fea_id", "assembly_id", "function"],
            str(path),
            columns,
        )
        if "feature_type" in cols:
            keep = df[cols["feature_type"]].fillna("CDS").str.upper() == "CDS"
            for idx in df.index[~keep]:
                issues.add(
                    "non_cds_feature_skipped",
                    f"{path.name}:{idx + 2}",
                    f"feature type {df.at[idx, cols['feature_type']]}",
                )
            df = df[keep]
        if "prot_seq" not in cols:
            if not fasta_seqs:
                raise InputDataError(
                    str(path),
                    "the feature table has no amino-acid sequence column and no protein "
                    "FASTA was given",
                    "export the protein FASTA from BV-BRC beside the table "
                    "([bvbrc] protein_fasta in manifest.toml) or add an aa_sequence column",
                )
            ids = df[cols["brc_fea_id"]]
            df = df.assign(aa_sequence=ids.map(fasta_seqs))
            cols["prot_seq"] = "aa_sequence"
            missing = df[df["aa_sequence"].isna()]
            if not missing.empty:
                raise InputDataError(
                    f"{path.name}:{int(missing.index[0]) + 2} "
                    f"({cols['brc_fea_id']}={missing.iloc[0][cols['brc_fea_id']]})",
                    f"{len(missing)} feature(s) have no sequence in the protein FASTA",
                    "export the protein FASTA for the same features as the table",
                )
        if genomes:
            for key in ("isolate_name", "subtype", "host", "year", "country"):
                if key not in cols:
                    df[f"_genome_{key}"] = df[cols["assembly_id"]].map(
                        lambda g, k=key: (genomes.get(g) or {}).get(k)
                    )
                    cols[key] = f"_genome_{key}"
        recs = rows_to_records(
            df,
            cols,
            virus,
            lambda i, r, p=path, c=cols: (
                f"{p.name}:{i + 2} ({c['brc_fea_id']}={r[c['brc_fea_id']]})"
            ),
            issues,
            min_orf_fraction,
        )
        # Genome names like "Influenza A virus A/Ohio/09/2015(H3N2)" carry the strain.
        for rec in recs:
            if rec["isolate_name"]:
                info = parse_header(rec["isolate_name"])
                rec["isolate_name"] = info.strain or rec["isolate_name"]
        rows += recs
    df = records_frame(rows)
    check_unique_ids(df)
    return ReadResult(df, issues, "bvbrc", [str(p) for p in [*feature_tables, *protein_fasta]])
