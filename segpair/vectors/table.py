"""The vector table of one virus x data version x embedder: a LanceDB table of every protein
that has a vector in the partition's master cache, with its isolate and metadata.

Files, in `data/vectors/{virus}/{data_version}/` (a LanceDB database folder):

- `{embedder}-{build_id}.lance`: a table with the columns of `table_schema`: brc_fea_id,
  assembly_id (the isolate), isolate_name, segment, function, subtype, host, year,
  seq_hash, row_digest (what the row says, hashed: incremental updates compare it) and
  `vector` (float32, the cache's dimension);
- `{embedder}.current.json`: which table is current, the cache it was written from
  (content id, signature, the embedder's description, so queries can be embedded the same
  way), rows, dimension, index, and what the build reused.

Written from the master cache: vectors are gathered from the HDF5 cache (or kept from an
earlier table), never computed.

Atomic. A table is written in full under a new name (rows, then its ANN index) and only
then named current, by replacing the pointer file (`segpair.atomic`). LanceDB commits each
operation atomically (a reader of a table sees one version, never half a write), but a
build is several commits (rows, deletions, additions, index), and a table read between
them would lack its index or hold half an update; behind the pointer, readers open
finished tables only. The table the pointer named before stays for readers that opened it
then; older ones, and unfinished ones of a killed build, go at the next build (under the
partition's lock for this embedder).

Incremental. When an earlier table of the same embedder signature and dimension exists
(this partition's current one, else the newest of the virus's other data versions), the
new table starts as a copy of it made of hard links (Lance never rewrites a data or index
file, so no byte is copied), then: rows of proteins that are gone, or whose sequence or
metadata changed (row digest), are deleted; new and changed proteins are added, their
vectors gathered from this partition's cache; an ANN index takes the added rows into its
trained partitions (LanceDB `optimize`, no retraining) unless the table has more than
doubled since the index was trained, which retrains it. So a data version that adds
sequences costs what it adds, not what it keeps. Without such a table: a full build.

Exact or approximate. Below `ann_min_rows` rows (default ANN_MIN_ROWS) a table has no
vector index and searches scan every row (exact cosine); from it on, an IVF_SQ index
(cosine), plus B-tree indexes on brc_fea_id and assembly_id for lookups. BENCHMARKS.md
("Vector tables") has the figures behind the threshold and the index type.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from segpair.atomic import write_text_atomic
from segpair.cleaning import PROTEIN_DESCRIPTION_COLUMNS
from segpair.locks import exclusive
from segpair.readers.common import METADATA_ALIASES

# Rows from which a table gets an ANN index: an exact scan of 50,000 rows x 1280 dims took
# 0.34 s a query on 2 cores, an IVF_SQ search 23 ms (BENCHMARKS.md, "Vector tables").
ANN_MIN_ROWS = 50_000
IndexType = Literal["IVF_SQ", "IVF_PQ", "IVF_HNSW_SQ"]
NO_INDEX = "none"
# An index is retrained once the table holds more than this many times the rows it was
# trained on: new rows only join the trained partitions, which drift as the data grows.
RETRAIN_GROWTH = 2.0
METADATA_COLUMNS = list(PROTEIN_DESCRIPTION_COLUMNS)
_LINKED_DIRS = ("data", "_indices", "_deletions")  # immutable files: hard-linked
_BATCH_ROWS = 2048


@dataclass(frozen=True)
class VectorTableSettings:
    """How a table is indexed and whether earlier tables are reused."""

    ann_min_rows: int = ANN_MIN_ROWS
    index_type: IndexType = "IVF_SQ"
    reuse_earlier_tables: bool = True


@dataclass(frozen=True)
class VectorTablePaths:
    folder: Path  # the partition's LanceDB database
    embedder: str

    @classmethod
    def for_partition(cls, root: Path, virus: str, data_version: str, embedder: str):
        return cls(Path(root) / "vectors" / virus / data_version, embedder)

    @property
    def pointer(self) -> Path:
        return self.folder / f"{self.embedder}.current.json"

    @property
    def lock(self) -> Path:
        """Held while a table of this embedder is built and swapped in (segpair.locks)."""
        return self.folder / f".{self.embedder}.vectors.lock"

    def table_dir(self, table: str) -> Path:
        return self.folder / f"{table}.lance"

    def table_names(self) -> list[str]:
        """Every table of this embedder on disk, current or not."""
        if not self.folder.is_dir():
            return []
        return sorted(
            p.name[: -len(".lance")] for p in self.folder.glob(f"{self.embedder}-*.lance")
        )


@dataclass
class CurrentTable:
    """The pointer file's content: the current table and what it was made from."""

    table: str
    embedder: str
    signature: str
    dim: int
    n_rows: int
    cache_content_id: str
    rows_digest: str
    index_type: str  # NO_INDEX or an IndexType
    index_trained_rows: int
    ann_min_rows: int
    description: dict  # the embedder's, as the cache records it
    previous_table: str | None = None
    built: str = "full"  # full, incremental
    reused_from: str | None = None  # the table the rows were kept from
    reused_rows: int = 0
    added_rows: int = 0
    removed_rows: int = 0
    created_at: str = ""

    @classmethod
    def read(cls, paths: VectorTablePaths) -> CurrentTable | None:
        if not paths.pointer.exists():
            return None
        return cls(**json.loads(paths.pointer.read_text()))

    def write(self, paths: VectorTablePaths) -> None:
        write_text_atomic(paths.pointer, json.dumps(asdict(self), indent=1, sort_keys=True))


