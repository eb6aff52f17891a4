"""Dagster resources and IO managers for segpair."""

from resources.embedders import ComputeDevice, Embedders, LanguageModelOptions, embedders_for
from resources.embedding_io_manager import EmbeddingCacheIOManager
from resources.mlflow_tracking import MlflowTracking
from resources.parquet_io_manager import PartitionedParquetIOManager
from resources.reproducibility import Reproducibility
from resources.storage import SegpairStorage
from resources.viruses import VirusRegistryResource

__all__ = [
    "ComputeDevice",
    "EmbeddingCacheIOManager",
    "Embedders",
    "LanguageModelOptions",
    "MlflowTracking",
    "PartitionedParquetIOManager",
    "Reproducibility",
    "SegpairStorage",
    "VirusRegistryResource",
    "embedders_for",
]
