"""Similarity search in a partition's vector table: the nearest proteins to a protein of
the table or to any vector of the same embedder, with their isolates and metadata, and
the proteins of another function that came with those isolates.

```python
from segpair.vectors import open_vector_table

table = open_vector_table("data", "flu_a", "simulated_v1", "kmer_aa3")
table.neighbours(protein_ids=["SM0000003:HA"], k=10, partner="NA")
table.nearest(vectors, k=10)  # (n, dim) float32 vectors made by the table's embedder
```

Similarity is cosine similarity (1 - LanceDB's cosine distance). A table with an ANN
index (see `segpair.vectors.table`) is searched through it, `nprobes` partitions and the
best `refine_factor` x k candidates re-ranked by their exact vectors; `exact=True` scans
every row instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from segpair.data_versions import check_data_version_name
from segpair.errors import InputDataError
from segpair.vectors.table import (
    METADATA_COLUMNS,
    NO_INDEX,
    CurrentTable,
    VectorTablePaths,
    sql_list,
)

# IVF partitions searched per query, and candidates re-ranked exactly per result wanted:
# recall@10 1.000 at 50k, 100k and 1M rows (BENCHMARKS.md, "Vector tables").
ANN_NPROBES = 20
ANN_REFINE_FACTOR = 10
RESULT_COLUMNS = ["query", "rank", "similarity", *METADATA_COLUMNS]


class VectorTable:
    """A partition's current vector table, opened read-only through its pointer file."""

    def __init__(self, paths: VectorTablePaths, where: str = ""):
        import lancedb

        current = CurrentTable.read(paths)
        if current is None:
            raise FileNotFoundError(
                f"no {paths.embedder} vector table{where} in {paths.folder}: materialize the "
                f"partition's vector table asset for {paths.embedder} first (the main job "
                "builds those of the weight-free embedders)"
            )
        self.paths = paths
        self.current = current
        self.where = where
        self.table = lancedb.connect(paths.folder).open_table(current.table)

    @property
    def embedder(self) -> str:
        return self.current.embedder

    @property
    def n_rows(self) -> int:
        return self.current.n_rows

    @property
    def dim(self) -> int:
        return self.current.dim

    @property
    def has_ann_index(self) -> bool:
        return self.current.index_type != NO_INDEX

    def search_kind(self, exact: bool | None = None) -> str:
        if self.has_ann_index and not exact:
            return f"approximate ({self.current.index_type} index, cosine)"
        return "exact (every row scanned, cosine)"

    # ------------------------------------------------------------ lookups

    def proteins(self, protein_ids: Sequence[str]) -> pd.DataFrame:
        """The rows of these proteins, vectors included (column `vector`), in the order
        given; an id the table lacks is an InputDataError naming it."""
        ids = list(dict.fromkeys(protein_ids))
        found = self._scan(f"brc_fea_id IN ({sql_list(ids)})", [*METADATA_COLUMNS, "vector"])
        missing = [i for i in ids if i not in set(found["brc_fea_id"])]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            example = self._scan(None, ["brc_fea_id"], limit=1)["brc_fea_id"].tolist()
            raise InputDataError(
                f"protein {missing[0]!r}{more}",
                f"is not in the {self.embedder} vector table{self.where} ({self.n_rows} proteins)",
                "give a brc_fea_id of this partition's protein_final"
                + (f" (e.g. {example[0]!r})" if example else "")
                + "; a protein whose embedding failed is listed in the cache's failed_ids.csv",
            )
        return found.set_index("brc_fea_id", drop=False).loc[ids].reset_index(drop=True)

    def proteins_of_isolates(self, isolates: Sequence[str], function: str) -> pd.DataFrame:
        """The proteins of `function` in these isolates (none for an isolate without one)."""
        if not len(isolates):
            return pd.DataFrame(columns=METADATA_COLUMNS)
        where = f"assembly_id IN ({sql_list(list(set(isolates)))}) AND function = "
        return self._scan(where + sql_list([function]), METADATA_COLUMNS)

    def _scan(self, where: str | None, columns: list[str], limit: int | None = None):
        query = self.table.search().select(columns).limit(limit)
        return (query.where(where) if where else query).to_pandas()

    # ------------------------------------------------------------ search

    def nearest(
        self,
        vectors: np.ndarray,
        k: int = 10,
        *,
        exact: bool | None = None,
        function: str | None = None,
        exclude: Sequence[str | None] | None = None,
        nprobes: int = ANN_NPROBES,
        refine_factor: int = ANN_REFINE_FACTOR,
    ) -> pd.DataFrame:
        """The k nearest rows to each query vector, best first: RESULT_COLUMNS, `query`
        being the vector's position. `function` keeps neighbours of that function only;
        `exclude[i]` is a protein id left out of query i's results (the query itself)."""
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if vectors.shape[1] != self.dim:
            raise ValueError(
                f"query vectors have {vectors.shape[1]} dims, the {self.embedder} table "
                f"{self.dim}: embed queries with the table's embedder (segpair.vectors.query)"
            )
        if k < 1 or not len(vectors) or not self.n_rows:
            return pd.DataFrame(columns=RESULT_COLUMNS)
        extra = 1 if exclude is not None else 0
        query = self.table.search(list(vectors)).distance_type("cosine").limit(k + extra)
        query = query.select([*METADATA_COLUMNS, "_distance"])
        if function is not None:
            query = query.where(f"function = {sql_list([function])}", prefilter=True)
        if self.has_ann_index and not exact:
            query = query.nprobes(nprobes)
            if refine_factor:  # 0: the index's own ranking, no exact re-ranking
                query = query.refine_factor(refine_factor)
        else:
            query = query.bypass_vector_index()
        found = query.to_pandas()
        if "query_index" not in found.columns:  # LanceDB leaves it out for one vector
            found["query_index"] = 0
        found = found.rename(columns={"query_index": "query"})
        found["similarity"] = 1.0 - found.pop("_distance").astype(float)
        if exclude is not None:
            own = found["query"].map(dict(enumerate(exclude)))
            found = found[found["brc_fea_id"] != own]
        found = found.sort_values(
            ["query", "similarity", "brc_fea_id"], ascending=[True, False, True], kind="stable"
        )
        found = found.groupby("query", sort=False).head(k).copy()
        found["rank"] = found.groupby("query").cumcount() + 1
        return found[RESULT_COLUMNS].reset_index(drop=True)

    def neighbours(
        self,
        *,
        protein_ids: Sequence[str] | None = None,
        vectors: np.ndarray | None = None,
        query_names: Sequence[str] | None = None,
        k: int = 10,
        partner: str | None = None,
        function: str | None = None,
        exact: bool | None = None,
    ) -> pd.DataFrame:
        """The k nearest proteins to each query: proteins of the table (`protein_ids`, each
        leaving itself out) or vectors (`vectors`, named by `query_names`). `query` names
        the query. With `partner` (a function, e.g. "NA"), each neighbour's isolate's
        protein of that function is added (`partner_brc_fea_id`, `partner_seq_hash`;
        empty where the isolate has none): which NAs came with the HAs found."""
        if (protein_ids is None) == (vectors is None):
            raise ValueError("give either protein_ids or vectors")
        if protein_ids is not None:
            rows = self.proteins(protein_ids)
            names = rows["brc_fea_id"].tolist()
            found = self.nearest(
                np.stack(rows["vector"].to_numpy()),
                k,
                exact=exact,
                function=function,
                exclude=names,
            )
        else:
            vectors = np.atleast_2d(vectors)
            names = list(query_names) if query_names is not None else list(range(len(vectors)))
            found = self.nearest(vectors, k, exact=exact, function=function)
        found["query"] = found["query"].map(dict(enumerate(names)))
        return with_partners(self, found, partner) if partner else found


def with_partners(table: VectorTable, found: pd.DataFrame, partner: str) -> pd.DataFrame:
    """`found` with each row's isolate's protein(s) of function `partner`."""
    partners = table.proteins_of_isolates(found["assembly_id"].dropna().tolist(), partner)
    partners = partners[["assembly_id", "brc_fea_id", "seq_hash"]].rename(
        columns={"brc_fea_id": "partner_brc_fea_id", "seq_hash": "partner_seq_hash"}
    )
    out = found.merge(partners, on="assembly_id", how="left", sort=False)
    out.insert(out.columns.get_loc("partner_brc_fea_id"), "partner_function", partner)
    return out


def open_vector_table(
    root: str | Path, virus: str, data_version: str, embedder: str
) -> VectorTable:
    """The current vector table of virus x data_version x embedder under the data root."""
    paths = VectorTablePaths.for_partition(
        Path(root), virus, check_data_version_name(data_version), embedder
    )
    return VectorTable(paths, where=f" of {virus} x {data_version}")
