"""A data version folder, its optional `manifest.toml`, and choosing its reader.

A data version is a folder `data/raw/{virus}/{data_version}/`. Its `manifest.toml`
says which reader applies and how (files, column maps, metadata table, origin).
Without a manifest the reader is detected from the files, and the reason is
reported; when the files allow more than one reading, that is an error asking
for a manifest rather than a guess.

Example (real data read in place from outside the repository)::

    format = "fasta"
    origin = "real"
    description = "NCBI influenza A complete genomes, 2010s"
    [fasta]
    files = ["/data/ncbi/influenza_a_2010s.fasta.gz"]
    metadata_table = "/data/ncbi/influenza_a_2010s.genomes.tsv"
    isolate_column = "genome_id"
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from segpair.errors import InputDataError
from segpair.readers.bvbrc import looks_like_bvbrc, read_bvbrc
from segpair.readers.common import ReadResult, read_any_table
from segpair.readers.fasta import read_fasta
from segpair.readers.table import TABLE_ALIASES, read_tables
from segpair.registry import VirusSpec

MANIFEST_NAME = "manifest.toml"
FASTA_SUFFIXES = (".fasta", ".fa", ".fas", ".faa", ".fna", ".ffn")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FastaOptions(_Strict):
    files: list[str] | None = None
    metadata_table: str | None = None
    accession_column: str | None = None
    isolate_column: str | None = None
    # Records whose accession the metadata table lacks: "error" (default) stops the run
    # naming them; "use_header" takes the header's strain name as their isolate, counted.
    unmatched_accessions: Literal["error", "use_header"] = "error"


class TableOptions(_Strict):
    files: list[str] | None = None
    columns: dict[str, str] = Field(default_factory=dict)


class BvbrcOptions(_Strict):
    features: list[str] | None = None
    protein_fasta: list[str] = Field(default_factory=list)
    genome_table: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)


class DataVersionManifest(_Strict):
    format: Literal["fasta", "table", "bvbrc"]
    origin: Literal["real", "simulated"] = "real"
    description: str = ""
    fasta: FastaOptions = Field(default_factory=FastaOptions)
    table: TableOptions = Field(default_factory=TableOptions)
    bvbrc: BvbrcOptions = Field(default_factory=BvbrcOptions)
    simulation: dict = Field(default_factory=dict)


def _strip_gz(name: str) -> str:
    return name.lower().removesuffix(".gz")


def is_fasta_path(p: Path) -> bool:
    return _strip_gz(p.name).endswith(FASTA_SUFFIXES)


def is_table_path(p: Path) -> bool:
    return _strip_gz(p.name).endswith(TABLE_SUFFIXES)


MINIMAL_MANIFEST = (
    'format = "fasta"  # or "table", "bvbrc"\n'
    'origin = "real"\n'
    "[fasta]\n"
    'files = ["genomes.fasta.gz"]\n'
    'metadata_table = "genomes.tsv"'
)


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names allowed where `loc` points (the section of an unknown key)."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None) if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            break
        model = annotation
    return sorted(model.model_fields)


def _validation_problems(exc: ValidationError) -> str:
    """One phrase per mistake: the key's dotted path, what is wrong, what is allowed."""
    problems = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(DataVersionManifest, err["loc"])
            problems.append(f"unknown key {key!r} (allowed here: {allowed})")
        elif err["type"] == "missing":
            problems.append(f"required key {key!r} is missing")
        else:
            problems.append(f"{key} = {err.get('input')!r}: {err['msg']}")
    return "; ".join(problems)


def load_manifest(folder: Path) -> DataVersionManifest | None:
    path = folder / MANIFEST_NAME
    if not path.exists():
        return None
    fix = (
        f"a minimal valid manifest is:\n{MINIMAL_MANIFEST}\n"
        "(every key is documented in segpair/readers/manifest.py and README 'Your own data')"
    )
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InputDataError(str(path), f"is not valid TOML ({exc})", fix) from exc
    try:
        return DataVersionManifest(**raw)
    except ValidationError as exc:
        raise InputDataError(str(path), _validation_problems(exc), fix) from exc


def _resolve(folder: Path, names: list[str]) -> list[Path]:
    paths = [(folder / n).expanduser() for n in names]
    for p in paths:
        if not p.exists():
            raise InputDataError(
                str(folder / MANIFEST_NAME),
                f"names {p}, which does not exist",
                "fix the path (relative paths are read from the data version folder)",
            )
    return paths