@dataclass
class VectorTableReport:
    embedder: str
    path: Path
    current: CurrentTable
    outcome: str  # full, incremental, unchanged
    not_embedded: int = 0  # proteins of the table given without a vector in the cache
    seconds: float = 0.0
    index_seconds: float = 0.0
    index_action: str = ""  # none, trained, updated, dropped, kept
    cleared: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ rows


def table_schema(dim: int) -> pa.Schema:
    strings = [pa.field(c, pa.string()) for c in METADATA_COLUMNS if c != "year"]
    strings.insert(METADATA_COLUMNS.index("year"), pa.field("year", pa.int32()))
    return pa.schema(
        [
            *strings,
            pa.field("row_digest", pa.string()),
            pa.field("vector", pa.list_(pa.float32(), dim)),
        ]
    )


def _metadata_column(proteins: pd.DataFrame, name: str) -> pd.Series:
    """The column, or its first alias present (a user table's `serotype` for subtype), or
    nulls where the virus's records carry no such field."""
    for candidate in [name, *METADATA_ALIASES.get(name, [])]:
        if candidate in proteins.columns:
            return proteins[candidate]
    return pd.Series(pd.NA, index=proteins.index)


def table_rows(proteins: pd.DataFrame, cache_index: pd.DataFrame) -> pd.DataFrame:
    """One row per protein that has a vector in the cache (`cache_index`: the store's
    brc_fea_id -> row table): METADATA_COLUMNS, `row_digest` and `cache_row`."""
    for required in ("brc_fea_id", "assembly_id", "function", "seq_hash"):
        if required not in proteins.columns:
            raise ValueError(
                f"the protein table has no {required!r} column: build vector tables from "
                "protein_final (segpair.cleaning.build_protein_final)"
            )
    rows = pd.DataFrame({c: _metadata_column(proteins, c) for c in METADATA_COLUMNS})
    for c in METADATA_COLUMNS:
        if c != "year":
            rows[c] = rows[c].astype("string")
    rows["year"] = pd.to_numeric(rows["year"], errors="coerce").astype("Int32")
    cache_rows = pd.DataFrame(
        {
            "brc_fea_id": cache_index["brc_fea_id"].astype("string"),
            "cache_row": cache_index["row"].to_numpy(),
        }
    )
    rows = rows.merge(cache_rows, on="brc_fea_id", how="inner")
    rows["row_digest"] = row_digests(rows)
    return rows.sort_values("brc_fea_id", kind="stable").reset_index(drop=True)


