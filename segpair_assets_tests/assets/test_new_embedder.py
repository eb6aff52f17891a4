"""A new embedder is one catalog entry plus its featurizer class: the code location then
has its cache, classifier, diagnostics and scoring assets, and the main job runs them."""

from __future__ import annotations

import dagster as dg
import numpy as np

from segpair.embeddings.base import EmbedOutput
from segpair.embeddings.catalog import CATALOG, EmbedderSpec
from segpair.training.model_history import ModelHistory


class ResidueComposition:
    """A fake featurizer for the catalog test: amino-acid frequencies (20 dims)."""

    input_kind = "protein"
    letters = "ACDEFGHIKLMNPQRSTVWY"

    def __init__(self, name: str):
        self.name = name

    @property
    def dim(self) -> int:
        return len(self.letters)

    def describe(self) -> dict:
        return {"family": "composition", "model_name": "residue composition"}

    def embed(self, sequences: list[str]) -> EmbedOutput:
        counts = np.array([[s.count(c) for c in self.letters] for s in sequences], np.float32)
        vectors = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        return EmbedOutput(vectors, list(range(len(sequences))))


COMPOSITION = EmbedderSpec(
    "composition", "amino-acid composition (20 dims)", "protein", ResidueComposition
)


def test_a_new_catalog_entry_brings_its_assets_resources_and_job_membership(tmp_path):
    from segpair_assets.definitions import build_definitions
    from segpair_assets.partitions import DATA_VERSION_PARTITIONS_NAME, partition_key

    defs = build_definitions(str(tmp_path / "data"), catalog=CATALOG.with_spec(COMPOSITION))
    graph = defs.resolve_asset_graph()
    names = {k.to_user_string() for k in graph.get_all_asset_keys()}
    derived = [COMPOSITION.cache_asset, COMPOSITION.classifier_asset,
               COMPOSITION.diagnostics_asset, COMPOSITION.scores_asset]  # fmt: skip
    assert derived == [
        "master_embeddings_composition",
        "pair_classifier_composition",
        "embedding_diagnostics_composition",
        "isolate_pair_scores_composition",
    ]
    assert set(derived) <= names
    cache = defs.resolve_assets_def(COMPOSITION.cache_asset)
    assert {"embedders", "compute_device", "storage"} <= cache.required_resource_keys
    main = defs.resolve_job_def("segpair_main_job").asset_layer.selected_asset_keys
    assert {dg.AssetKey(n) for n in derived} <= main  # weight-free: in the main job
    # and it runs: cache -> classifier -> scores on the simulated demo
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME, ["simulated_v1"])
        wanted = ["protein_final", "cooccurrence_sets", "segment_pairs", *derived]
        result = defs.resolve_job_def("segpair_main_job").execute_in_process(
            instance=instance,
            partition_key=partition_key("bunya", "simulated_v1"),
            asset_selection=[dg.AssetKey(n) for n in wanted],
            run_config={"ops": {COMPOSITION.classifier_asset: {"config": {"steps": 100}}}},
        )
    assert result.success
    (mat,) = result.asset_materializations_for_node(COMPOSITION.cache_asset)
    assert mat.metadata["dim"].value == 20 and mat.metadata["embedder"].value == "composition"
    models = tmp_path / "data" / "models" / "bunya" / "simulated_v1" / "composition"
    assert ModelHistory(models).checkpoint().exists()
