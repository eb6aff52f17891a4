"""The master embedding cache of one virus x data version x embedder.

Files, in `data/embeddings/{virus}/{data_version}/`:

- `master_{embedder}_embeddings.h5`: dataset `emb` (N x D, fp16 or fp32), dataset
  `emb_keys` (the cache key of each row: sequence hash + ':' + model signature), and
  attrs with the model name, signature, pooling, layer, max length, precision,
  dimension, library versions, creation time and a `content_id`;
- `master_{embedder}_embeddings.parquet`: `brc_fea_id -> row` (+ key and hash), whose
  schema metadata carries the same `content_id`;
- `failed_ids.csv`: proteins that could not be embedded and why, accumulated.

Identical sequences share one row.

Crash safety. Work in progress is staged as chunk files (each written to a temporary
name and renamed), so a killed run keeps what it computed and the next run resumes.
The two cache files are replaced together through a redo record: the new files are
written in full under temporary names, then `.master_{embedder}.commit.json` is
written (atomically) naming them, then both are renamed into place and the record is
removed. Whoever opens the cache first finishes a recorded commit (roll forward) and
deletes temporaries no record names. So a reader always sees either the previous
complete pair or the new complete pair, never a mix: kill -9 at any point is safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from segpair.atomic import atomic_path, write_text_atomic
from segpair.locks import exclusive

FAILED_COLUMNS = ["brc_fea_id", "cache_key", "embedder", "signature", "reason", "last_seen"]


@dataclass(frozen=True)
class CachePaths:
    folder: Path
    embedder: str

    @classmethod
    def for_partition(cls, root: Path, virus: str, data_version: str, embedder: str):
        return cls(Path(root) / "embeddings" / virus / data_version, embedder)

    @property
    def h5(self) -> Path:
        return self.folder / f"master_{self.embedder}_embeddings.h5"

    @property
    def parquet(self) -> Path:
        return self.folder / f"master_{self.embedder}_embeddings.parquet"

    @property
    def failed(self) -> Path:
        return self.folder / "failed_ids.csv"

    @property
    def commit_record(self) -> Path:
        return self.folder / f".master_{self.embedder}.commit.json"

    @property
    def work_dir(self) -> Path:
        return self.folder / f".master_{self.embedder}.work"

    @property
    def lock(self) -> Path:
        """Held while the pair is recovered, committed, or opened (segpair.locks)."""
        return self.folder / f".master_{self.embedder}.lock"

    def exists(self) -> bool:
        recover(self)
        return self.h5.exists() and self.parquet.exists()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def recover(paths: CachePaths) -> str | None:
    """Finish a recorded commit, or clear temporaries of one that never got recorded.
    Under the cache's lock: the temporaries of a commit in progress are not stray."""
    if not paths.folder.exists():
        return None
    what = f"recovering the {paths.embedder} cache in {paths.folder}"
    with exclusive(paths.lock, what, best_effort=True):  # a read-only copy has nothing to do
        return _recover_locked(paths)


def _recover_locked(paths: CachePaths) -> str | None:
    record = paths.commit_record
    if record.exists():
        plan = json.loads(record.read_text())
        for tmp, final in ((plan["h5_tmp"], paths.h5), (plan["parquet_tmp"], paths.parquet)):
            tmp_path = paths.folder / tmp
            if tmp_path.exists():
                os.replace(tmp_path, final)
        _fsync_dir(paths.folder)
        record.unlink()
        return f"finished an interrupted commit ({plan['content_id']})"
    stray = list(paths.folder.glob(f".master_{paths.embedder}_embeddings.*.tmp"))
    for p in stray:
        p.unlink()
    return f"removed {len(stray)} unfinished temporary file(s)" if stray else None


# ------------------------------------------------------------------ reading


