"""Similarity diagnostics: the statistics by hand, and the conservation they reveal."""

from __future__ import annotations

import numpy as np
import pytest

from segpair.embeddings.cache import CachePaths, EmbeddingStore
from segpair.embeddings.diagnostics import cohens_d, histogram_overlap, similarity_diagnostics
from segpair.embeddings.kmer import KmerEmbedder
from segpair.embeddings.pipeline import build_master_cache
from segpair.pairs.cooccurrence import build_cooccurrence
from segpair.pairs.segment_pairs import build_segment_pairs
from segpair.simulator import SimulationConfig, simulate_population


def test_statistics_by_hand():
    x, y = np.array([1.0, 2.0, 3.0]), np.array([2.0, 3.0, 4.0])
    assert cohens_d(x, y) == pytest.approx(-1.0)
    assert histogram_overlap(x, x) == pytest.approx(1.0)
    assert histogram_overlap(np.array([0.0, 0.1]), np.array([0.9, 1.0]), bins=10) == 0.0


def test_diagnostics_show_the_simulated_conservation(flu, tmp_path):
    proteins = simulate_population(flu, SimulationConfig(n_isolates=200, seed=6)).protein_final(flu)
    pairs, _, _ = build_segment_pairs(proteins, build_cooccurrence(proteins)[0], flu)
    paths = CachePaths.for_partition(tmp_path, "flu_a", "v", "kmer_aa3")
    build_master_cache(proteins, KmerEmbedder(), paths, progress=lambda m: None)
    with EmbeddingStore(paths) as store:
        d = similarity_diagnostics(pairs, store)
    intra = d.per_function.set_index("function")["intra_mean"]
    assert intra["PB1"] > intra["PB2"] > intra["HA"]  # PB1 most conserved, HA least
    assert d.summary["intra_function_mean"] > d.summary["inter_function_mean"]
    assert 0 <= d.summary["histogram_overlap"] <= 1
    assert d.summary["n_positive"] == int((pairs["label"] == 1).sum())
