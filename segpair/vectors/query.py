"""New sequences as queries of a vector table: read from FASTA and embedded exactly as the
table's vectors were.

The embedder is rebuilt from the description the table records (its cache's: model,
pooling, layer, length, precision) and must give the table's signature, or the query is
refused: a vector of another featurizer or model would land anywhere in the table's space.
K-mer embedders run anywhere; language models need their weights (where the cache's
description says, or `weights`).

Input per record, by what the embedder reads (`input_kind`):

- protein embedders (kmer_aa3, esm2, fastesm2): a protein sequence is cleaned as
  protein_final's (`segpair.cleaning`); a nucleotide one is translated: its longest
  ATG-started open reading frame on either strand (a whole segment's main protein; give
  the protein itself for another);
- nucleotide embedders (kmer_nt6, nucleotide_transformer): the coding sequence, i.e. the
  longest open reading frame of the record without its stop codon, as the cache holds
  it (a segment's UTRs are left out); a protein record is refused, naming it;
- a merged embedder reading both: a nucleotide record gives both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from segpair.cleaning import CleaningConfig, clean_protein_sequence
from segpair.embeddings.base import Embedder, input_kinds, signature_of
from segpair.embeddings.factory import embedder_from_description
from segpair.embeddings.pipeline import input_sequences
from segpair.errors import InputDataError, IssueLog
from segpair.readers.fasta import iter_fasta
from segpair.translate import longest_orf_per_strand, looks_like_nucleotide, normalize_nucleotide
from segpair.vectors.search import VectorTable

QUERY_COLUMNS = ["query", "esm2_ready_seq", "nt_seq", "read_as"]


def read_query_fasta(path: Path, input_kind: str, embedder: str) -> pd.DataFrame:
    """One row per FASTA record: `query` (the header's first word), the sequences the
    embedder reads, and `read_as` (how the record was taken)."""
    rows = [
        _query_row(header, seq, f"{path}:{line}", input_kind, embedder)
        for header, seq, line in iter_fasta(Path(path))
    ]
    if not rows:
        raise InputDataError(str(path), "holds no FASTA record", "give at least one sequence")
    out = pd.DataFrame(rows, columns=QUERY_COLUMNS)
    repeated = out["query"][out["query"].duplicated()]
    if len(repeated):
        raise InputDataError(
            str(path),
            f"names {repeated.iloc[0]!r} twice",
            "give each record its own name (first word of the header)",
        )
    return out


def _query_row(header: str, seq: str, where: str, input_kind: str, embedder: str) -> dict:
    name = header.split()[0] if header.split() else where
    kinds = input_kinds(input_kind)
    if not looks_like_nucleotide(seq):
        if "nucleotide" in kinds:
            raise InputDataError(
                f"{where} ({name})",
                f"is a protein sequence, but {embedder} embeds coding DNA",
                "give the record's coding nucleotide sequence, or query the table of a protein "
                "embedder (e.g. -e kmer_aa3)",
            )
        return {
            "query": name,
            "esm2_ready_seq": _clean(seq, where),
            "nt_seq": None,
            "read_as": "protein",
        }
    orfs = longest_orf_per_strand(normalize_nucleotide(seq))
    if not orfs:
        raise InputDataError(
            f"{where} ({name})",
            "nucleotide sequence with no ATG-started open reading frame on either strand",
            "give a coding sequence",
        )
    orf = max(orfs.values(), key=lambda o: len(o.protein))
    strand = "+" if orf.strand == 1 else "-"
    return {
        "query": name,
        "esm2_ready_seq": _clean(orf.protein, where),
        "nt_seq": orf.nt_seq,
        "read_as": f"nucleotide: longest ORF, {strand} strand, {orf.start + 1}-{orf.end}, "
        f"{len(orf.protein)} aa",
    }


def _clean(protein: str, where: str) -> str:
    issues = IssueLog()
    cleaned = clean_protein_sequence(protein, where, CleaningConfig(), issues)
    if cleaned is None:
        raise InputDataError(
            where,
            "; ".join(issues.summary_lines()),
            "give the protein without internal stops and mostly known residues",
        )
    return cleaned[0]


def query_embedder(
    table: VectorTable, weights: str | None = None, device: str = "auto"
) -> Embedder:
    """The table's embedder, rebuilt from its recorded description (weights from
    `weights` when they moved), checked to give the table's signature."""
    current = table.current
    try:
        embedder = embedder_from_description(current.embedder, current.description, weights, device)
        made = signature_of(embedder.describe())
    except (OSError, ImportError) as err:
        raise InputDataError(
            f"the {current.embedder} model ({current.description.get('model_name', '?')})",
            f"could not be loaded to embed the queries: {err}",
            "point --weights (or the embedder's SEGPAIR_*_MODEL variable) at its weights, "
            "or query by --protein, which needs no model",
        ) from err
    if made != current.signature:
        raise InputDataError(
            f"the {current.embedder} vector table{table.where}",
            f"was embedded with signature {current.signature}, but the embedder rebuilt here "
            f"gives {made}: its vectors would not be comparable",
            "install the library versions and weights the cache was made with (its "
            "description is in the table's .current.json), or re-materialize the cache",
        )
    return embedder


def embed_queries(queries: pd.DataFrame, embedder: Embedder) -> np.ndarray:
    """(n, dim) float32, one row per query; a sequence the embedder fails is an error
    naming it."""
    sequences = input_sequences(queries, embedder.input_kind).tolist()
    out = embedder.embed(sequences)
    if out.failed:
        position, why = next(iter(out.failed.items()))
        raise InputDataError(
            f"query {queries['query'].iloc[position]!r}",
            f"could not be embedded by {embedder.name}: {why}",
            "check the sequence",
        )
    vectors = np.zeros((len(sequences), embedder.dim), dtype=np.float32)
    vectors[out.ok] = out.vectors
    return vectors
