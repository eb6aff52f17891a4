"""Vector tables (segpair.vectors): written from the master cache, exact search equal to a
brute force, incremental updates that keep unchanged rows, the pointer swap that keeps
readers on finished tables, the ANN path, and queries embedded the table's way."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segpair.embeddings.cache import CachePaths, EmbeddingStore
from segpair.embeddings.catalog import CATALOG
from segpair.embeddings.pipeline import build_master_cache
from segpair.errors import InputDataError
from segpair.simulator import SimulationConfig, simulate_population
from segpair.vectors import (
    VectorTablePaths,
    VectorTableSettings,
    build_vector_table,
    open_vector_table,
)
from segpair.vectors.query import embed_queries, query_embedder, read_query_fasta
from segpair.vectors.search import VectorTable
from segpair.vectors.table import (
    METADATA_COLUMNS,
    CurrentTable,
    row_digests,
    rows_digest,
    table_rows,
    write_vector_table,
)

DEFAULT = VectorTableSettings()


def _quiet(_message: str) -> None:
    pass


@pytest.fixture(scope="module")
def proteins(flu) -> pd.DataFrame:
    return simulate_population(flu, SimulationConfig(n_isolates=50, seed=3)).protein_final(flu)


def _cache(root: Path, version: str, proteins: pd.DataFrame, embedder: str = "kmer_aa3"):
    paths = CachePaths.for_partition(root, "flu_a", version, embedder)
    build_master_cache(proteins, CATALOG.get(embedder).build(), paths, progress=_quiet)
    return paths


def _build(root, version, proteins, settings=DEFAULT, earlier=(), cache=None):
    cache = cache or _cache(root, version, proteins)
    paths = VectorTablePaths.for_partition(root, "flu_a", version, cache.embedder)
    with EmbeddingStore(cache) as store:
        return build_vector_table(store, proteins, paths, list(earlier), settings)


def _table_frame(root, version, embedder="kmer_aa3") -> pd.DataFrame:
    table = open_vector_table(root, "flu_a", version, embedder).table
    return table.to_pandas().sort_values("brc_fea_id").reset_index(drop=True)


# ------------------------------------------------------------------ written from the cache


def test_rows_are_the_cache_vectors_with_protein_metadata(tmp_path, proteins):
    report = _build(tmp_path, "v1", proteins)
    assert report.outcome == "full" and report.current.n_rows == len(proteins)
    assert report.current.index_type == "none"  # far under ANN_MIN_ROWS: exact search
    frame = _table_frame(tmp_path, "v1")
    assert frame.columns.tolist() == [*METADATA_COLUMNS, "row_digest", "vector"]
    expected = proteins.sort_values("brc_fea_id").reset_index(drop=True)
    for column in ("assembly_id", "function", "segment", "subtype", "host", "seq_hash"):
        assert frame[column].tolist() == expected[column].astype(str).tolist(), column
    assert frame["year"].tolist() == expected["year"].astype(int).tolist()
    with EmbeddingStore(CachePaths.for_partition(tmp_path, "flu_a", "v1", "kmer_aa3")) as s:
        np.testing.assert_array_equal(np.stack(frame["vector"]), s.gather(frame["brc_fea_id"]))
        assert report.current.cache_content_id == s.attrs["content_id"]
        assert report.current.signature == s.signature
    same_cache = CachePaths.for_partition(tmp_path, "flu_a", "v1", "kmer_aa3")
    assert _build(tmp_path, "v1", proteins, cache=same_cache).outcome == "unchanged"


def test_metadata_under_another_name_or_missing(tmp_path, proteins):
    """A table naming subtype `serotype` and carrying no host still builds."""
    odd = proteins.rename(columns={"subtype": "serotype"}).drop(columns=["host", "year"])
    _build(tmp_path, "v1", odd, cache=_cache(tmp_path, "v1", proteins))
    frame = _table_frame(tmp_path, "v1")
    assert frame["subtype"].notna().all() and frame["host"].isna().all()
    assert frame["year"].isna().all()


def test_proteins_without_a_vector_are_left_out_and_counted(tmp_path, proteins):
    protein_only = proteins.assign(nt_seq=None)
    cache = _cache(tmp_path, "v1", protein_only.iloc[:40], "kmer_nt6")  # no coding DNA at all
    report = _build(tmp_path, "v1", protein_only.iloc[:40], cache=cache)
    assert (report.current.n_rows, report.not_embedded) == (0, 40)
    assert (
        open_vector_table(tmp_path, "flu_a", "v1", "kmer_nt6")
        .nearest(np.ones((1, 4096), np.float32))
        .empty
    )


# ------------------------------------------------------------------ exact search


def _random_table(root: Path, n: int, dim: int, seed: int, settings=DEFAULT):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, dim))
    x = centres[rng.integers(0, 20, n)] + 0.6 * rng.normal(size=(n, dim))
    x = (x * rng.uniform(0.5, 3, (n, 1))).astype(np.float32)  # unnormalised: cosine matters
    rows = pd.DataFrame(
        {
            c: pd.array([f"{c}{i}" for i in range(n)], dtype="string")
            for c in METADATA_COLUMNS
            if c != "year"
        }
    )
    rows["brc_fea_id"] = pd.array([f"P{i:05d}" for i in range(n)], dtype="string")
    rows["function"] = pd.array(np.array(["HA", "NA"])[np.arange(n) % 2], dtype="string")
    rows["year"] = pd.array(np.full(n, 2020), dtype="Int32")
    rows["row_digest"] = row_digests(rows)
    paths = VectorTablePaths(root / "vectors", "random")
    fields = {
        "embedder": "random",
        "signature": "s",
        "dim": dim,
        "cache_content_id": "c",
        "rows_digest": rows_digest(rows),
        "description": {},
    }
    by_id = dict(zip(rows["brc_fea_id"], range(n), strict=True))
    write_vector_table(
        paths, rows, lambda b: x[[by_id[i] for i in b["brc_fea_id"]]], fields, [], settings
    )
    return VectorTable(paths), x, rows


def _brute_force(x: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ unit.T
    order = np.argsort(-sims, axis=1)[:, :k]
    return order, np.take_along_axis(sims, order, axis=1)


def test_exact_search_equals_numpy_brute_force(tmp_path):
    vectors, x, rows = _random_table(tmp_path, 1500, 24, seed=1)
    queries = np.random.default_rng(2).normal(size=(7, 24)).astype(np.float32)
    found = vectors.nearest(queries, k=10)
    order, sims = _brute_force(x, queries, 10)
    for q in range(7):
        got = found[found["query"] == q]
        assert got["rank"].tolist() == list(range(1, 11))
        assert got["brc_fea_id"].tolist() == rows["brc_fea_id"].to_numpy()[order[q]].tolist()
        np.testing.assert_allclose(got["similarity"], sims[q], atol=1e-5)
    # a function filter keeps only that function's rows, still exact
    has = vectors.nearest(queries[:1], k=5, function="NA")
    na = np.flatnonzero(rows["function"] == "NA")
    o, _ = _brute_force(x[na], queries[:1], 5)
    assert has["brc_fea_id"].tolist() == rows["brc_fea_id"].to_numpy()[na][o[0]].tolist()


def test_ann_index_above_a_lowered_threshold_recalls_the_exact_neighbours(tmp_path):
    settings = VectorTableSettings(ann_min_rows=1000)
    vectors, x, _rows = _random_table(tmp_path, 3000, 32, seed=4, settings=settings)
    assert vectors.current.index_type == "IVF_SQ" and vectors.has_ann_index
    assert {i.index_type for i in vectors.table.list_indices()} >= {"IvfSq", "BTree"}
    rng = np.random.default_rng(5)
    queries = (x[rng.choice(3000, 40)] + 0.3 * rng.normal(size=(40, 32))).astype(np.float32)
    ann, exact = vectors.nearest(queries, k=10), vectors.nearest(queries, k=10, exact=True)
    recall = np.mean(
        [
            len(
                set(ann.loc[ann["query"] == q, "brc_fea_id"])
                & set(exact.loc[exact["query"] == q, "brc_fea_id"])
            )
            / 10
            for q in range(40)
        ]
    )
    assert recall >= 0.9
    assert "approximate" in vectors.search_kind() and "exact" in vectors.search_kind(True)


# ------------------------------------------------------------------ incremental


def _next_version(proteins: pd.DataFrame, flu) -> tuple[pd.DataFrame, set, set, set]:
    """v2: the first 40 proteins gone, 5 with a new host, 3 new isolates."""
    v2 = proteins.iloc[40:].copy()
    relabelled = set(v2["brc_fea_id"].iloc[:5])
    v2.loc[v2.index[:5], "host"] = "Mallard"
    new = simulate_population(flu, SimulationConfig(n_isolates=3, seed=11)).protein_final(flu)
    new = new.assign(brc_fea_id="N" + new["brc_fea_id"], assembly_id="N" + new["assembly_id"])
    return (
        pd.concat([v2, new], ignore_index=True),
        set(proteins["brc_fea_id"].iloc[:40]),
        relabelled,
        set(new["brc_fea_id"]),
    )


def test_a_new_version_keeps_unchanged_rows_and_adds_only_new_ones(tmp_path, proteins, flu):
    _build(tmp_path, "v1", proteins)
    v1_before = _table_frame(tmp_path, "v1")
    v2, gone, relabelled, new = _next_version(proteins, flu)
    earlier = [VectorTablePaths.for_partition(tmp_path, "flu_a", "v1", "kmer_aa3")]
    report = _build(tmp_path, "v2", v2, earlier=earlier)
    c = report.current
    assert report.outcome == "incremental" and c.reused_from == CurrentTable.read(earlier[0]).table
    assert (c.removed_rows, c.added_rows) == (len(gone) + len(relabelled), len(new) + 5)
    assert c.reused_rows == len(proteins) - len(gone) - len(relabelled) and c.n_rows == len(v2)
    # the kept rows' files are the earlier table's, linked, not copied
    data_files = list((report.path / "data").iterdir())
    assert any(os.stat(f).st_nlink > 1 for f in data_files)
    # the same table as a full build of v2, and v1 untouched
    full = tmp_path / "full"
    _build(full, "v2", v2, settings=VectorTableSettings(reuse_earlier_tables=False))
    incremental, rebuilt = _table_frame(tmp_path, "v2"), _table_frame(full, "v2")
    pd.testing.assert_frame_equal(
        incremental.drop(columns="vector"), rebuilt.drop(columns="vector")
    )
    np.testing.assert_array_equal(np.stack(incremental["vector"]), np.stack(rebuilt["vector"]))
    assert set(incremental.loc[incremental["brc_fea_id"].isin(relabelled), "host"]) == {"Mallard"}
    pd.testing.assert_frame_equal(_table_frame(tmp_path, "v1"), v1_before)


def test_another_signature_is_not_reused(tmp_path, proteins):
    _build(tmp_path, "v1", proteins)
    paths = VectorTablePaths.for_partition(tmp_path, "flu_a", "v1", "kmer_aa3")
    current = CurrentTable.read(paths)
    dataclasses.replace(current, signature="other").write(paths)
    with EmbeddingStore(CachePaths.for_partition(tmp_path, "flu_a", "v1", "kmer_aa3")) as s:
        report = build_vector_table(s, proteins, paths)
    assert report.outcome == "full" and report.current.reused_rows == 0


def test_an_index_follows_the_table_size_across_updates(tmp_path, proteins):
    low = VectorTableSettings(ann_min_rows=len(proteins) - 10)
    assert _build(tmp_path, "v1", proteins, low).index_action == "trained"
    again = _build(tmp_path, "v1", proteins.iloc[:-4], low)  # still above: updated, no retrain
    assert (again.outcome, again.index_action, again.current.index_type) == (
        "incremental",
        "updated",
        "IVF_SQ",
    )
    shrunk = _build(tmp_path, "v1", proteins.iloc[:-20], low)  # under the threshold
    assert (shrunk.index_action, shrunk.current.index_type) == ("dropped", "none")
    assert not list(open_vector_table(tmp_path, "flu_a", "v1", "kmer_aa3").table.list_indices())


# ------------------------------------------------------------------ atomic swap


def test_a_build_killed_midway_leaves_the_previous_table_current(tmp_path, proteins):
    _build(tmp_path, "v1", proteins)
    paths = VectorTablePaths.for_partition(tmp_path, "flu_a", "v1", "kmer_aa3")
    before = CurrentTable.read(paths)
    v2 = proteins.assign(host="Goose")  # every row changes
    calls = []

    def dies_on_the_second_block(block):
        calls.append(len(block))
        if len(calls) == 1:
            return np.zeros((len(block), 8000), np.float32)
        raise OSError("disk full")  # the build dies mid-write

    with EmbeddingStore(CachePaths.for_partition(tmp_path, "flu_a", "v1", "kmer_aa3")) as s:
        fields = {
            "embedder": "kmer_aa3",
            "signature": s.signature,
            "dim": 8000,
            "cache_content_id": "x",
            "rows_digest": "y",
            "description": {},
        }
        new_rows = table_rows(v2, s.index)
        with pytest.raises(RuntimeError, match="disk full"):  # LanceDB wraps it
            write_vector_table(
                paths,
                pd.concat([new_rows] * 6),
                dies_on_the_second_block,
                fields,
                [],
                VectorTableSettings(reuse_earlier_tables=False),
            )
    assert len(paths.table_names()) == 2  # the unfinished one is on disk...
    assert CurrentTable.read(paths) == before  # ...but not current: readers see v1's table
    reader = open_vector_table(tmp_path, "flu_a", "v1", "kmer_aa3")
    assert reader.table.count_rows() == len(proteins) and set(reader.table.to_pandas()["host"]) != {
        "Goose"
    }
    report = _build(tmp_path, "v1", v2)  # the next build clears it and swaps in its own
    assert len(report.cleared) == 1 and report.outcome == "incremental"
    assert set(_table_frame(tmp_path, "v1")["host"]) == {"Goose"}
    assert paths.table_names() == sorted([before.table, report.current.table])
    assert reader.table.count_rows() == len(proteins)  # an open reader keeps its table


# ------------------------------------------------------------------ queries


def test_fasta_queries_are_embedded_the_tables_way(tmp_path, proteins):
    _build(tmp_path, "v1", proteins)
    one_na = proteins[proteins["function"] == "NA"].groupby("assembly_id").size() == 1
    has = proteins[proteins["assembly_id"].isin(one_na[one_na].index)]
    ha = has[has["function"] == "HA"].iloc[0]
    fasta = tmp_path / "q.fasta"
    fasta.write_text(
        f">as_protein\n{ha['esm2_ready_seq']}*\n"
        f">as_segment x\nAGCAAAAGCAGG{ha['nt_seq']}TAGCTTGTTTT\n"
    )
    queries = read_query_fasta(fasta, "protein", "kmer_aa3")
    assert queries["read_as"].iloc[1].startswith("nucleotide: longest ORF, + strand, 13-")
    vectors = open_vector_table(tmp_path, "flu_a", "v1", "kmer_aa3")
    found = vectors.neighbours(
        vectors=embed_queries(queries, query_embedder(vectors)),
        query_names=queries["query"].tolist(),
        k=3,
        partner="NA",
    )
    top = found[found["rank"] == 1].set_index("query")
    assert top["brc_fea_id"].to_dict() == {
        "as_protein": ha["brc_fea_id"],
        "as_segment": ha["brc_fea_id"],
    }
    assert np.allclose(top["similarity"], 1.0, atol=1e-3)  # fp16 cache vs fp32 query
    isolate = proteins[proteins["assembly_id"] == ha["assembly_id"]]
    assert (
        top["partner_brc_fea_id"].iloc[0]
        == isolate.loc[isolate["function"] == "NA", "brc_fea_id"].item()
    )
    with pytest.raises(InputDataError, match="protein sequence, but kmer_nt6 embeds coding DNA"):
        read_query_fasta(fasta, "nucleotide", "kmer_nt6")


def test_a_query_embedder_of_another_signature_is_refused(tmp_path, proteins):
    _build(tmp_path, "v1", proteins)
    paths = VectorTablePaths.for_partition(tmp_path, "flu_a", "v1", "kmer_aa3")
    current = CurrentTable.read(paths)
    changed = {**current.description, "k": 2}  # a 2-mer featurizer: another space
    dataclasses.replace(current, description=changed).write(paths)
    with pytest.raises(InputDataError, match="would not be comparable"):
        query_embedder(VectorTable(paths))


def test_protein_queries_leave_themselves_out_and_name_unknown_ids(tmp_path, proteins):
    _build(tmp_path, "v1", proteins)
    vectors = open_vector_table(tmp_path, "flu_a", "v1", "kmer_aa3")
    ids = proteins["brc_fea_id"].iloc[[3, 11]].tolist()
    found = vectors.neighbours(protein_ids=ids, k=4)
    assert found.groupby("query").size().to_dict() == dict.fromkeys(ids, 4)
    assert not (found["query"] == found["brc_fea_id"]).any()
    with pytest.raises(InputDataError, match="protein 'nope:HA'.*not in the kmer_aa3 vector"):
        vectors.neighbours(protein_ids=["nope:HA"])
    with pytest.raises(FileNotFoundError, match="no kmer_nt6 vector table of flu_a x v1"):
        open_vector_table(tmp_path, "flu_a", "v1", "kmer_nt6")
