"""Building a partition's master cache: reuse what is stored, compute the rest in staged
chunks, validate, commit.

Order of reuse for each unique sequence key (sequence hash + embedder signature):
the partition's own cache, then caches of earlier data versions of the same virus
made with the same signature, then chunks staged by an interrupted run; only what
none of them holds is computed. `CacheMode` says which of these sources a call may use
and whether it may compute.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd

from segpair.embeddings.base import INPUT_SEPARATOR, Embedder, input_kinds, signature_of
from segpair.embeddings.cache import (
    NOT_COMPUTED_YET,
    CachePaths,
    ChunkStager,
    EmbeddingStore,
    commit_cache,
    read_rows_for_keys,
    recover,
    stored_keys,
    update_failures,
)
from segpair.locks import exclusive

ProgressFn = Callable[[str], None]


class CacheMode(StrEnum):
    """How a cache is brought up to date."""

    UPDATE = "update"  # reuse stored and staged vectors, compute the rest (the default)
    RECOMPUTE = "recompute"  # drop staged chunks, ignore stored vectors, compute everything
    # The commit step of a sharded run computes nothing: it collects what the shards
    # staged, on top of the stored vectors (COLLECT) or, after a forced run, alone.
    COLLECT = "collect"
    COLLECT_RECOMPUTED = "collect_recomputed"

    @classmethod
    def of(cls, force_recompute: bool) -> CacheMode:
        return cls.RECOMPUTE if force_recompute else cls.UPDATE

    @property
    def reuses_stored(self) -> bool:
        return self in (CacheMode.UPDATE, CacheMode.COLLECT)

    @property
    def clears_staged(self) -> bool:
        return self is CacheMode.RECOMPUTE

    @property
    def computes(self) -> bool:
        return self in (CacheMode.UPDATE, CacheMode.RECOMPUTE)

    def collecting(self) -> CacheMode:
        """The commit step's mode for a sharded run started in this mode."""
        return CacheMode.COLLECT if self.reuses_stored else CacheMode.COLLECT_RECOMPUTED


@dataclass
class CacheReport:
    embedder: str
    signature: str
    dim: int = 0
    n_proteins: int = 0
    n_unique_keys: int = 0
    n_rows: int = 0
    reused_in_place: int = 0
    reused_previous: dict[str, int] = field(default_factory=dict)
    resumed_from_chunks: int = 0
    computed: int = 0
    failed_proteins: int = 0
    failed_keys: int = 0
    truncated: int = 0
    outside_alphabet: int = 0  # refused: letters the model cannot read (nucleotide models)
    deferred: int = 0  # left for a later run by max_sequences
    compute_seconds: float = 0.0
    tokens: int = 0
    engine: str = ""  # how a language model ran (packed or padded, kernel)
    recovery: str | None = None
    content_id: str = ""
    failure_examples: list[str] = field(default_factory=list)

    @property
    def sequences_per_s(self) -> float:
        return self.computed / self.compute_seconds if self.compute_seconds else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.compute_seconds if self.compute_seconds else 0.0


