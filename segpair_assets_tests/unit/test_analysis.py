"""Maps of the embedding space, segment conservation and per-schema-pair diagnostics: the
cores on synthetic data with known answers and on a small simulated partition."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segpair.analysis.conservation import (
    ConservationConfig,
    measure_conservation,
    pairwise_identity,
    write_conservation,
)
from segpair.analysis.maps import (
    MapConfig,
    NothingToMap,
    build_embedding_map,
    function_separation,
    map_plots,
    place,
    write_map,
)
from segpair.analysis.plots import legend_labels
from segpair.embeddings.cache import CachePaths, EmbeddingStore
from segpair.embeddings.diagnostics import per_schema_pair_table, similarity_diagnostics
from segpair.embeddings.kmer import KmerEmbedder
from segpair.embeddings.pipeline import build_master_cache
from segpair.pairs.cooccurrence import build_cooccurrence
from segpair.pairs.segment_pairs import build_segment_pairs
from segpair.simulator import SimulationConfig, simulate_population

AMINO_ACIDS = np.array(list("ACDEFGHIKLMNPQRSTVWY"))


def _two_clusters(n: int = 40, dim: int = 100) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0, 1, (n, dim)), rng.normal(0, 1, (n, dim)) + 3.0])
    return x.astype(np.float32), np.array(["a"] * n + ["b"] * n)


def _random_protein(n: int, seed: int) -> str:
    return "".join(np.random.default_rng(seed).choice(AMINO_ACIDS, n))


# ---------------------------------------------------------------------------- maps


def test_pca_map_separates_two_synthetic_clusters():
    x, labels = _two_clusters()
    coords, (pc1, _pc2), note = place(x, MapConfig(nonlinear="none"), None)
    assert set(coords) == {"pca"} and "nonlinear = 'none'" in note
    separated = function_separation(coords["pca"], labels)
    assert separated["nn_purity"] == 1.0 and separated["silhouette"] > 0.8
    assert pc1 > 0.5  # the axis between the clusters carries most of the variance
    # the measure can fail: the same points with shuffled labels are mixed
    shuffled = np.random.default_rng(1).permutation(labels)
    assert function_separation(coords["pca"], shuffled)["nn_purity"] < 0.7


@pytest.mark.parametrize("method", ["umap", "tsne"])
def test_nonlinear_maps_keep_the_clusters_and_a_sample_cap_says_what_it_left_out(method):
    x, labels = _two_clusters()
    coords, _, note = place(x, MapConfig(max_fit_points=60), method)
    xy = coords[method]
    assert np.isnan(xy[:, 0]).sum() == 20  # 80 points, 60 fitted
    assert np.isfinite(coords["pca"]).all()  # PCA, fitted on the 60, projects all 80
    assert "a seeded sample of 60 of 80" in note
    assert function_separation(xy, labels)["nn_purity"] == 1.0
    assert function_separation(coords["pca"], labels)["nn_purity"] == 1.0
    few, _, why = place(x[:5], MapConfig(), method)
    assert set(few) == {"pca"} and "too few for a neighbour graph" in why


def test_legend_names_the_largest_categories_and_pools_the_rest():
    values = pd.Series([f"c{i:02d}" for i in range(15) for _ in range(20 - i)] + [None, " "])
    labels, order = legend_labels(values, max_entries=12)
    assert order == [f"c{i:02d}" for i in range(12)] + ["other (3 more)", "unknown"]
    assert (labels == "other (3 more)").sum() == 8 + 7 + 6  # c12, c13, c14
    assert (labels == "unknown").sum() == 2


@pytest.fixture(scope="module")
def small_flu(tmp_path_factory, flu):
    """40 simulated flu isolates and their amino-acid 3-mer cache."""
    proteins = simulate_population(flu, SimulationConfig(n_isolates=40, seed=3)).protein_final(flu)
    paths = CachePaths.for_partition(tmp_path_factory.mktemp("maps"), "flu_a", "v", "kmer_aa3")
    build_master_cache(proteins, KmerEmbedder(), paths, progress=lambda m: None)
    return proteins, paths


def test_map_of_a_simulated_partition(small_flu, tmp_path):
    proteins, paths = small_flu
    with EmbeddingStore(paths) as store:
        emap = build_embedding_map(proteins, store)
    coords = emap.coordinates
    everything = coords[coords["view"] == "all"]
    assert len(everything) == len(proteins) and emap.proteins_without_vector == 0
    # the focus is the protein with most distinct sequences, mapped on its own
    distinct = proteins.groupby("function")["seq_hash"].nunique()
    assert emap.focus_function == distinct.idxmax() in {"HA", "NA"}
    focus = coords[coords["view"] == emap.focus_function]
    assert len(focus) == (proteins["function"] == emap.focus_function).sum()
    assert set(focus["function"]) == {emap.focus_function}
    # identical sequences share one point
    assert (everything.groupby("seq_hash")["pca_x"].nunique() == 1).all()
    views = emap.views.set_index("view")
    assert views.loc["all", "points"] == proteins["seq_hash"].nunique()
    separation = emap.separation.set_index(["view", "method"])
    # functions apart (measured 0.99 and 0.89: UMAP cuts 208 points into lineage islands
    # of a few points, fewer than the 10 neighbours purity counts)
    assert separation.loc[("all", "pca"), "nn_purity"] > 0.95
    assert separation.loc[("all", "umap"), "nn_purity"] > 0.8
    assert emap.methods == ["pca", "umap"] and emap.colour_columns == [
        "function",
        "subtype",
        "host",
    ]
    files = write_map(tmp_path, emap, "flu_a small kmer_aa3")
    assert {"map_by_function.png", "map_by_subtype.png", "map_by_host.png",
            f"map_{emap.focus_function}_by_subtype.png"} < set(files)  # fmt: skip
    replot = pd.read_parquet(files["map_coordinates.parquet"])
    assert list(replot.columns[-4:]) == ["pca_x", "pca_y", "umap_x", "umap_y"]
    assert len(replot) == len(coords)


def test_a_missing_column_is_named_not_drawn_and_no_vectors_is_no_map(small_flu):
    proteins, paths = small_flu
    with EmbeddingStore(paths) as store:
        emap = build_embedding_map(
            proteins.drop(columns="host"), store, MapConfig(nonlinear="none")
        )
        assert emap.missing_columns == {"host": "not a column of protein_final"}
        assert "map_by_host.png" not in map_plots(emap, "t")
        # nothing to colour the focus protein by (the real SFTS set): not mapped alone
        bare = proteins.assign(subtype=None, host="", year=pd.NA)
        emap = build_embedding_map(bare, store, MapConfig(nonlinear="none"))
        assert set(emap.coordinates["view"]) == {"all"} and emap.focus_colour is None
        assert emap.missing_columns["focus map"].endswith("no subtype, host, year values")
        assert set(map_plots(emap, "t")) == {"map_by_function.png"}
        # PCA fitted on a sample of 50 distinct vectors still places every protein
        sampled = build_embedding_map(
            proteins, store, MapConfig(nonlinear="none", max_fit_points=50)
        )
        assert sampled.coordinates[["pca_x", "pca_y"]].notna().all().all()
        assert "a seeded sample of 50 of" in sampled.views.set_index("view").loc["all", "nonlinear"]
        others = proteins.assign(brc_fea_id=proteins["brc_fea_id"] + "_not_in_the_cache")
        with pytest.raises(NothingToMap, match="0 of .* proteins have a kmer_aa3 vector"):
            build_embedding_map(others, store)
        with pytest.raises(ValueError, match="focus_function 'XX'.*pick one"):
            build_embedding_map(proteins, store, MapConfig(focus_function="XX"))


# -------------------------------------------------------------------- conservation


def test_identity_of_identical_sequences_is_one_and_of_unrelated_ones_low():
    a = _random_protein(300, seed=1)
    assert pairwise_identity(a, a) == 1.0
    substituted = a[:150] + ("W" if a[150] != "W" else "C") + a[151:]
    assert pairwise_identity(a, substituted) == pytest.approx(299 / 300)
    # one residue deleted: 300 alignment columns (one a gap), 299 identical
    assert pairwise_identity(a, a[:100] + a[101:]) == pytest.approx(299 / 300)
    assert pairwise_identity(a, _random_protein(300, seed=2)) < 0.3


def test_conservation_table_by_hand():
    s, t1, t2 = _random_protein(60, 3), _random_protein(60, 4), _random_protein(60, 5)
    proteins = pd.DataFrame(
        {
            "brc_fea_id": ["a1", "a2", "a3", "b1", "b1x", "b2"],
            "assembly_id": ["i1", "i2", "i3", "i1", "i1", "i2"],
            "segment": ["1", "1", "1", "2", "2", "2"],
            "function": ["A", "A", "A", "B", "B", "B"],
            "esm2_ready_seq": [s, s, s, t1, t2, t1],
            "seq_hash": ["h", "h", "h", "t1", "t2", "t1"],
            # A: one protein, two synonymous coding sequences
            "nt_seq": ["ATGAAA", "ATGAAG", "ATGAAA", "", "", ""],
        }
    )
    result = measure_conservation(proteins, ConservationConfig(pairs_per_function=10))
    table = result.table.set_index("function")
    assert table.loc["A", "identity_pairs"] == 3 and table.loc["A", "identical_share"] == 1.0
    assert table.loc["A", "distinct_proteins_per_100_isolates"] == pytest.approx(100 / 3)
    assert table.loc["A", "distinct_cds_per_100_isolates"] == pytest.approx(200 / 3)
    assert np.isnan(table.loc["B", "distinct_cds_per_100_isolates"])  # no coding sequences
    # B: b1 and b1x share isolate i1, so only the pairs with b2 are between isolates
    b = result.identities[result.identities["function"] == "B"]
    assert sorted(zip(b["brc_a"], b["brc_b"], strict=True)) == [("b1", "b2"), ("b1x", "b2")]
    assert sorted(b["identity"]) == pytest.approx(sorted([1.0, pairwise_identity(t2, t1)]))
    assert table.loc["B", "distinct_proteins_per_100_isolates"] == pytest.approx(100.0)
    again = measure_conservation(proteins, ConservationConfig(pairs_per_function=1))
    assert again.table["identity_pairs"].tolist() == [1, 1]


def test_conservation_of_the_simulated_flu(small_flu, tmp_path):
    """The simulator's rates follow the seeds: PB1 conserved, HA variable."""
    proteins, _paths = small_flu
    result = measure_conservation(proteins, ConservationConfig(pairs_per_function=30))
    median = result.table.set_index("function")["identity_median"]
    assert median["PB1"] > 0.9 > 0.6 > median["HA"]
    files = write_conservation(tmp_path, result, "flu_a small")
    assert pd.read_parquet(files["pairwise_identity.parquet"]).shape == (8 * 30, 4)
    assert files["conservation.png"].read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------- per-schema-pair diagnostics


