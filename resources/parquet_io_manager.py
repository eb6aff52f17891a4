"""Parquet IO manager for partitioned DataFrame assets, written atomically.

Layout: `{base_dir}/{virus}/{data_version}/{asset}.parquet` for the virus x
data_version partitions (other partitionings nest their key; unpartitioned assets
sit at `{base_dir}/{asset}.parquet`). A failed run never touches the stored file:
the new one is written beside it and renamed over it only when complete, under the
file's lock (`.{asset}.parquet.lock`, segpair.locks), so a second run writing the same
partition waits for the first.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd

from segpair.atomic import atomic_path
from segpair.data_versions import check_data_version_name
from segpair.locks import exclusive, lock_file_for


class PartitionedParquetIOManager(dg.ConfigurableIOManager):
    base_dir: str

    def _path(self, context: dg.OutputContext | dg.InputContext) -> Path:
        name = context.asset_key.path[-1]
        base = Path(self.base_dir)
        if not context.has_asset_partitions:
            return base / f"{name}.parquet"
        key = context.asset_partition_key
        if isinstance(key, dg.MultiPartitionKey):
            dims = key.keys_by_dimension
            parts = (
                [dims["virus"], dims["data_version"]] if "virus" in dims else list(dims.values())
            )
        else:
            parts = [str(key)]
        # A partition key becomes folder names: a path-like key (added through the UI or
        # the API) must never write outside base_dir.
        for part in parts:
            check_data_version_name(part)
        return base.joinpath(*parts) / f"{name}.parquet"

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        path = self._path(context)
        # Two runs of one partition: one writer at a time, the second after the first.
        run = f"Dagster run {context.run_id}"
        lock = exclusive(lock_file_for(path), f"writing {path}", run, log=context.log.info)
        with lock, atomic_path(path) as tmp:
            obj.to_parquet(tmp, index=False)
        context.add_output_metadata(
            {
                "path": dg.MetadataValue.path(str(path)),
                "size_mb": round(path.stat().st_size / 2**20, 3),
            }
        )

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        path = self._path(context)
        if not path.exists():
            raise FileNotFoundError(
                f"{path} does not exist: materialize {context.asset_key.to_user_string()} "
                f"for partition {context.asset_partition_key} first"
            )
        return pd.read_parquet(path)
