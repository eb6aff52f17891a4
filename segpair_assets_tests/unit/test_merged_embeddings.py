"""Merged embedders: a cache of other caches' vectors side by side, checked per source,
and the same vectors from the source featurizers for proteins outside any cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from segpair.embeddings.base import INPUT_SEPARATOR, signature_of
from segpair.embeddings.cache import CachePaths, EmbeddingStore
from segpair.embeddings.catalog import CATALOG, EmbedderCatalog, merged_spec
from segpair.embeddings.factory import description_from_attrs, embedder_from_description
from segpair.embeddings.features import FeatureDimensionError, FeatureSource
from segpair.embeddings.kmer import KmerEmbedder
from segpair.embeddings.merged import MergedSourceMismatch, prepare_merged_cache
from segpair.embeddings.pipeline import build_master_cache, input_sequences
from segpair.embeddings.validation import check_cache
from segpair.simulator import SimulationConfig, simulate_population

MERGED = CATALOG.get("kmer_nt6_aa3")
NO_NT = 5  # proteins given no nucleotide sequence


def _quiet(_msg: str) -> None:
    pass


@pytest.fixture(scope="module")
def partition(flu, tmp_path_factory):
    """A small flu partition with both k-mer caches and one of raw (unnormalised) 2-mer
    counts; a few proteins lack nt_seq."""
    root = tmp_path_factory.mktemp("merged")
    proteins = simulate_population(flu, SimulationConfig(n_isolates=60, seed=4)).protein_final(flu)
    proteins.loc[proteins.index[:NO_NT], "nt_seq"] = ""
    for name in ("kmer_nt6", "kmer_aa3"):
        paths = CachePaths.for_partition(root, "flu_a", "v1", name)
        build_master_cache(proteins, CATALOG.get(name).build(), paths, progress=_quiet)
    counts = KmerEmbedder("aa2_counts", "protein", 2, normalize="none")
    build_master_cache(proteins, counts, CachePaths.for_partition(root, "flu_a", "v1", counts.name),
                       progress=_quiet, storage_precision="fp32")  # fmt: skip
    return root, proteins


def _paths(root, name: str) -> CachePaths:
    return CachePaths.for_partition(root, "flu_a", "v1", name)


def _merge(root, proteins, sources=MERGED.sources, block_norm="l2", name="kmer_nt6_aa3"):
    stores = [EmbeddingStore(_paths(root, s.embedder)) for s in sources]
    try:
        return prepare_merged_cache(proteins, stores, sources, _paths(root, name), block_norm,
                                    progress=_quiet).commit()  # fmt: skip
    finally:
        for s in stores:
            s.close()


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_the_merged_cache_is_the_normalised_sources_side_by_side(partition):
    root, proteins = partition
    report = _merge(root, proteins)
    assert report.dim == 4096 + 8000 and report.computed == report.n_rows
    with (
        EmbeddingStore(_paths(root, "kmer_nt6_aa3")) as merged,
        EmbeddingStore(_paths(root, "kmer_nt6")) as nt,
        EmbeddingStore(_paths(root, "kmer_aa3")) as aa,
    ):
        ids = proteins["brc_fea_id"].iloc[NO_NT:].tolist()
        x = merged.gather(ids)
        np.testing.assert_allclose(x[:, :4096], _unit_rows(nt.gather(ids)), atol=1e-3)
        np.testing.assert_allclose(x[:, 4096:], _unit_rows(aa.gather(ids)), atol=1e-3)
        # one row per distinct pair of source keys, the usual cache layout and checks
        pairs = {(nt.index.set_index("brc_fea_id").loc[i, "cache_key"],
                  aa.index.set_index("brc_fea_id").loc[i, "cache_key"]) for i in ids}  # fmt: skip
        assert merged.n_rows == len(pairs) < len(ids)
        assert all(o.passed for o in check_cache(merged, proteins).values())
        assert merged.attrs["family"] == "merged" and merged.attrs["block_norm"] == "l2"
        sources = json.loads(merged.attrs["sources"])
        assert [(s["embedder"], s["signature"], s["dim"]) for s in sources] == [
            ("kmer_nt6", nt.signature, 4096), ("kmer_aa3", aa.signature, 8000)]  # fmt: skip


@pytest.mark.parametrize("block_norm", ["l2", "none"])
def test_each_block_is_normalised_as_asked(partition, block_norm):
    """Counts (norms in the tens) beside unit vectors: "l2" gives each source the same weight."""
    root, proteins = partition
    sources = (FeatureSource("kmer_nt6", 4096), FeatureSource("aa2_counts", 400))
    _merge(root, proteins, sources, block_norm, name=f"nt6_counts_{block_norm}")
    ids = proteins["brc_fea_id"].iloc[NO_NT:].tolist()
    with (
        EmbeddingStore(_paths(root, f"nt6_counts_{block_norm}")) as merged,
        EmbeddingStore(_paths(root, "aa2_counts")) as counts,
    ):
        x, raw = merged.gather(ids), counts.gather(ids)
    assert np.linalg.norm(raw, axis=1).min() > 10
    want = _unit_rows(raw) if block_norm == "l2" else raw
    np.testing.assert_allclose(x[:, 4096:], want, rtol=1e-3, atol=1e-3)


def test_a_protein_a_source_lacks_is_failed_naming_that_source(partition):
    root, proteins = partition
    report = _merge(root, proteins)
    assert report.failed_proteins == NO_NT
    assert report.failure_examples[0].endswith("no kmer_nt6 vector: no nucleotide sequence")
    with (
        EmbeddingStore(_paths(root, "kmer_nt6_aa3")) as merged,
        pytest.raises(KeyError, match="has no embedding"),
    ):
        merged.vector(proteins["brc_fea_id"].iat[0])


def test_a_second_build_reuses_its_rows_and_the_signature_follows_the_sources(partition):
    root, proteins = partition
    first = _merge(root, proteins)
    again = _merge(root, proteins)
    assert (again.reused_in_place, again.computed) == (first.n_rows, 0)
    assert again.signature == first.signature
    raw = _merge(root, proteins, block_norm="none", name="kmer_nt6_aa3_raw")
    assert raw.signature != first.signature
    aa_only = (FeatureSource("kmer_aa3", 8000),)
    assert _merge(root, proteins, aa_only, name="aa_only").signature != first.signature


def test_a_source_of_another_dimension_is_refused_naming_it(partition):
    root, proteins = partition
    wrong = (FeatureSource("kmer_nt6", 4096), FeatureSource("kmer_aa3", 1280))
    with pytest.raises(FeatureDimensionError, match="'kmer_aa3' must have 1280 dimensions but "
                       ".*master_kmer_aa3_embeddings.h5 holds 8000"):  # fmt: skip
        _merge(root, proteins, wrong, name="wrong")
    assert not _paths(root, "wrong").h5.exists()


def test_new_proteins_get_the_cache_vectors_from_the_rebuilt_sources(partition):
    """`segpair score` path: the merged embedder rebuilt from the cache's description."""
    root, proteins = partition
    _merge(root, proteins)
    with EmbeddingStore(_paths(root, "kmer_nt6_aa3")) as merged:
        description = description_from_attrs(merged.attrs)
        embedder = embedder_from_description("kmer_nt6_aa3", description)
        assert signature_of(embedder.describe()) == merged.signature
        assert embedder.input_kind == "nucleotide+protein" and embedder.dim == merged.dim
        sample = proteins.iloc[: NO_NT + 20]
        inputs = input_sequences(sample, embedder.input_kind).tolist()
        assert inputs[NO_NT].split(INPUT_SEPARATOR)[1] == sample["esm2_ready_seq"].iat[NO_NT]
        out = embedder.embed(inputs)
        assert out.ok == list(range(NO_NT, NO_NT + 20))
        assert out.failed[0] == "kmer_nt6: no nucleotide sequence"
        ids = sample["brc_fea_id"].iloc[NO_NT:].tolist()
        np.testing.assert_allclose(out.vectors, merged.gather(ids), atol=1e-3)

        tampered = json.loads(description["sources"])
        tampered[1]["description"]["k"] = 2  # a 2-mer featurizer makes other vectors
        with pytest.raises(MergedSourceMismatch, match="source 'kmer_aa3'"):
            embedder_from_description("kmer_nt6_aa3", {**description, "sources": tampered})


def test_a_merged_entry_has_no_featurizer_and_names_real_sources():
    from resources.embedders import ComputeDevice, Embedders

    assert MERGED.is_merged and not MERGED.needs_weights and not MERGED.in_main_job
    assert CATALOG.get("nt_esm2").needs_weights  # through its sources' weights
    assert [s.name for s in CATALOG.language_models()] == ["esm2", "fastesm2",
                                                            "nucleotide_transformer"]  # fmt: skip
    with pytest.raises(TypeError, match=r"merges the caches of \['kmer_nt6', 'kmer_aa3'\]"):
        Embedders().build(MERGED, ComputeDevice())
    orphan = merged_spec("orphan", "x", [(CATALOG.get("kmer_aa3"), 8000)])
    with pytest.raises(ValueError, match="source 'kmer_aa3' must be an unmerged entry"):
        EmbedderCatalog([CATALOG.get("kmer_nt6"), orphan], "kmer_nt6")
