"""Dagster resources and IO managers for segpair."""

from resources.parquet_io_manager import PartitionedParquetIOManager
from resources.storage import SegpairStorage, default_data_root

__all__ = ["PartitionedParquetIOManager", "SegpairStorage", "default_data_root"]