class EmbeddingStore:
    """A committed cache, read as one object: O(1) id -> row, bulk gathers, metadata."""

    def __init__(self, paths: CachePaths):
        # under the lock: a commit swapping the pair between the two opens would mix them
        what = f"opening the {paths.embedder} cache in {paths.folder}"
        with exclusive(paths.lock, what, best_effort=True):
            self._open(paths)

    def _open(self, paths: CachePaths) -> None:
        recover(paths)
        if not (paths.h5.exists() and paths.parquet.exists()):
            raise FileNotFoundError(
                f"no {paths.embedder} embedding cache in {paths.folder}: materialize "
                f"master_embeddings_{paths.embedder} for this partition first"
            )
        self.paths = paths
        table = pq.read_table(paths.parquet)
        index_content = (table.schema.metadata or {}).get(b"content_id", b"").decode()
        self._h5 = h5py.File(paths.h5, "r")
        self.attrs = {k: _attr(v) for k, v in self._h5.attrs.items()}
        if index_content != self.attrs.get("content_id"):
            self._h5.close()
            raise ValueError(
                f"{paths.parquet} (content {index_content!r}) does not belong to {paths.h5} "
                f"(content {self.attrs.get('content_id')!r}); re-materialize the embeddings "
                "with force_recompute"
            )
        self.index = table.to_pandas()
        self._row_of = dict(zip(self.index["brc_fea_id"], self.index["row"], strict=True))
        self.emb = self._h5["emb"]

    def __enter__(self) -> EmbeddingStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._h5.close()

    @property
    def dim(self) -> int:
        return int(self.emb.shape[1])

    @property
    def n_rows(self) -> int:
        return int(self.emb.shape[0])

    @property
    def signature(self) -> str:
        return str(self.attrs["signature"])

    def keys(self) -> np.ndarray:
        return self._h5["emb_keys"].asstr()[:]

    def row_of(self, brc_fea_id: str) -> int:
        try:
            return int(self._row_of[brc_fea_id])
        except KeyError:
            raise KeyError(
                f"protein {brc_fea_id!r} has no embedding in {self.paths.h5.name} "
                f"(see {self.paths.failed.name} for proteins that failed)"
            ) from None

    def vector(self, brc_fea_id: str) -> np.ndarray:
        return self.emb[self.row_of(brc_fea_id)].astype(np.float32)

    def rows_of(self, ids: Iterable[str]) -> np.ndarray:
        return np.fromiter((self.row_of(i) for i in ids), dtype=np.int64)

    def gather(self, ids: Iterable[str]) -> np.ndarray:
        """Vectors for many ids at once (float32), in the order given."""
        return self.gather_rows(self.rows_of(ids))

    def gather_rows(self, rows: np.ndarray) -> np.ndarray:
        # HDF5 reads need increasing, unique indices: read each row once, then reorder.
        unique, inverse = np.unique(rows, return_inverse=True)
        block = self.emb[unique] if len(unique) else np.empty((0, self.dim), self.emb.dtype)
        return block.astype(np.float32)[inverse]

    def load_all(self) -> np.ndarray:
        return self.emb[:].astype(np.float32)


def _attr(value):
    return value.decode() if isinstance(value, bytes) else value


def read_rows_for_keys(h5_path: Path, wanted: set[str], signature: str) -> dict[str, np.ndarray]:
    """Vectors stored in an existing cache file for the wanted keys (same signature only)."""
    if not wanted or not h5_path.exists():
        return {}
    with h5py.File(h5_path, "r") as f:
        if _attr(f.attrs.get("signature")) != signature:
            return {}
        keys = f["emb_keys"].asstr()[:]
        hits = np.flatnonzero(np.isin(keys, list(wanted)))
        if not len(hits):
            return {}
        block = f["emb"][hits].astype(np.float32)
    return {keys[i]: block[j] for j, i in enumerate(hits)}


def stored_keys(h5_path: Path, signature: str) -> set[str]:
    """The keys an existing cache file holds (same signature only), without its vectors."""
    if not h5_path.exists():
        return set()
    with h5py.File(h5_path, "r") as f:
        if _attr(f.attrs.get("signature")) != signature:
            return set()
        return set(f["emb_keys"].asstr()[:].tolist())


# ------------------------------------------------------------------ staging


class ChunkStager:
    """Completed chunks of a run, each one file written atomically, so a killed run resumes.
    Several writers (the shards of one partition) may stage into one folder at once: each
    file gets a unique name."""

    def __init__(self, paths: CachePaths, signature: str):
        self.dir = paths.work_dir / signature
        self.dir.mkdir(parents=True, exist_ok=True)

    def chunk_files(self) -> list[Path]:
        return sorted(self.dir.glob("chunk_*.npz"))

    def clear(self) -> None:
        """Forget every staged chunk (a forced recompute starts from nothing)."""
        for f in self.chunk_files():
            f.unlink(missing_ok=True)

    def completed(self) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        """(key -> vector, key -> failure reason) of every staged chunk."""
        vectors: dict[str, np.ndarray] = {}
        failures: dict[str, str] = {}
        for f in self.chunk_files():
            with np.load(f, allow_pickle=False) as z:
                vectors.update(zip(z["keys"].tolist(), z["vectors"], strict=True))
                failures.update(zip(z["failed_keys"].tolist(), z["reasons"].tolist(), strict=True))
        return vectors, failures

    def staged_keys(self) -> set[str]:
        """Keys of every staged chunk, vectors and failures, without reading vectors."""
        out: set[str] = set()
        for f in self.chunk_files():
            with np.load(f, allow_pickle=False) as z:
                out.update(z["keys"].tolist())
                out.update(z["failed_keys"].tolist())
        return out

    def write(self, keys: list[str], vectors: np.ndarray, failures: dict[str, str]) -> Path:
        n = len(self.chunk_files())
        target = self.dir / f"chunk_{n:06d}_{uuid.uuid4().hex[:8]}.npz"
        with atomic_path(target) as tmp, open(tmp, "wb") as fh:
            np.savez(
                fh,
                keys=np.array(keys, dtype=str),
                vectors=vectors.astype(np.float32),
                failed_keys=np.array(list(failures), dtype=str),
                reasons=np.array(list(failures.values()), dtype=str),
            )
        return target


