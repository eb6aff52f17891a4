"""`segpair neighbours` on the real influenza set in ../shared/data (skipped when absent):
a human HA's nearest proteins are HAs, mostly of its subtype, and the NAs that came with them
are mostly of its NA subtype; a whole HA segment from the FASTA finds its own protein."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest

from segpair.embeddings.cache import CachePaths, EmbeddingStore
from segpair.embeddings.catalog import CATALOG
from segpair.embeddings.pipeline import build_master_cache
from segpair.scoring import read_proteins
from segpair.vectors import VectorTablePaths, build_vector_table
from segpair_assets.cli import main
from segpair_assets_tests.conftest import require_shared_data

pytestmark = pytest.mark.real_data
VERSION = "ncbi_influenza_a_2010s"


def test_neighbours_of_a_real_ha_are_has_of_its_subtype(tmp_path, flu, monkeypatch, capsys):
    src = require_shared_data("influenza_a")
    fasta = src / "influenza_a_2010s.fasta.gz"
    proteins, _report, _reader = read_proteins(fasta, flu, src / "influenza_a_2010s.genomes.tsv")
    cache = CachePaths.for_partition(tmp_path, "flu_a", VERSION, "kmer_aa3")
    build_master_cache(proteins, CATALOG.get("kmer_aa3").build(), cache, progress=lambda m: None)
    with EmbeddingStore(cache) as store:
        paths = VectorTablePaths.for_partition(tmp_path, "flu_a", VERSION, "kmer_aa3")
        assert build_vector_table(store, proteins, paths).current.n_rows == len(proteins)
    monkeypatch.setenv("SEGPAIR_DATA_ROOT", str(tmp_path))
    # human H3N2, human H1N1 and H7N9 HAs: each one's 10 nearest (swine H1 HAs come with
    # N1 and N2 alike, reassortment at work, so they are not asked to match on NA)
    has = proteins[(proteins["function"] == "HA") & (proteins["host"] == "Human")]
    queries = [has.loc[has["subtype"] == s, "brc_fea_id"].iloc[0] for s in ("H3N2", "H1N1", "H7N9")]
    out = tmp_path / "neighbours.parquet"
    args = [
        "neighbours",
        "-v",
        "flu_a",
        "-d",
        VERSION,
        "--protein",
        *queries,
        "--partner",
        "NA",
        "-o",
        str(out),
    ]
    assert main(args) == 0
    found = pd.read_parquet(out)
    subtype_of = proteins.set_index("brc_fea_id")["subtype"]
    for query in queries:
        rows = found[found["query"] == query].drop_duplicates("rank")
        assert len(rows) == 10 and set(rows["function"]) == {"HA"}
        same = (rows["subtype"] == subtype_of[query]).mean()
        assert same >= 0.8, rows[["brc_fea_id", "subtype", "similarity"]]
        # the NAs their isolates came with: mostly of the query's NA subtype
        partners = found[(found["query"] == query) & found["partner_brc_fea_id"].notna()]
        n = subtype_of[query][-2:]
        assert (partners["partner_brc_fea_id"].map(subtype_of).str.endswith(n)).mean() >= 0.8
    # the query's own whole segment (UTRs included) from the FASTA finds its protein first
    accession = queries[0].split(":")[0]
    query_fasta = tmp_path / "segment.fasta"
    query_fasta.write_text(_record(fasta, accession))
    segment_out = tmp_path / "segment.tsv"
    assert (
        main(
            [
                "neighbours",
                "-v",
                "flu_a",
                "-d",
                VERSION,
                "--fasta",
                str(query_fasta),
                "-k",
                "3",
                "-o",
                str(segment_out),
            ]
        )
        == 0
    )
    assert "(read as nucleotide: longest ORF" in capsys.readouterr().out
    top = pd.read_csv(segment_out, sep="\t").iloc[0]
    assert top["brc_fea_id"] == queries[0] and top["similarity"] > 0.999


def _record(fasta, accession: str) -> str:
    """The FASTA record of one accession."""
    lines, keep = [], False
    with gzip.open(fasta, "rt") as fh:
        for line in fh:
            if line.startswith(">"):
                keep = accession in line.split("|")[0] or f"gb:{accession}" in line
            if keep:
                lines.append(line)
    return "".join(lines)
