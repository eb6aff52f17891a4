"""Code versions of the assets, in one table: bump a stage's number when its logic
changes what it writes (not for refactors), and the UI shows every materialization made
by the older logic as stale ("has a new code version").

A per-embedder asset's code version also carries a hash of its catalog entry (the
featurizer's parameters, its sources), so changing an embedder's definition marks its
own assets stale and no other embedder's. The model weights are not code: they show in
the cache's data version (its content id covers the model signature).
"""

from __future__ import annotations

import dagster as dg

from segpair.embeddings.catalog import EmbedderCatalog, EmbedderSpec
from segpair.provenance import config_hash

# Every per-embedder asset carries its embedder's name: how jobs select an embedder's assets.
EMBEDDER_TAG = "segpair/embedder"

STAGE_LOGIC = {
    "protein_final": "1",
    "cooccurrence_sets": "1",
    "segment_pairs": "1",
    "segment_conservation": "1",
    "master_embeddings": "1",
    "vector_table": "1",
    "embedding_map": "1",
    "embedding_diagnostics": "1",
    "pair_classifier": "1",
    "isolate_pair_scores": "1",
    "cross_version_evaluation": "1",
}


def spec_fingerprint(spec: EmbedderSpec) -> str:
    return config_hash({"params": dict(spec.params), "input_kind": spec.input_kind,
                        "featurizer": getattr(spec.featurizer, "__name__", str(spec.featurizer)),
                        "sources": repr(getattr(spec, "sources", ()))})[:8]  # fmt: skip


def stage_and_embedder(asset: str, catalog: EmbedderCatalog) -> tuple[str, EmbedderSpec | None]:
    """(stage, embedder spec or None) of an asset name; KeyError for an unknown stage."""
    if asset in STAGE_LOGIC:
        return asset, None
    for spec in sorted(catalog, key=lambda s: len(s.name), reverse=True):
        stage = asset.removesuffix(f"_{spec.name}")
        if stage != asset and stage in STAGE_LOGIC:
            return stage, spec
    raise KeyError(f"asset {asset!r} has no entry in STAGE_LOGIC (segpair_assets/code_versions.py)")


def code_version_for(asset: str, catalog: EmbedderCatalog) -> str:
    """`{stage logic}` for a partition-wide asset, `{stage logic}-{embedder hash}` for a
    per-embedder one."""
    stage, spec = stage_and_embedder(asset, catalog)
    return STAGE_LOGIC[stage] + (f"-{spec_fingerprint(spec)}" if spec else "")


def with_code_versions(assets: list, catalog: EmbedderCatalog) -> list:
    """The assets with their code versions and embedder tags set (source assets pass
    unchanged)."""
    materializable = [a for a in assets if isinstance(a, dg.AssetsDefinition)]
    others = [a for a in assets if not isinstance(a, dg.AssetsDefinition)]

    def versioned(spec: dg.AssetSpec) -> dg.AssetSpec:
        name = spec.key.path[-1]
        _stage, embedder = stage_and_embedder(name, catalog)
        tags = {**spec.tags, EMBEDDER_TAG: embedder.name} if embedder else spec.tags
        return spec.replace_attributes(code_version=code_version_for(name, catalog), tags=tags)

    return [*others, *dg.map_asset_specs(versioned, materializable)]
