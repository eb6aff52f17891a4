"""Where segpair's files live: one data root with raw/, processed/, embeddings/, models/,
exports/.

Every path under the data root is built here (and, for the cache files, by
`segpair.embeddings.cache.CachePaths`), so no asset joins path pieces itself. Each method
refuses a data version that is not a plain name: a partition key or a launchpad
`model_data_version` like `../x` or `/abs` would otherwise lead outside the data root.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from segpair.data_versions import check_data_version_name
from segpair.embeddings.cache import CachePaths
from segpair.embeddings.pipeline import previous_caches
from segpair.vectors.table import VectorTablePaths, earlier_tables


class SegpairStorage(dg.ConfigurableResource):
    """The data root. Raw data versions are folders `raw/{virus}/{data_version}/`."""

    data_root: str

    @property
    def root(self) -> Path:
        return Path(self.data_root).expanduser().resolve()

    def raw_dir(self, virus: str, data_version: str) -> Path:
        return self.root / "raw" / virus / check_data_version_name(data_version)

    def processed_dir(self, virus: str, data_version: str) -> Path:
        return self.root / "processed" / virus / check_data_version_name(data_version)

    def cache_paths(self, virus: str, data_version: str, embedder: str) -> CachePaths:
        """The master cache of one embedder in one partition."""
        check_data_version_name(data_version)
        return CachePaths.for_partition(self.root, virus, data_version, embedder)

    def earlier_caches(self, virus: str, data_version: str, embedder: str) -> list[CachePaths]:
        """The embedder's caches in the virus's other data versions, newest first."""
        return previous_caches(self.root, virus, check_data_version_name(data_version), embedder)

    def export_dir(self, virus: str, data_version: str, embedder: str, fmt: str) -> Path:
        """Where `segpair export` writes one cache's export in one format."""
        version = check_data_version_name(data_version)
        return self.root / "exports" / virus / version / embedder / fmt

    def vector_table_paths(self, virus: str, data_version: str, embedder: str) -> VectorTablePaths:
        """The vector table of one embedder in one partition (segpair.vectors)."""
        check_data_version_name(data_version)
        return VectorTablePaths.for_partition(self.root, virus, data_version, embedder)

    def earlier_vector_tables(
        self, virus: str, data_version: str, embedder: str
    ) -> list[VectorTablePaths]:
        """The embedder's vector tables in the virus's other data versions, newest first."""
        return earlier_tables(self.root, virus, check_data_version_name(data_version), embedder)

    def analysis_dir(self, virus: str, data_version: str, embedder: str | None = None) -> Path:
        """Maps (per embedder) and conservation (per partition) of one partition."""
        folder = self.root / "analysis" / virus / check_data_version_name(data_version)
        return folder / embedder if embedder else folder

    def model_dir(self, virus: str, data_version: str, embedder: str) -> Path:
        """Checkpoint, metrics, plots and diagnostics of one embedder in one partition."""
        return self.root / "models" / virus / check_data_version_name(data_version) / embedder
