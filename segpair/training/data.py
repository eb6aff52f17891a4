"""Pairs as row indices into an embedding matrix, held in memory or streamed from HDF5.

A pair set never copies a vector per pair: it keeps `rows_a`, `rows_b` into a source
of vectors and gathers a batch when asked. The source is either the unique rows the
pairs use, gathered once into memory (`InMemoryRows`), or the master cache itself
(`EmbeddingStore`), which reads each batch's rows from HDF5. `plan_gather` chooses by
a memory budget, so training works when the embeddings do not fit in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np


class RowSource(Protocol):
    @property
    def dim(self) -> int: ...

    def gather_rows(self, rows: np.ndarray) -> np.ndarray: ...


class InMemoryRows:
    """A float32 matrix; rows are indices into it."""

    def __init__(self, matrix: np.ndarray):
        self.matrix = np.ascontiguousarray(matrix, dtype=np.float32)

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def gather_rows(self, rows: np.ndarray) -> np.ndarray:
        return self.matrix[rows]


@dataclass
class PairSet:
    source: RowSource
    rows_a: np.ndarray
    rows_b: np.ndarray
    y: np.ndarray  # float32 labels (0/1)
    # Integer isolate codes of each pair's two proteins (the neighbour model's
    # leave-own-isolate-out features need them for training pairs).
    iso_a: np.ndarray | None = None
    iso_b: np.ndarray | None = None

    @classmethod
    def from_arrays(cls, a: np.ndarray, b: np.ndarray, y: np.ndarray) -> PairSet:
        n = len(a)
        matrix = np.concatenate([a, b]) if n else np.empty((0, a.shape[1]), np.float32)
        rows = np.arange(n, dtype=np.int64)
        return cls(InMemoryRows(matrix), rows, rows + n, np.asarray(y, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.y)

    @property
    def dim(self) -> int:
        return self.source.dim

    def batch(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.source.gather_rows(self.rows_a[idx]), self.source.gather_rows(self.rows_b[idx])

    def batches(self, size: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(a, b, y) blocks in order."""
        for s in range(0, len(self), size):
            idx = np.arange(s, min(s + size, len(self)))
            a, b = self.batch(idx)
            yield a, b, self.y[idx]

    def subset(self, idx: np.ndarray) -> PairSet:
        iso = [None if x is None else x[idx] for x in (self.iso_a, self.iso_b)]
        return PairSet(self.source, self.rows_a[idx], self.rows_b[idx], self.y[idx], *iso)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a, b = self.batch(np.arange(len(self)))
        return a, b, self.y


def as_pair_set(data: PairSet | tuple[np.ndarray, np.ndarray, np.ndarray]) -> PairSet:
    return data if isinstance(data, PairSet) else PairSet.from_arrays(*data)


def gathered_bytes(n_rows: int, dim: int) -> int:
    return n_rows * dim * 4


def plan_gather(
    store: RowSource, row_sets: list[tuple[np.ndarray, np.ndarray]], memory_budget_gb: float
) -> tuple[RowSource, list[tuple[np.ndarray, np.ndarray]], bool]:
    """Gather the rows the pairs use into memory if they fit the budget, else stream.

    Returns (source, remapped row pairs, in_memory). In memory, each unique row is read
    from HDF5 once and the pair rows are remapped into the gathered matrix.
    """
    every = np.concatenate([r for pair in row_sets for r in pair]) if row_sets else np.empty(0)
    unique = np.unique(every.astype(np.int64))
    if gathered_bytes(len(unique), store.dim) > memory_budget_gb * 2**30:
        return store, row_sets, False
    source = InMemoryRows(store.gather_rows(unique))
    remapped = [(np.searchsorted(unique, a), np.searchsorted(unique, b)) for a, b in row_sets]
    return source, remapped, True