def row_digests(rows: pd.DataFrame) -> pd.Series:
    """A short hash of each row's metadata and sequence hash: equal digests, equal rows."""
    text = rows[METADATA_COLUMNS[0]].astype("string").fillna("\x00")
    for c in METADATA_COLUMNS[1:]:
        text = text.str.cat(rows[c].astype("string").fillna("\x00"), sep="\x1f")
    return text.map(lambda s: hashlib.md5(s.encode()).hexdigest()[:16]).astype("string")


def rows_digest(rows: pd.DataFrame) -> str:
    blob = "\n".join((rows["brc_fea_id"] + ":" + rows["row_digest"]).sort_values())
    return hashlib.md5(blob.encode()).hexdigest()


def _batches(
    rows: pd.DataFrame, vectors_of: Callable[[pd.DataFrame], np.ndarray], schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    dim = schema.field("vector").type.list_size
    columns = [f.name for f in schema if f.name != "vector"]
    for start in range(0, len(rows), _BATCH_ROWS):
        block = rows.iloc[start : start + _BATCH_ROWS]
        vectors = np.ascontiguousarray(vectors_of(block), dtype=np.float32)
        if vectors.shape != (len(block), dim):
            raise ValueError(f"internal: {vectors.shape} vectors for {len(block)} rows of {dim}")
        meta = pa.Table.from_pandas(
            block[columns], schema=pa.schema(list(schema)[:-1]), preserve_index=False
        )
        vector = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), dim)
        arrays = [c.combine_chunks() for c in meta.columns]
        yield pa.RecordBatch.from_arrays([*arrays, vector], schema=schema)


# ------------------------------------------------------------------ building


def build_vector_table(
    store,
    proteins: pd.DataFrame,
    paths: VectorTablePaths,
    earlier: Sequence[VectorTablePaths] = (),
    settings: VectorTableSettings = VectorTableSettings(),
    holder: str = "",
    log: Callable[[str], object] | None = None,
) -> VectorTableReport:
    """Bring the partition's table up to date with its master cache (`store`, an open
    `EmbeddingStore`) and protein table; `earlier`: the virus's other data versions' tables
    of this embedder, newest first (reused when their signature matches). Under the
    table's lock, so a second build of the partition waits and then finds it up to date."""
    rows = table_rows(proteins, store.index)
    fields = {
        "embedder": paths.embedder,
        "signature": store.signature,
        "dim": store.dim,
        "cache_content_id": str(store.attrs.get("content_id", "")),
        "rows_digest": rows_digest(rows),
        "description": _description(store.attrs),
    }
    with exclusive(
        paths.lock,
        f"building the {paths.embedder} vector table in {paths.folder}",
        holder=holder,
        log=log,
    ):
        return write_vector_table(
            paths,
            rows,
            lambda block: store.gather_rows(block["cache_row"].to_numpy()),
            fields,
            list(earlier) if settings.reuse_earlier_tables else [],
            settings,
            not_embedded=int((~proteins["brc_fea_id"].isin(rows["brc_fea_id"])).sum()),
        )


def _description(attrs: dict) -> dict:
    from segpair.embeddings.factory import description_from_attrs

    return {
        k: (v.item() if isinstance(v, np.generic) else v)
        for k, v in description_from_attrs(attrs).items()
    }