def library_versions() -> dict[str, str]:
    out = {}
    for lib in ("torch", "transformers", "numpy", "h5py", "segpair"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[lib] = importlib.metadata.version(lib)
    return out


def input_sequences(proteins: pd.DataFrame, input_kind: str) -> pd.Series:
    """Each protein's model input; for a joined kind ("nucleotide+protein") the sequences
    joined by INPUT_SEPARATOR, or "" when the protein has none of them."""
    columns = [
        proteins["esm2_ready_seq" if kind == "protein" else "nt_seq"].astype("string")
        .fillna("").astype(str)
        for kind in input_kinds(input_kind)
    ]  # fmt: skip
    if len(columns) == 1:
        return columns[0]
    joined = columns[0].str.cat(columns[1:], sep=INPUT_SEPARATOR)
    return joined.where(pd.concat(columns, axis=1).ne("").any(axis=1), "")


def cache_keys(sequences: pd.Series, signature: str) -> pd.Series:
    hashes = sequences.map(lambda s: hashlib.md5(s.encode()).hexdigest() if s else "")
    return hashes.map(lambda h: f"{h}:{signature}" if h else "")


@dataclass
class PreparedCache:
    """A cache ready to commit: every vector computed or found, validated, not yet written."""

    paths: CachePaths
    report: CacheReport
    row_keys: list[str]
    vectors: dict[str, np.ndarray]
    index: pd.DataFrame
    failed_rows: pd.DataFrame
    attrs: dict
    storage_dtype: str

    def commit(self, holder: str = "", log: ProgressFn | None = None) -> CacheReport:
        """Swap the new cache pair in atomically, record failures, clear staged chunks: under
        the cache's lock, so a second run of the partition waits and commits after this one
        (`holder`, e.g. the Dagster run, is named to whoever waits; `log` says it waits)."""
        what = f"committing the {self.paths.embedder} cache in {self.paths.folder}"
        with exclusive(self.paths.lock, what, holder=holder, log=log):
            return self._commit()

    def _commit(self) -> CacheReport:
        def blocks(size: int = 4096) -> Iterator[np.ndarray]:
            for s in range(0, len(self.row_keys), size):
                yield np.stack([self.vectors[k] for k in self.row_keys[s : s + size]])

        self.report.content_id = commit_cache(
            self.paths,
            self.row_keys,
            blocks(),
            self.index,
            self.attrs,
            self.storage_dtype,
            self.report.dim,
        )
        self.report.n_rows = len(self.row_keys)
        update_failures(
            self.paths, self.failed_rows, self.report.signature, self.index["brc_fea_id"]
        )
        shutil.rmtree(self.paths.work_dir, ignore_errors=True)
        return self.report


def build_master_cache(*args, **kwargs) -> CacheReport:
    """Prepare and commit in one call (see `prepare_master_cache`)."""
    return prepare_master_cache(*args, **kwargs).commit()


@dataclass
class PartitionInputs:
    """The unique model inputs of a protein table under one embedder signature."""

    keys: pd.Series  # cache key per protein ("" where the protein has no input)
    no_input: pd.Series
    unique: list[str]
    sequence_of_key: dict[str, str]

    @classmethod
    def of(cls, proteins: pd.DataFrame, input_kind: str, signature: str) -> PartitionInputs:
        seqs = input_sequences(proteins, input_kind)
        keys = cache_keys(seqs, signature)
        no_input = keys == ""
        unique = pd.unique(keys[~no_input]).tolist()
        return cls(keys, no_input, unique, dict(zip(keys[~no_input], seqs[~no_input], strict=True)))


def find_known_vectors(
    paths: CachePaths,
    previous: list[CachePaths],
    wanted: set[str],
    signature: str,
    report: CacheReport,
    reuse_stored: bool = True,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Vectors (and staged failures) already available for `wanted` keys: the partition's
    own cache, earlier data versions, then chunks staged by this or an interrupted run.
    `reuse_stored=False` skips the stored caches (a forced recompute) but keeps staged
    chunks, which a forced run wrote itself."""
    found: dict[str, np.ndarray] = {}
    if reuse_stored:
        found.update(read_rows_for_keys(paths.h5, wanted, signature))
        report.reused_in_place = len(found)
        for prev in previous:
            recover(prev)
            got = read_rows_for_keys(prev.h5, wanted - found.keys(), signature)
            if got:
                report.reused_previous[prev.folder.name] = len(got)
                found.update(got)
    # under the lock: a commit of another run clears the staged chunks when it is done
    with exclusive(paths.lock, f"reading the chunks staged in {paths.work_dir}"):
        staged, staged_failed = ChunkStager(paths, signature).completed()
    resumed = {k: v for k, v in staged.items() if k in wanted and k not in found}
    failures = {k: r for k, r in staged_failed.items() if k in wanted and k not in found}
    report.resumed_from_chunks = len(resumed) + len(failures)
    found.update(resumed)
    return found, failures


def compute_and_stage(
    todo: list[str],
    sequence_of_key: dict[str, str],
    embedder: Embedder,
    stager: ChunkStager,
    report: CacheReport,
    chunk_size: int,
    progress: ProgressFn,
    label: str = "",
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Embed `todo` in chunks, each staged to disk as soon as it is done (the unit of
    resume); counts go into `report`."""
    found: dict[str, np.ndarray] = {}
    failures: dict[str, str] = {}
    label = label or embedder.name
    runtime = getattr(embedder, "runtime", None)
    if todo and runtime is not None:
        report.engine = runtime()["engine"]
    t0 = time.perf_counter()
    # Staging a chunk (compress + fsync + rename) runs on a writer thread while the next
    # chunk computes; at most one write is pending, and its error surfaces here.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stage-writer") as writer:
        pending: Future | None = None
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start : start + chunk_size]
            out = embedder.embed([sequence_of_key[k] for k in chunk])
            chunk_failed = {chunk[i]: reason for i, reason in out.failed.items()}
            ok_keys = [chunk[i] for i in out.ok]
            if pending is not None:
                pending.result()
            pending = writer.submit(stager.write, ok_keys, out.vectors, chunk_failed)
            found.update(zip(ok_keys, out.vectors, strict=True))
            failures.update(chunk_failed)
            report.computed += len(ok_keys)
            report.truncated += out.truncated
            report.outside_alphabet += out.outside_alphabet
            report.tokens += out.tokens
            done = start + len(chunk)
            elapsed = time.perf_counter() - t0
            progress(
                f"{label}: {done}/{len(todo)} sequences "
                f"({done / elapsed:.1f} seq/s, {report.tokens / elapsed:.0f} tokens/s)"
            )
        if pending is not None:
            pending.result()
    report.compute_seconds += time.perf_counter() - t0
    return found, failures


class MissingVectorsError(RuntimeError):
    """Sequences neither stored nor staged when the commit was told not to compute."""


def run_selection(
    unique: list[str],
    paths: CachePaths,
    previous: list[CachePaths],
    signature: str,
    max_sequences: int | None,
    reuse_stored: bool = True,
) -> set[str] | None:
    """The keys a run limited to `max_sequences` may compute (None: no limit): the first
    ones, in the partition's order, that no stored cache holds. Staged chunks do not
    change it, so a sharded run's plan, shards and commit step agree on it."""
    if max_sequences is None:
        return None
    stored: set[str] = set()
    if reuse_stored:
        for cache in [paths, *previous]:
            stored |= stored_keys(cache.h5, signature)
    return set([k for k in unique if k not in stored][:max_sequences])


def deferred_reason(max_sequences: int) -> str:
    return (
        f"{NOT_COMPUTED_YET}: the run was limited to max_sequences={max_sequences}; run "
        "again without max_sequences (or with a larger one) to embed it"
    )


def prepare_master_cache(
    proteins: pd.DataFrame,
    embedder: Embedder,
    paths: CachePaths,
    previous: list[CachePaths] = (),
    mode: CacheMode = CacheMode.UPDATE,
    chunk_size: int = 1024,
    storage_precision: str = "fp16",
    progress: ProgressFn = print,
    max_sequences: int | None = None,
) -> PreparedCache:
    """Everything needed to bring the cache at `paths` up to date with `proteins` (a
    protein_final table): vectors reused or computed (and staged), validated. In a
    collecting `mode` nothing is computed and a sequence nobody staged is an error.
    `max_sequences` computes at most that many new sequences (a trial run, or a large
    partition in instalments): the others are listed in failed_ids.csv as not computed
    yet, and the next run computes them, reusing everything stored."""
    description = embedder.describe()
    signature = signature_of(description)
    report = CacheReport(embedder.name, signature, dim=embedder.dim)
    report.recovery = recover(paths)
    if report.recovery:
        progress(f"cache: {report.recovery}")
    inputs = PartitionInputs.of(proteins, embedder.input_kind, signature)
    keys, no_input, unique = inputs.keys, inputs.no_input, inputs.unique
    report.n_proteins = len(proteins)
    report.n_unique_keys = len(unique)

    stager = ChunkStager(paths, signature)
    if mode.clears_staged:
        stager.clear()
    found, failures = find_known_vectors(
        paths, list(previous), set(unique), signature, report, mode.reuses_stored
    )
    todo = [k for k in unique if k not in found and k not in failures]
    selection = run_selection(
        unique, paths, list(previous), signature, max_sequences, mode.reuses_stored
    )
    if selection is not None:
        deferred = {k: deferred_reason(max_sequences) for k in todo if k not in selection}
        todo = [k for k in todo if k in selection]
        failures.update(deferred)
        report.deferred = len(deferred)
    progress(
        f"{embedder.name}: {report.n_unique_keys} unique sequences for {report.n_proteins} "
        f"proteins; reused {report.reused_in_place} in place, "
        f"{sum(report.reused_previous.values())} from earlier data versions, "
        f"{report.resumed_from_chunks} staged by shards or an interrupted run; "
        f"computing {len(todo)}"
        + (f", {report.deferred} left for a later run (max_sequences)" if report.deferred else "")
    )
    if todo and not mode.computes:
        raise MissingVectorsError(
            f"{len(todo)} of {len(unique)} sequences of {paths.folder} were staged by no "
            f"shard (e.g. key {todo[0]}). The shards must run with the same model and "
            f"precision as this step (signature {signature}); rerun the asset to compute them"
        )
    computed, computed_failed = compute_and_stage(
        todo, inputs.sequence_of_key, embedder, stager, report, chunk_size, progress
    )
    found.update(computed)
    failures.update(computed_failed)

    row_keys = [k for k in unique if k in found]
    row_of_key = {k: i for i, k in enumerate(row_keys)}
    mapped = keys.map(row_of_key)
    index = pd.DataFrame(
        {
            "brc_fea_id": proteins["brc_fea_id"].astype(str).to_numpy(),
            "row": mapped,
            "cache_key": keys.to_numpy(),
            "seq_hash": keys.str.split(":").str[0].to_numpy(),
        }
    )
    failed_mask = index["row"].isna()
    reasons = keys.map(failures).where(~no_input, f"no {embedder.input_kind} sequence")
    failed_rows = pd.DataFrame(
        {
            "brc_fea_id": index.loc[failed_mask, "brc_fea_id"],
            "cache_key": index.loc[failed_mask, "cache_key"],
            "embedder": embedder.name,
            "signature": signature,
            "reason": reasons[failed_mask].fillna("unknown").to_numpy(),
        }
    )
    index = index[~failed_mask].astype({"row": "int64"}).reset_index(drop=True)
    report.failed_proteins = int(failed_mask.sum())
    report.failed_keys = len(failures)
    report.failure_examples = [
        f"{r.brc_fea_id}: {r.reason}" for r in failed_rows.head(5).itertuples(index=False)
    ]

    validate_before_commit(row_keys, found, embedder.dim, index, failed_rows, proteins)
    attrs = {
        "embedder": embedder.name,
        "signature": signature,
        **{k: v for k, v in description.items() if v is not None},
        "dim": embedder.dim,  # always recorded, whatever the description holds
        "storage_precision": storage_precision,
        "library_versions": library_versions(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    dtype = {"fp16": "float16", "fp32": "float32"}[storage_precision]
    return PreparedCache(paths, report, row_keys, found, index, failed_rows, attrs, dtype)


def validate_before_commit(
    row_keys: list[str],
    vectors: dict[str, np.ndarray],
    dim: int,
    index: pd.DataFrame,
    failed: pd.DataFrame,
    proteins: pd.DataFrame,
) -> None:
    """Exact dimension, finite values, one row per unique key, every protein accounted for."""
    bad_dim = [k for k in row_keys if vectors[k].shape != (dim,)]
    if bad_dim:
        raise ValueError(
            f"{len(bad_dim)} vectors are not of dimension {dim} (e.g. {bad_dim[0]}: "
            f"{vectors[bad_dim[0]].shape}); the embedder is inconsistent"
        )
    not_finite = [k for k in row_keys if not np.isfinite(vectors[k]).all()]
    if not_finite:
        raise ValueError(
            f"{len(not_finite)} vectors hold NaN or Inf (e.g. key {not_finite[0]}); "
            "try precision fp32, or check the model"
        )
    if len(set(row_keys)) != len(row_keys) or index["row"].nunique() != len(row_keys):
        raise ValueError("internal: rows and unique sequence keys do not match one to one")
    accounted = set(index["brc_fea_id"]) | set(failed["brc_fea_id"])
    missing = set(proteins["brc_fea_id"].astype(str)) - accounted
    if missing:
        raise ValueError(
            f"{len(missing)} proteins neither mapped nor failed, e.g. {sorted(missing)[:3]}"
        )


def previous_caches(root: Path, virus: str, data_version: str, embedder: str) -> list[CachePaths]:
    """Caches of the same embedder in the virus's other data versions, newest first."""
    base = Path(root) / "embeddings" / virus
    if not base.is_dir():
        return []
    found = [
        CachePaths(d, embedder) for d in base.iterdir() if d.is_dir() and d.name != data_version
    ]
    found = [p for p in found if p.h5.exists() or p.commit_record.exists()]
    return sorted(found, key=lambda p: p.h5.stat().st_mtime if p.h5.exists() else 0, reverse=True)


def open_store(root: Path, virus: str, data_version: str, embedder: str) -> EmbeddingStore:
    return EmbeddingStore(CachePaths.for_partition(root, virus, data_version, embedder))
