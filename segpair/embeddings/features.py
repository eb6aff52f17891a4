"""Feature sets that combine embedding sources (e.g. a nucleotide model's 768 dims with a
protein model's 1280).

A feature set names its sources and the dimension each must have; the merge refuses a
source whose stored dimension differs, naming it, rather than silently shifting columns.

Each source's block may be L2-normalised before the blocks are put side by side
(`block_norm="l2"`): sources differ in scale (a language model's mean-pooled states have
norms in the tens, k-mer counts are unit vectors), and unnormalised, the larger-scale
source would dominate every distance and dot product the classifier and its baselines
compute. Normalised, each source weighs the same whatever its dimension.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from segpair.embeddings.cache import EmbeddingStore

BlockNorm = Literal["l2", "none"]
BLOCK_NORMS: tuple[str, ...] = ("l2", "none")


@dataclass(frozen=True)
class FeatureSource:
    embedder: str
    expected_dim: int | None = None  # None: whatever the cache holds


class FeatureDimensionError(ValueError):
    pass


def check_source_dims(stores: Sequence[EmbeddingStore], sources: Sequence[FeatureSource]) -> None:
    """Each cache is the source's embedder and holds the dimension the feature set expects."""
    if len(stores) != len(sources):
        raise ValueError(f"{len(sources)} feature sources but {len(stores)} caches")
    for store, src in zip(stores, sources, strict=True):
        if store.paths.embedder != src.embedder:
            raise ValueError(f"cache {store.paths.h5} is not for embedder {src.embedder!r}")
        if src.expected_dim is not None and store.dim != src.expected_dim:
            raise FeatureDimensionError(
                f"feature source {src.embedder!r} must have {src.expected_dim} dimensions but "
                f"{store.paths.h5} holds {store.dim} (model {store.attrs.get('model_name')}); "
                "fix expected_dim in the feature set or re-embed with the intended model"
            )


def concatenate_blocks(blocks: Sequence[np.ndarray], block_norm: BlockNorm) -> np.ndarray:
    """The blocks (rows aligned) side by side, float32; with "l2" each block's rows are
    scaled to unit length first (an all-zero row stays zero)."""
    if block_norm not in BLOCK_NORMS:
        raise ValueError(f"block_norm must be one of {BLOCK_NORMS}, not {block_norm!r}")
    out = []
    for block in blocks:
        block = np.asarray(block, dtype=np.float32)
        if block_norm == "l2":
            norms = np.linalg.norm(block, axis=1, keepdims=True)
            block = block / np.where(norms > 0, norms, 1.0)
        out.append(block)
    return np.concatenate(out, axis=1)


def merged_features(
    stores: Sequence[EmbeddingStore],
    sources: Sequence[FeatureSource],
    ids: Sequence[str],
    block_norm: BlockNorm = "none",
) -> np.ndarray:
    """Concatenate each source's vectors for `ids` (float32, columns in source order)."""
    check_source_dims(stores, sources)
    return concatenate_blocks([store.gather(ids) for store in stores], block_norm)


def merged_dim(stores: Sequence[EmbeddingStore]) -> int:
    return sum(s.dim for s in stores)
