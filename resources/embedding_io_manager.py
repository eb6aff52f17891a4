"""IO manager for master embedding caches: commits the HDF5 + Parquet pair together,
and hands downstream assets an `EmbeddingStore` (O(1) id -> vector, bulk gathers)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from segpair.embeddings.cache import CachePaths, EmbeddingStore
from segpair.embeddings.pipeline import PreparedCache

ASSET_PREFIX = "master_embeddings_"


def embedder_of(asset_key: dg.AssetKey) -> str:
    name = asset_key.path[-1]
    if not name.startswith(ASSET_PREFIX):
        raise ValueError(f"{name} is not a master embeddings asset")
    return name.removeprefix(ASSET_PREFIX)


class EmbeddingCacheIOManager(dg.ConfigurableIOManager):
    """Files live at `{data_root}/embeddings/{virus}/{data_version}/master_{embedder}_*`."""

    data_root: str

    def _paths(self, context: dg.OutputContext | dg.InputContext) -> CachePaths:
        dims = context.asset_partition_key.keys_by_dimension
        return CachePaths.for_partition(
            Path(self.data_root),
            dims["virus"],
            dims["data_version"],
            embedder_of(context.asset_key),
        )

    def handle_output(self, context: dg.OutputContext, obj: PreparedCache) -> None:
        report = obj.commit()
        context.add_output_metadata(
            {
                "path": dg.MetadataValue.path(str(obj.paths.h5)),
                "index_path": dg.MetadataValue.path(str(obj.paths.parquet)),
                "content_id": report.content_id,
            }
        )

    def load_input(self, context: dg.InputContext) -> EmbeddingStore:
        return EmbeddingStore(self._paths(context))
