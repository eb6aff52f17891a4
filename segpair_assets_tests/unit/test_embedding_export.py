"""Exports of a master cache for other tools: the loaded vectors are the cache's, in each
format; an export is written once per cache content; `segpair export` writes them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch

from segpair.embeddings.base import EmbedOutput
from segpair.embeddings.cache import CachePaths, EmbeddingStore
from segpair.embeddings.export import MANIFEST, export_cache
from segpair.embeddings.kmer import KmerEmbedder
from segpair.embeddings.pipeline import build_master_cache
from segpair.simulator import SimulationConfig, simulate_population

NO_VECTOR = 3  # proteins whose sequence is too short for a 3-mer


def _quiet(_msg: str) -> None:
    pass


@pytest.fixture(scope="module")
def partition(bunya, tmp_path_factory):
    """A bunya partition (functions with upper and lower case, e.g. NSs) and its cache."""
    root = tmp_path_factory.mktemp("export")
    proteins = simulate_population(bunya, SimulationConfig(n_isolates=30, seed=3)).protein_final(
        bunya
    )
    proteins.loc[proteins.index[:NO_VECTOR], "esm2_ready_seq"] = "MK"
    paths = CachePaths.for_partition(root, "bunya", "v1", "kmer_aa3")
    build_master_cache(proteins, KmerEmbedder("kmer_aa3", "protein", 3), paths, progress=_quiet)
    proteins_path = root / "processed" / "bunya" / "v1" / "protein_final.parquet"
    proteins_path.parent.mkdir(parents=True)
    proteins.to_parquet(proteins_path, index=False)
    return root, proteins, paths


def test_pt_files_per_function_hold_the_cache_vectors(partition, tmp_path):
    _root, proteins, paths = partition
    with EmbeddingStore(paths) as store:
        report = export_cache(store, proteins, tmp_path, "pt")
        functions = sorted(proteins["function"].unique())
        assert set(report.files) == {f"{f}_kmer_aa3.pt" for f in functions}
        assert report.not_embedded == NO_VECTOR
        assert sum(report.files.values()) == report.n_proteins == len(proteins) - NO_VECTOR
        for function in functions:
            loaded = torch.load(tmp_path / f"{function}_kmer_aa3.pt")
            assert set(loaded) == {"proteins", "data"} and loaded["data"].dtype == torch.float32
            ids = loaded["proteins"]
            want = proteins.loc[proteins["function"] == function, "brc_fea_id"]
            assert set(ids) == set(want) - set(proteins["brc_fea_id"].iloc[:NO_VECTOR])
            np.testing.assert_array_equal(loaded["data"].numpy(), store.gather(ids))
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["content_id"] == store.attrs["content_id"]
    assert (manifest["embedder"], manifest["dim"], manifest["format"]) == ("kmer_aa3", 8000, "pt")


def test_parquet_and_npz_hold_the_cache_vectors(partition, tmp_path):
    _root, proteins, paths = partition
    with EmbeddingStore(paths) as store:
        export_cache(store, proteins, tmp_path / "parquet", "parquet")
        export_cache(store, proteins, tmp_path / "npz", "npz")
        table = pd.read_parquet(tmp_path / "parquet" / "embeddings.parquet")
        assert list(table.columns) == ["brc_fea_id", "assembly_id", "function", "segment",
                                       "embedding"]  # fmt: skip
        want = store.gather(table["brc_fea_id"])
        np.testing.assert_array_equal(np.stack(table["embedding"]), want)
        frame = pl.read_parquet(tmp_path / "parquet" / "embeddings.parquet")
        np.testing.assert_array_equal(frame["embedding"].to_numpy(), want)
        with np.load(tmp_path / "npz" / "embeddings.npz") as z:
            assert z["vectors"].shape == (len(proteins) - NO_VECTOR, 8000)
            np.testing.assert_array_equal(z["vectors"], store.gather(z["brc_fea_id"].tolist()))
            assert z["assembly_id"].tolist() == table["assembly_id"].tolist()


def test_an_export_is_written_once_per_cache_content(partition, tmp_path):
    _root, proteins, paths = partition
    with EmbeddingStore(paths) as store:
        first = export_cache(store, proteins, tmp_path, "pt")
        (tmp_path / "stale_kmer_aa3.pt").write_bytes(b"")
        one = tmp_path / sorted(first.files)[0]
        one.unlink()  # stays missing unless the export is rewritten
        assert export_cache(store, proteins, tmp_path, "pt").up_to_date
        assert not one.exists()
        manifest = json.loads((tmp_path / MANIFEST).read_text())
        manifest["files"]["stale_kmer_aa3.pt"] = 1  # a file an earlier export wrote
        (tmp_path / MANIFEST).write_text(json.dumps(manifest))
        forced = export_cache(store, proteins, tmp_path, "pt", force=True)
    assert not forced.up_to_date and forced.files == first.files
    assert forced.removed == ["stale_kmer_aa3.pt"] and one.exists()


class _FakeEsm:
    """A 4-dim "ESM-2" for the file label: the seed's `_ESM.pt` names."""

    name, input_kind, dim = "esm2", "protein", 4

    def describe(self) -> dict:
        return {"family": "esm2", "model_name": "fake", "dim": 4}

    def embed(self, sequences: list[str]) -> EmbedOutput:
        vectors = np.array([[len(s), s.count("M"), s.count("K"), 1] for s in sequences], "f4")
        return EmbedOutput(vectors, list(range(len(sequences))))


def test_esm_caches_keep_the_seeds_file_names(partition, tmp_path):
    _root, proteins, _paths = partition
    paths = CachePaths.for_partition(tmp_path, "bunya", "v1", "esm2")
    build_master_cache(proteins, _FakeEsm(), paths, progress=_quiet)
    with EmbeddingStore(paths) as store:
        report = export_cache(store, proteins, tmp_path / "out", "pt")
    assert set(report.files) == {f"{f}_ESM.pt" for f in proteins["function"].unique()}


def test_segpair_export_writes_under_the_data_root(partition, monkeypatch, capsys):
    from segpair_assets.cli import main

    root, proteins, _paths = partition
    monkeypatch.setenv("SEGPAIR_DATA_ROOT", str(root))
    args = ["export", "-v", "bunya", "-d", "v1", "-e", "kmer_aa3", "--format", "npz"]
    assert main(args) == 0
    out = root / "exports" / "bunya" / "v1" / "kmer_aa3" / "npz"
    assert f"to {out}" in capsys.readouterr().out
    assert json.loads((out / MANIFEST).read_text())["proteins"] == len(proteins) - NO_VECTOR
    assert main(args) == 0 and "up to date" in capsys.readouterr().out
    assert main([*args[:6], "kmer_nt6"]) == 2
    assert "materialize master_embeddings_kmer_nt6" in capsys.readouterr().err