# ------------------------------------------------------------------ committing


def commit_cache(
    paths: CachePaths,
    keys: list[str],
    row_vectors: Iterator[np.ndarray],
    index: pd.DataFrame,
    attrs: dict,
    storage_dtype: str,
    dim: int,
) -> str:
    """Write the new cache pair and swap it in atomically; returns its content id.

    `row_vectors` yields blocks of rows in the order of `keys`; `index` has brc_fea_id,
    row, cache_key and seq_hash.
    """
    content_id = uuid.uuid4().hex
    paths.folder.mkdir(parents=True, exist_ok=True)
    h5_tmp = paths.folder / f".master_{paths.embedder}_embeddings.{content_id}.h5.tmp"
    pq_tmp = paths.folder / f".master_{paths.embedder}_embeddings.{content_id}.parquet.tmp"
    n = len(keys)
    with h5py.File(h5_tmp, "w") as f:
        # An empty cache is valid (every protein failed, e.g. no nucleotide sequences).
        chunks = (min(n, 256), dim) if n else None
        emb = f.create_dataset("emb", shape=(n, dim), dtype=storage_dtype, chunks=chunks)
        start = 0
        for block in row_vectors:
            emb[start : start + len(block)] = block.astype(storage_dtype)
            start += len(block)
        if start != n:
            raise RuntimeError(f"internal: wrote {start} rows for {n} keys")
        f.create_dataset("emb_keys", data=np.array(keys, dtype=object), dtype=h5py.string_dtype())
        for k, v in {**attrs, "content_id": content_id, "n_rows": n}.items():
            f.attrs[k] = v if isinstance(v, int | float | str) else json.dumps(v)
    _fsync_file(h5_tmp)
    table = pa.Table.from_pandas(index, preserve_index=False)
    meta = {
        b"content_id": content_id.encode(),
        b"embedder": paths.embedder.encode(),
        b"signature": str(attrs.get("signature", "")).encode(),
    }
    pq.write_table(table.replace_schema_metadata({**(table.schema.metadata or {}), **meta}), pq_tmp)
    _fsync_file(pq_tmp)
    record = {"content_id": content_id, "h5_tmp": h5_tmp.name, "parquet_tmp": pq_tmp.name}
    write_text_atomic(paths.commit_record, json.dumps(record))
    recover(paths)  # performs the renames the record names
    return content_id


def content_version(index: pd.DataFrame, signature: str) -> str:
    """What a cache holds, as a short hash: the model signature and each protein's cache
    key (a vector is a function of its key), so a re-commit of the same proteins with the
    same model gives the same version, unlike the per-commit `content_id`."""
    pairs = index[["brc_fea_id", "cache_key"]].astype(str).sort_values("brc_fea_id")
    text = signature + "\n" + "\n".join(pairs["brc_fea_id"] + ":" + pairs["cache_key"])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


# The reason of proteins a run limited by max_sequences left for a later one.
NOT_COMPUTED_YET = "not computed yet"


def update_failures(
    paths: CachePaths, new: pd.DataFrame, signature: str = "", embedded=()
) -> pd.DataFrame:
    """Merge this run's failures into failed_ids.csv (one row per protein and signature;
    failures stay listed as history), except that proteins a limited run left as not
    computed yet leave it once they are `embedded` under `signature`."""
    old = (
        pd.read_csv(paths.failed, dtype=str, keep_default_na=False)
        if paths.failed.exists()
        else pd.DataFrame(columns=FAILED_COLUMNS)
    )
    if signature:
        done = (
            (old["signature"] == signature)
            & old["brc_fea_id"].isin(set(embedded))
            & old["reason"].str.startswith(NOT_COMPUTED_YET)
        )
        old = old[~done]
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    new = new.assign(last_seen=stamp)[FAILED_COLUMNS]
    merged = (
        pd.concat([old, new], ignore_index=True)
        .drop_duplicates(["brc_fea_id", "signature"], keep="last")
        .reset_index(drop=True)
    )
    if len(merged) or paths.failed.exists():
        with atomic_path(paths.failed) as tmp:
            merged.to_csv(tmp, index=False)
    return merged