def test_per_schema_pair_table_by_hand():
    positive = np.array([0.9, 0.7, 0.5, 0.6, 0.7])
    negative = np.array([0.3, 0.5, 0.5, 0.6, 0.7, 0.2])
    table = per_schema_pair_table(
        positive,
        negative,
        np.array(["A-B", "A-B", "C-D", "C-D", "C-D"]),
        np.array(["A-B", "A-B", "C-D", "C-D", "C-D", "E-F"]),
    )
    assert table["schema_pair"].tolist() == ["A-B", "C-D", "E-F"]  # highest d first
    ab, cd, ef = (table.iloc[i] for i in range(3))
    # A-B: means 0.8 and 0.4, both sample variances 0.02, so d = 0.4 / sqrt(0.02)
    assert (ab["n_positive"], ab["n_negative"]) == (2, 2)
    assert ab["positive_mean"] == pytest.approx(0.8) and ab["negative_mean"] == pytest.approx(0.4)
    assert ab["cohens_d"] == pytest.approx(0.4 / np.sqrt(0.02))
    assert ab["histogram_overlap"] == 0.0  # 0.7-0.9 against 0.3-0.5
    assert cd["cohens_d"] == 0.0 and cd["histogram_overlap"] == pytest.approx(1.0)
    assert (ef["n_positive"], ef["n_negative"]) == (0, 1) and np.isnan(ef["cohens_d"])


def test_similarity_diagnostics_per_schema_pair_add_up_to_the_pooled(small_flu, flu):
    proteins, paths = small_flu
    flu_pairs, _, _ = build_segment_pairs(proteins, build_cooccurrence(proteins)[0], flu)
    with EmbeddingStore(paths) as store:
        d = similarity_diagnostics(flu_pairs, store)
    per_pair = d.per_schema_pair
    assert set(per_pair["schema_pair"]) == set(flu_pairs["schema_pair"])
    assert per_pair["n_positive"].sum() == d.summary["n_positive"]
    assert per_pair["n_negative"].sum() == d.summary["n_negative"]
    # the pooled positive mean is the pair-count-weighted mean of the per-pair means
    weighted = (per_pair["positive_mean"] * per_pair["n_positive"]).sum() / per_pair[
        "n_positive"
    ].sum()
    assert weighted == pytest.approx(d.summary["positive_mean"], rel=1e-5)
