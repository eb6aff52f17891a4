"""Readers for the formats users have: BV-BRC exports, NCBI-style FASTA, plain tables."""

from segpair.readers.bvbrc import read_bvbrc
from segpair.readers.common import RAW_COLUMNS, ReadResult
from segpair.readers.fasta import read_fasta
from segpair.readers.manifest import (
    MANIFEST_NAME,
    DataVersionManifest,
    detect_format,
    load_manifest,
    read_data_version,
)
from segpair.readers.table import read_tables

__all__ = [
    "MANIFEST_NAME",
    "RAW_COLUMNS",
    "DataVersionManifest",
    "ReadResult",
    "detect_format",
    "load_manifest",
    "read_bvbrc",
    "read_data_version",
    "read_fasta",
    "read_tables",
]