def detect_format(folder: Path) -> tuple[DataVersionManifest, str]:
    """A manifest inferred from the folder's files, and the reason, or an error."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    fastas = [p for p in files if is_fasta_path(p)]
    tables = [p for p in files if is_table_path(p)]
    if not fastas and not tables:
        raise InputDataError(
            str(folder),
            f"holds no FASTA ({', '.join(FASTA_SUFFIXES)}) or table "
            f"({', '.join(TABLE_SUFFIXES)}) files",
            "put the raw files in this folder or write a manifest.toml",
        )
    bvbrc, seq_tables, meta_tables = [], [], []
    for t in tables:
        cols = list(read_any_table(t).columns)
        if looks_like_bvbrc(cols):
            bvbrc.append(t)
        elif {"prot_seq", "nt_seq", *TABLE_ALIASES["prot_seq"], *TABLE_ALIASES["nt_seq"]} & set(
            cols
        ):
            seq_tables.append(t)
        else:
            meta_tables.append(t)
    if bvbrc and not seq_tables:
        opts = BvbrcOptions(
            features=[p.name for p in bvbrc],
            protein_fasta=[p.name for p in fastas],
            genome_table=meta_tables[0].name if len(meta_tables) == 1 else None,
        )
        reason = f"BV-BRC feature table columns in {opts.features}" + (
            f", protein FASTA {opts.protein_fasta}" if fastas else ""
        )
        return DataVersionManifest(format="bvbrc", bvbrc=opts), reason
    if seq_tables and not fastas and not bvbrc:
        reason = f"tables with sequence columns: {[p.name for p in seq_tables]}"
        return DataVersionManifest(
            format="table", table=TableOptions(files=[p.name for p in seq_tables])
        ), reason
    if fastas and not bvbrc and not seq_tables and len(meta_tables) <= 1:
        meta = meta_tables[0].name if meta_tables else None
        reason = f"FASTA files {[p.name for p in fastas]}" + (
            f" with metadata table {meta}" if meta else ""
        )
        return DataVersionManifest(
            format="fasta", fasta=FastaOptions(files=[p.name for p in fastas], metadata_table=meta)
        ), reason
    raise InputDataError(
        str(folder),
        "the files allow more than one reading "
        f"(FASTA: {[p.name for p in fastas]}, BV-BRC tables: {[p.name for p in bvbrc]}, "
        f"sequence tables: {[p.name for p in seq_tables]}, other tables: "
        f"{[p.name for p in meta_tables]})",
        f"write {MANIFEST_NAME} in the folder naming the format and files",
    )


def read_data_version(
    folder: Path, virus: VirusSpec, min_orf_fraction: float = 0.5
) -> tuple[ReadResult, DataVersionManifest, str]:
    """Read a data version folder: (records and issues, the manifest used, why that reader)."""
    if not folder.is_dir():
        parent = folder.parent
        existing = sorted(p.name for p in parent.iterdir() if p.is_dir()) if parent.is_dir() else []
        raise InputDataError(
            str(folder),
            "data version folder does not exist",
            f"create it with the raw files (see data/README.md); existing versions of "
            f"{virus.name}: {existing}",
        )
    manifest = load_manifest(folder)
    if manifest is not None:
        reason = f"{MANIFEST_NAME} says format = {manifest.format!r}"
    else:
        manifest, reason = detect_format(folder)
        reason = f"detected ({reason}); write {MANIFEST_NAME} to fix the choice"

    all_files = sorted(p for p in folder.iterdir() if p.is_file())
    if manifest.format == "fasta":
        o = manifest.fasta
        files = _resolve(folder, o.files) if o.files else [p for p in all_files if is_fasta_path(p)]
        meta = _resolve(folder, [o.metadata_table])[0] if o.metadata_table else None
        result = read_fasta(
            files,
            virus,
            meta,
            o.accession_column,
            o.isolate_column,
            min_orf_fraction,
            o.unmatched_accessions,
        )
    elif manifest.format == "table":
        o = manifest.table
        files = _resolve(folder, o.files) if o.files else [p for p in all_files if is_table_path(p)]
        result = read_tables(files, virus, o.columns, min_orf_fraction)
    else:
        o = manifest.bvbrc
        features = _resolve(folder, o.features) if o.features else []
        if not features:
            raise InputDataError(
                str(folder), "no BV-BRC feature table given", "list it in [bvbrc] features"
            )
        result = read_bvbrc(
            features,
            virus,
            _resolve(folder, o.protein_fasta),
            _resolve(folder, [o.genome_table])[0] if o.genome_table else None,
            o.columns,
            min_orf_fraction,
        )
    return result, manifest, reason
