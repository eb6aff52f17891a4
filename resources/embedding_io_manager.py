"""IO manager for master embedding caches: commits the HDF5 + Parquet pair together,
and hands downstream assets an `EmbeddingStore` (O(1) id -> vector, bulk gathers)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from segpair.data_versions import check_data_version_name
from segpair.embeddings.cache import CachePaths, EmbeddingStore
from segpair.embeddings.pipeline import PreparedCache

# Each cache asset names its embedder in its definition metadata under this key.
EMBEDDER_METADATA_KEY = "segpair/embedder"


class EmbeddingCacheIOManager(dg.ConfigurableIOManager):
    """Files live at `{data_root}/embeddings/{virus}/{data_version}/master_{embedder}_*`."""

    data_root: str

    def handle_output(self, context: dg.OutputContext, obj: PreparedCache) -> None:
        # under the cache's lock: a second run of the partition commits after this one
        report = obj.commit(holder=f"Dagster run {context.run_id}", log=context.log.info)
        context.add_output_metadata(
            {
                "path": dg.MetadataValue.path(str(obj.paths.h5)),
                "index_path": dg.MetadataValue.path(str(obj.paths.parquet)),
                "content_id": report.content_id,
            }
        )

    def load_input(self, context: dg.InputContext) -> EmbeddingStore:
        upstream = context.upstream_output
        embedder = upstream.definition_metadata.get(EMBEDDER_METADATA_KEY) if upstream else None
        if not embedder:
            raise ValueError(
                f"{context.asset_key.to_user_string()} has no {EMBEDDER_METADATA_KEY!r} "
                "metadata: build master cache assets with segpair_assets.assets.embeddings"
            )
        dims = context.asset_partition_key.keys_by_dimension
        check_data_version_name(dims["data_version"])  # a folder name: never a path
        return EmbeddingStore(
            CachePaths.for_partition(
                Path(self.data_root), dims["virus"], dims["data_version"], embedder
            )
        )
