"""Merged embedders: the vectors of several embedders of one protein side by side (seed
004's 768 DNA + 1280 protein dimensions, or 6-mers + 3-mers), each block normalised as
`segpair.embeddings.features` explains.

Input/output contract:

- `prepare_merged_cache(proteins, stores, sources, paths, ...)`: a partition's merged
  master cache, built from its sources' committed caches (`EmbeddingStore`s): nothing is
  embedded again. Same file layout as every master cache (`master_{name}_embeddings.h5`
  + `.parquet`, committed through `commit_cache`), so every downstream reader works
  unchanged. A protein gets a row when every source holds a vector for it; proteins with
  identical source keys share a row (key: hash of the source keys + ':' + signature).
  Otherwise it goes to failed_ids.csv with the source that lacks it and that source's
  reason.
- `MergedEmbedder`: the same vectors for proteins outside any cache (`segpair score`),
  from the source featurizers rebuilt from a checkpoint's description; each rebuilt
  source must have the recorded signature.

The description (cache attrs, checkpoints) is family "merged", `block_norm`, `dim` and,
per source, its name, signature, dimension and description; the merged signature hashes
it, so it changes when any source's model, settings or dimension does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from segpair.embeddings.base import (
    INPUT_SEPARATOR,
    KIND_JOIN,
    Embedder,
    EmbedOutput,
    input_kinds,
    signature_of,
)
from segpair.embeddings.cache import CachePaths, EmbeddingStore, recover
from segpair.embeddings.factory import description_from_attrs
from segpair.embeddings.features import (
    BlockNorm,
    FeatureSource,
    check_source_dims,
    concatenate_blocks,
    merged_features,
)
from segpair.embeddings.pipeline import (
    CacheMode,
    CacheReport,
    PreparedCache,
    ProgressFn,
    find_known_vectors,
    library_versions,
    validate_before_commit,
)

MERGED_FAMILY = "merged"


class MergedSourceMismatch(ValueError):
    """A rebuilt source embedder does not make the vectors the merged model was trained on."""


def _plain(value):
    """JSON-able Python values (HDF5 attrs come back as numpy scalars)."""
    return value.item() if isinstance(value, np.generic) else str(value)


@dataclass(frozen=True)
class SourceRecord:
    """What a merged description records of one source."""

    embedder: str
    signature: str
    dim: int
    description: dict

    @classmethod
    def of_store(cls, store: EmbeddingStore) -> SourceRecord:
        plain = json.loads(json.dumps(description_from_attrs(store.attrs), default=_plain))
        return cls(store.paths.embedder, store.signature, store.dim, plain)


def merged_description(records: Sequence[SourceRecord], block_norm: BlockNorm) -> dict:
    return {
        "family": MERGED_FAMILY,
        "model_name": " + ".join(r.embedder for r in records),
        "block_norm": block_norm,
        "dim": sum(r.dim for r in records),
        "sources": [asdict(r) for r in records],
    }


def source_records(description: dict) -> list[SourceRecord]:
    """The sources of a merged description (cache attrs hold them as a JSON string)."""
    sources = description["sources"]
    if isinstance(sources, str):
        sources = json.loads(sources)
    return [SourceRecord(**s) for s in sources]


def merged_input_kind(kinds: Sequence[str]) -> str:
    """One kind when every source reads the same sequence, else the kinds joined in a
    fixed order ("nucleotide+protein")."""
    return KIND_JOIN.join(sorted(set(kinds)))


# ------------------------------------------------------------------ new proteins


class MergedEmbedder:
    """The merged vectors computed by the sources' own featurizers (each given the
    sequence of its kind); a protein any source fails is failed, with that source named."""

    def __init__(
        self, name: str, sources: Sequence[tuple[SourceRecord, Embedder]], block_norm: BlockNorm
    ):
        for record, embedder in sources:
            made = signature_of(embedder.describe())
            if made != record.signature or embedder.dim != record.dim:
                raise MergedSourceMismatch(
                    f"source {record.embedder!r} of the merged embedder {name!r} was rebuilt "
                    f"with signature {made} ({embedder.dim} dims), but the model was trained "
                    f"on signature {record.signature} ({record.dim} dims): its vectors would "
                    "differ. Install the library versions and weights the cache was made "
                    "with, or re-materialize the merged cache and its classifier"
                )
        self.name = name
        self.block_norm = block_norm
        self.records = [record for record, _ in sources]
        self.sources = [embedder for _, embedder in sources]
        self.input_kind = merged_input_kind([e.input_kind for e in self.sources])

    @property
    def dim(self) -> int:
        return sum(r.dim for r in self.records)

    def describe(self) -> dict:
        return merged_description(self.records, self.block_norm)

    def _inputs_by_kind(self, sequences: list[str]) -> dict[str, list[str]]:
        kinds = input_kinds(self.input_kind)
        if len(kinds) == 1:
            return {kinds[0]: sequences}
        parts = [s.split(INPUT_SEPARATOR) if s else [""] * len(kinds) for s in sequences]
        bad = [i for i, p in enumerate(parts) if len(p) != len(kinds)]
        if bad:
            raise ValueError(
                f"{self.name} takes {self.input_kind} inputs (pipeline.input_sequences), "
                f"but input {bad[0]} has {len(parts[bad[0]])} part(s)"
            )
        return {kind: [p[i] for p in parts] for i, kind in enumerate(kinds)}

    def embed(self, sequences: list[str]) -> EmbedOutput:
        by_kind = self._inputs_by_kind(sequences)
        outputs = [src.embed(by_kind[src.input_kind]) for src in self.sources]
        failed: dict[int, str] = {}
        for record, out in zip(self.records, outputs, strict=True):
            for pos, why in out.failed.items():
                failed.setdefault(pos, f"{record.embedder}: {why}")
        ok = [i for i in range(len(sequences)) if i not in failed]
        blocks = []
        for out in outputs:
            row_of = {pos: row for row, pos in enumerate(out.ok)}
            blocks.append(out.vectors[[row_of[i] for i in ok]])
        return EmbedOutput(
            concatenate_blocks(blocks, self.block_norm) if ok else np.zeros((0, self.dim)),
            ok,
            failed,
            truncated=sum(o.truncated for o in outputs),
            tokens=sum(o.tokens for o in outputs),
        )


def merged_embedder_from_description(
    name: str, description: dict, rebuild: Callable[[str, dict], Embedder]
) -> MergedEmbedder:
    """The merged embedder a description names, each source rebuilt by `rebuild(name,
    source description)`."""
    records = source_records(description)
    return MergedEmbedder(
        name, [(r, rebuild(r.embedder, r.description)) for r in records],
        description["block_norm"],
    )  # fmt: skip


# ------------------------------------------------------------------ the cache


def _source_failures(paths: CachePaths, stores: Sequence[EmbeddingStore]) -> dict:
    """(source name, brc_fea_id) -> why the source has no vector, from failed_ids.csv."""
    if not paths.failed.exists():
        return {}
    failed = pd.read_csv(paths.failed, dtype=str, keep_default_na=False)
    out = {}
    for store in stores:
        rows = failed[failed["signature"] == store.signature]
        out.update(
            {
                (store.paths.embedder, i): r
                for i, r in zip(rows["brc_fea_id"], rows["reason"], strict=True)
            }
        )
    return out


def _merged_keys(ids: pd.Series, stores: Sequence[EmbeddingStore], signature: str, reasons):
    """Per protein: its merged key ("" when a source lacks it) and why it is missing."""
    per_source = [
        ids.map(dict(zip(s.index["brc_fea_id"], s.index["cache_key"], strict=True))) for s in stores
    ]
    missing = pd.Series("", index=ids.index)
    for store, keys in zip(reversed(stores), reversed(per_source), strict=True):
        name, absent = store.paths.embedder, f"not in its cache ({store.paths.h5.name})"
        why = [f"no {name} vector: {reasons.get((name, i), absent)}" for i in ids[keys.isna()]]
        missing[keys.isna()] = why  # the first source that lacks it wins
    joined = pd.concat(per_source, axis=1).fillna("").astype(str).agg("|".join, axis=1)
    keys = joined.map(lambda j: hashlib.md5(j.encode()).hexdigest() + ":" + signature)
    return keys.where(missing == "", ""), missing


def prepare_merged_cache(
    proteins: pd.DataFrame,
    stores: Sequence[EmbeddingStore],
    sources: Sequence[FeatureSource],
    paths: CachePaths,
    block_norm: BlockNorm = "l2",
    previous: Sequence[CachePaths] = (),
    mode: CacheMode = CacheMode.UPDATE,
    chunk_size: int = 1024,
    storage_precision: str = "fp16",
    progress: ProgressFn = print,
) -> PreparedCache:
    """The merged cache at `paths` for `proteins` (a protein_final table), ready to commit:
    rows stored here (or in earlier data versions) with the same signature are reused, the
    rest gathered from the source caches `stores` (in the order of `sources`, each checked
    against its expected dimension)."""
    check_source_dims(stores, sources)
    description = merged_description([SourceRecord.of_store(s) for s in stores], block_norm)
    signature, dim = signature_of(description), int(description["dim"])
    report = CacheReport(paths.embedder, signature, dim=dim)
    report.recovery = recover(paths)
    ids = proteins["brc_fea_id"].astype(str).reset_index(drop=True)
    keys, missing = _merged_keys(ids, stores, signature, _source_failures(paths, stores))
    unique = pd.unique(keys[keys != ""]).tolist()
    report.n_proteins, report.n_unique_keys = len(ids), len(unique)
    found, _ = find_known_vectors(paths, list(previous), set(unique), signature, report,
                                  mode.reuses_stored)  # fmt: skip
    first_id = dict(zip(keys[::-1], ids[::-1], strict=True))
    todo = [k for k in unique if k not in found]
    progress(f"{paths.embedder}: {len(unique)} unique source-key combinations for {len(ids)} "
             f"proteins; reused {len(found)}, gathering {len(todo)} from "
             f"{', '.join(s.embedder for s in sources)}")  # fmt: skip
    for start in range(0, len(todo), chunk_size):
        chunk = todo[start : start + chunk_size]
        block = merged_features(stores, sources, [first_id[k] for k in chunk], block_norm)
        found.update(zip(chunk, block, strict=True))
    report.computed = len(todo)
    return _prepared(proteins, paths, report, unique, found, keys, missing, description,
                     storage_precision)  # fmt: skip


def _prepared(proteins, paths, report, row_keys, vectors, keys, missing, description,
              storage_precision) -> PreparedCache:  # fmt: skip
    row_of_key = {k: i for i, k in enumerate(row_keys)}
    ids = proteins["brc_fea_id"].astype(str).to_numpy()
    mapped = (keys != "").to_numpy()
    row_keys_of = keys.to_numpy()[mapped]
    index = pd.DataFrame({
        "brc_fea_id": ids[mapped], "row": [row_of_key[k] for k in row_keys_of],
        "cache_key": row_keys_of, "seq_hash": [k.split(":")[0] for k in row_keys_of],
    }).astype({"row": "int64"})  # fmt: skip
    failed_rows = pd.DataFrame({
        "brc_fea_id": ids[~mapped], "cache_key": "", "embedder": paths.embedder,
        "signature": report.signature, "reason": missing.to_numpy()[~mapped],
    })  # fmt: skip
    report.failed_proteins = len(failed_rows)
    report.failure_examples = [f"{r.brc_fea_id}: {r.reason}"
                               for r in failed_rows.head(5).itertuples(index=False)]  # fmt: skip
    validate_before_commit(row_keys, vectors, report.dim, index, failed_rows, proteins)
    attrs = {
        "embedder": paths.embedder, "signature": report.signature, **description,
        "sources": json.dumps(description["sources"]),  # as HDF5 attrs keep it
        "storage_precision": storage_precision, "library_versions": library_versions(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }  # fmt: skip
    dtype = {"fp16": "float16", "fp32": "float32"}[storage_precision]
    return PreparedCache(paths, report, list(row_keys), vectors, index, failed_rows, attrs, dtype)
