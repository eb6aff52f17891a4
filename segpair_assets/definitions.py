"""The segpair code location."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from resources import PartitionedParquetIOManager, SegpairStorage, default_data_root
from segpair_assets.asset_checks import protein_final_is_valid
from segpair_assets.assets.preprocessing import protein_final
from segpair_assets.jobs import segpair_main_job


def build_definitions(data_root: str | None = None) -> dg.Definitions:
    root = data_root or default_data_root()
    return dg.Definitions(
        assets=[protein_final],
        asset_checks=[protein_final_is_valid],
        jobs=[segpair_main_job],
        resources={
            "storage": SegpairStorage(data_root=root),
            "parquet_io_manager": PartitionedParquetIOManager(
                base_dir=str(Path(root) / "processed")
            ),
        },
    )


defs = build_definitions()
