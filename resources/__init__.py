"""Dagster resources and IO managers for segpair."""

from resources.embedders import (
    ComputeDevice,
    KmerEmbedderResource,
    LanguageModelEmbedderResource,
)
from resources.embedding_io_manager import EmbeddingCacheIOManager
from resources.mlflow_tracking import MlflowTracking
from resources.parquet_io_manager import PartitionedParquetIOManager
from resources.storage import SegpairStorage, default_data_root

__all__ = [
    "ComputeDevice",
    "EmbeddingCacheIOManager",
    "MlflowTracking",
    "KmerEmbedderResource",
    "LanguageModelEmbedderResource",
    "PartitionedParquetIOManager",
    "SegpairStorage",
    "default_data_root",
]
