"""Splitting one partition's embedding work across workers or GPUs.

A shard is a contiguous range of the sequence-hash space (the first 32 bits of the
sequence's MD5), so the split depends only on the sequences: every worker computes the
same assignment without talking to the others, a rerun resumes each shard where it
stopped, and a shard's share stays the same when a data version adds sequences.

Shards stage their vectors as chunk files next to the cache (`ChunkStager`); the commit
step (`prepare_master_cache(..., mode=CacheMode.COLLECT)`) collects them and swaps the
new cache pair in atomically. Shards never write the cache itself, so a failed or killed
shard leaves the stored cache untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import pandas as pd

from segpair.embeddings.base import Embedder, signature_of
from segpair.embeddings.cache import CachePaths, ChunkStager, recover, stored_keys
from segpair.embeddings.pipeline import (
    CacheMode,
    CacheReport,
    PartitionInputs,
    compute_and_stage,
    run_selection,
)

HASH_BITS = 32


def shard_of_key(key: str, n_shards: int) -> int:
    """The shard owning a cache key ('{md5 hex}:{signature}'): equal hash ranges."""
    return (int(key[:8], 16) * n_shards) >> HASH_BITS


def hash_range(shard: int, n_shards: int) -> str:
    """The shard's range of the hash's first 8 hex digits, for logs and metadata."""
    lo = -(-(shard << HASH_BITS) // n_shards)
    hi = -(-((shard + 1) << HASH_BITS) // n_shards) - 1
    return f"{lo:08x}-{hi:08x}"


@dataclass
class ShardPlan:
    """What one shard has to do; plain types, so it travels between processes."""

    shard: int
    n_shards: int
    hash_range: str
    to_compute: int

    @property
    def label(self) -> str:
        return f"shard {self.shard + 1}/{self.n_shards} ({self.hash_range})"


@dataclass
class ShardReport:
    shard: int
    n_shards: int
    signature: str
    assigned: int
    already_available: int
    computed: int
    failed: int
    truncated: int
    tokens: int
    compute_seconds: float
    device: str
    outside_alphabet: int = 0
    engine: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _inputs_and_known(
    proteins: pd.DataFrame,
    embedder: Embedder,
    paths: CachePaths,
    previous: list[CachePaths],
    reuse_stored: bool,
) -> tuple[str, PartitionInputs, set[str]]:
    """The partition's unique inputs, and the keys already stored or staged: keys only,
    so a shard never loads vectors it does not own."""
    signature = signature_of(embedder.describe())
    inputs = PartitionInputs.of(proteins, embedder.input_kind, signature)
    recover(paths)  # finish (or undo) an interrupted commit before reading the cache
    known = ChunkStager(paths, signature).staged_keys()
    if reuse_stored:
        for cache in [paths, *previous]:
            if cache is not paths:
                recover(cache)
            known |= stored_keys(cache.h5, signature)
    return signature, inputs, known


def plan_shards(
    proteins: pd.DataFrame,
    embedder: Embedder,
    paths: CachePaths,
    previous: list[CachePaths],
    n_shards: int,
    mode: CacheMode = CacheMode.UPDATE,
    max_sequences: int | None = None,
) -> list[ShardPlan]:
    """Every shard with the number of sequences it still has to compute. A forced
    recompute clears what earlier runs staged, so the shards start from nothing.
    `max_sequences` limits the run as `prepare_master_cache` does."""
    if n_shards < 1:
        raise ValueError(f"shards must be >= 1, got {n_shards}")
    if mode.clears_staged:
        ChunkStager(paths, signature_of(embedder.describe())).clear()
    signature, inputs, known = _inputs_and_known(
        proteins, embedder, paths, previous, reuse_stored=mode.reuses_stored
    )
    selection = run_selection(
        inputs.unique, paths, previous, signature, max_sequences, mode.reuses_stored
    )
    counts = [0] * n_shards
    for key in inputs.unique:
        if key not in known and (selection is None or key in selection):
            counts[shard_of_key(key, n_shards)] += 1
    return [ShardPlan(i, n_shards, hash_range(i, n_shards), counts[i]) for i in range(n_shards)]


def embed_shard(
    proteins: pd.DataFrame,
    embedder: Embedder,
    paths: CachePaths,
    previous: list[CachePaths],
    shard: int,
    n_shards: int,
    mode: CacheMode = CacheMode.UPDATE,
    chunk_size: int = 1024,
    progress: Callable[[str], None] = print,
    max_sequences: int | None = None,
) -> ShardReport:
    """Compute and stage the vectors of the shard's hash range that nothing holds yet
    (within the run's `max_sequences` selection, when it has one)."""
    signature, inputs, known = _inputs_and_known(
        proteins, embedder, paths, previous, mode.reuses_stored
    )
    report = CacheReport(embedder.name, signature, dim=embedder.dim)
    selection = run_selection(
        inputs.unique, paths, previous, signature, max_sequences, mode.reuses_stored
    )
    assigned = [k for k in inputs.unique if shard_of_key(k, n_shards) == shard]
    todo = [k for k in assigned if k not in known and (selection is None or k in selection)]
    label = f"{embedder.name} shard {shard + 1}/{n_shards}"
    progress(f"{label}: {len(assigned)} sequences in range, computing {len(todo)}")
    _found, failures = compute_and_stage(
        todo,
        inputs.sequence_of_key,
        embedder,
        ChunkStager(paths, signature),
        report,
        chunk_size,
        progress,
        label=label,
    )
    return ShardReport(
        shard=shard,
        n_shards=n_shards,
        signature=signature,
        assigned=len(assigned),
        already_available=len(assigned) - len(todo),
        computed=report.computed,
        failed=len(failures),
        truncated=report.truncated,
        tokens=report.tokens,
        compute_seconds=round(report.compute_seconds, 3),
        device=str(getattr(embedder, "device", "cpu")),
        outside_alphabet=report.outside_alphabet,
        engine=report.engine,
    )


def _as_dicts(reports: list[ShardReport | dict]) -> list[dict]:
    return [r if isinstance(r, dict) else r.as_dict() for r in reports]


def check_shard_signatures(reports: list[ShardReport | dict], signature: str) -> None:
    """Every shard must have embedded with the commit step's model signature (same
    weights, pooling, precision); a worker on other hardware or settings would stage
    vectors the cache cannot mix with the rest."""
    for r in _as_dicts(reports):
        if r["signature"] != signature:
            raise ValueError(
                f"shard {r['shard'] + 1}/{r['n_shards']} embedded with model signature "
                f"{r['signature']} on {r['device']}, but the commit step has {signature}. "
                "Every worker serving the embedding steps must run the same model at the "
                "same precision: set compute_device.precision (e.g. bf16) explicitly"
            )


def credit_shards(report: CacheReport, reports: list[ShardReport | dict]) -> None:
    """The commit step computes nothing and finds the shards' vectors staged, which its
    report counts as resumed work. Count what the shards computed in this run as computed
    (tokens, truncations too), and their time as the slowest shard's: they run side by side."""
    reports = _as_dicts(reports)
    report.computed = sum(r["computed"] for r in reports)
    report.resumed_from_chunks -= report.computed + sum(r["failed"] for r in reports)
    report.truncated = sum(r["truncated"] for r in reports)
    report.outside_alphabet = sum(r.get("outside_alphabet", 0) for r in reports)
    report.engine = next((r["engine"] for r in reports if r.get("engine")), report.engine)
    report.tokens = sum(r["tokens"] for r in reports)
    report.compute_seconds = max((r["compute_seconds"] for r in reports), default=0.0)