def write_vector_table(
    paths: VectorTablePaths,
    rows: pd.DataFrame,
    vectors_of: Callable[[pd.DataFrame], np.ndarray],
    fields: dict,
    earlier: Sequence[VectorTablePaths],
    settings: VectorTableSettings,
    not_embedded: int = 0,
) -> VectorTableReport:
    """The build itself, for a caller holding the table's lock: `rows` as `table_rows`
    makes them, `vectors_of(block)` their vectors in order; `fields` the pointer's
    embedder, signature, dim, cache_content_id, rows_digest and description."""
    import lancedb

    started = time.perf_counter()
    cleared = clear_unreferenced(paths)
    current = CurrentTable.read(paths)
    if current is not None and _up_to_date(current, fields, settings, paths):
        return VectorTableReport(
            paths.embedder,
            paths.table_dir(current.table),
            current,
            "unchanged",
            not_embedded,
            cleared=cleared,
        )
    paths.folder.mkdir(parents=True, exist_ok=True)
    db = lancedb.connect(paths.folder)
    name = f"{paths.embedder}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    schema = table_schema(fields["dim"])
    base = _reusable_base(paths, [paths, *earlier], fields, schema, name, db)
    if base is None:
        table = _full_table(db, name, rows, vectors_of, schema)
        (kept, added, removed), copied_from = (0, len(rows), 0), None
    else:
        table, (kept, added, removed) = _update_table(base, rows, vectors_of, schema)
        copied_from = base[1]
    index_started = time.perf_counter()
    index_type, trained, action = settle_index(
        table, settings, copied_from, grew=bool(added or removed)
    )
    index_seconds = time.perf_counter() - index_started
    new = CurrentTable(
        table=name,
        n_rows=table.count_rows(),
        index_type=index_type,
        index_trained_rows=trained,
        ann_min_rows=settings.ann_min_rows,
        previous_table=current.table if current else None,
        built="full" if copied_from is None else "incremental",
        reused_from=copied_from.table if copied_from else None,
        reused_rows=kept,
        added_rows=added,
        removed_rows=removed,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        **fields,
    )
    new.write(paths)  # the swap: from here on readers open the new table
    clear_unreferenced(paths)
    return VectorTableReport(
        paths.embedder,
        paths.table_dir(name),
        new,
        new.built,
        not_embedded,
        time.perf_counter() - started,
        index_seconds,
        action,
        cleared,
    )


def _up_to_date(current: CurrentTable, fields: dict, settings, paths: VectorTablePaths) -> bool:
    same = all(getattr(current, k) == v for k, v in fields.items() if k != "description")
    return (
        same
        and current.ann_min_rows == settings.ann_min_rows
        and (current.index_type in (NO_INDEX, settings.index_type))
        and paths.table_dir(current.table).is_dir()
    )


def clear_unreferenced(paths: VectorTablePaths) -> list[str]:
    """Remove this embedder's tables that the pointer names neither as current nor as
    previous: older tables and unfinished ones of a killed build."""
    current = CurrentTable.read(paths)
    keep = {current.table, current.previous_table} if current else set()
    gone = [t for t in paths.table_names() if t not in keep]
    for table in gone:
        shutil.rmtree(paths.table_dir(table), ignore_errors=True)
    return gone


def _full_table(db, name: str, rows: pd.DataFrame, vectors_of, schema: pa.Schema):
    if rows.empty:  # every protein failed to embed (e.g. no coding sequences): a valid table
        return db.create_table(name, schema=schema)
    return db.create_table(
        name, pa.RecordBatchReader.from_batches(schema, _batches(rows, vectors_of, schema))
    )


# ------------------------------------------------------------------ incremental


def _reusable_base(paths, candidates, fields, schema, name, db):
    """(table, the CurrentTable it was copied from): a hard-linked copy, named `name`, of
    the first candidate's current table of the same signature and dimension; None if none
    qualifies or the copy fails (a concurrent build removed it): then a full build."""
    for candidate in candidates:
        found = CurrentTable.read(candidate)
        if found is None or (found.signature, found.dim) != (fields["signature"], fields["dim"]):
            continue
        source = candidate.table_dir(found.table)
        try:
            link_copy(source, paths.table_dir(name))
            table = db.open_table(name)
            if table.schema.remove_metadata() == schema and table.count_rows() == found.n_rows:
                return table, found
        except (OSError, ValueError, RuntimeError):
            pass
        shutil.rmtree(paths.table_dir(name), ignore_errors=True)
    return None


