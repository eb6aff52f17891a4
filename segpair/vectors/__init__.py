"""Vector tables: a partition's embeddings as a LanceDB table with each protein's isolate
and metadata, for similarity search (`segpair neighbours`). `table` builds them from the
master cache, `search` queries them, `query` embeds new sequences the table's way."""

from segpair.vectors.search import VectorTable, open_vector_table
from segpair.vectors.table import (
    ANN_MIN_ROWS,
    VectorTablePaths,
    VectorTableSettings,
    build_vector_table,
    earlier_tables,
)

__all__ = [
    "ANN_MIN_ROWS",
    "VectorTable",
    "VectorTablePaths",
    "VectorTableSettings",
    "build_vector_table",
    "earlier_tables",
    "open_vector_table",
]