def link_copy(source: Path, target: Path) -> None:
    """A copy of a Lance table folder whose data, index and deletion files are hard links
    (Lance writes those once and never changes them); manifests and the rest are copied.
    Falls back to copying where links are impossible (another filesystem)."""
    for folder, _dirs, files in os.walk(source):
        relative = Path(folder).relative_to(source)
        (target / relative).mkdir(parents=True, exist_ok=True)
        linked = relative.parts[:1] and relative.parts[0] in _LINKED_DIRS
        for f in files:
            src, dst = Path(folder) / f, target / relative / f
            if linked:
                try:
                    os.link(src, dst)
                    continue
                except OSError:
                    pass  # another filesystem: copied below
            shutil.copy2(src, dst)


def _update_table(base, rows: pd.DataFrame, vectors_of, schema: pa.Schema):
    """Delete the rows that are gone or changed, add the new and changed: (table,
    (kept, added, removed))."""
    table, _found = base
    old = table.search().select(["brc_fea_id", "row_digest"]).limit(None).to_pandas()
    old_keys = set(zip(old["brc_fea_id"], old["row_digest"], strict=True))
    new_keys = set(zip(rows["brc_fea_id"], rows["row_digest"], strict=True))
    removed = [pid for pid, digest in old_keys if (pid, digest) not in new_keys]
    for start in range(0, len(removed), 1000):
        table.delete(f"brc_fea_id IN ({sql_list(removed[start : start + 1000])})")
    added = rows[
        [key not in old_keys for key in zip(rows["brc_fea_id"], rows["row_digest"], strict=True)]
    ]
    if len(added):
        table.add(pa.RecordBatchReader.from_batches(schema, _batches(added, vectors_of, schema)))
    return table, (len(old_keys) - len(removed), len(added), len(removed))


def sql_list(values: Sequence[str]) -> str:
    """Values as a quoted SQL list for a LanceDB filter (quotes doubled)."""
    return ", ".join("'" + str(v).replace("'", "''") + "'" for v in values)


# ------------------------------------------------------------------ indexes


def settle_index(table, settings: VectorTableSettings, base: CurrentTable | None, grew: bool):
    """Give the table the index its size calls for: (index type, rows it was trained on,
    what was done). `base`: the table this one was copied from, whose index it holds."""
    n = table.count_rows()
    has_index = base is not None and base.index_type != NO_INDEX
    if n < settings.ann_min_rows:
        for index in table.list_indices():
            table.drop_index(index.name)
        return NO_INDEX, 0, "dropped" if has_index else "none"
    same_type = has_index and base.index_type == settings.index_type
    if same_type and n <= RETRAIN_GROWTH * base.index_trained_rows:
        if grew:
            table.optimize()  # the added rows join the trained partitions
        return base.index_type, base.index_trained_rows, "updated" if grew else "kept"
    create_ann_index(table, settings.index_type)
    return settings.index_type, n, "trained"


def create_ann_index(table, index_type: IndexType) -> None:
    """A cosine ANN index on `vector` (LanceDB's default partitioning), plus B-tree indexes
    for the lookups by protein and isolate."""
    from lancedb.index import BTree, IvfHnswSq, IvfPq, IvfSq

    config = {"IVF_SQ": IvfSq, "IVF_PQ": IvfPq, "IVF_HNSW_SQ": IvfHnswSq}[index_type]
    table.create_index("vector", config=config(distance_type="cosine"), replace=True)
    for column in ("brc_fea_id", "assembly_id"):
        table.create_index(column, config=BTree(), replace=True)


def earlier_tables(
    root: Path, virus: str, data_version: str, embedder: str
) -> list[VectorTablePaths]:
    """The embedder's tables in the virus's other data versions, newest first."""
    base = Path(root) / "vectors" / virus
    if not base.is_dir():
        return []
    found = [
        VectorTablePaths(d, embedder)
        for d in base.iterdir()
        if d.is_dir() and d.name != data_version
    ]
    found = [p for p in found if p.pointer.exists()]
    return sorted(found, key=lambda p: p.pointer.stat().st_mtime, reverse=True)
