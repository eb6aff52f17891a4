"""Feature sets that combine embedding sources (e.g. a nucleotide model's 768 dims with a
protein model's 1280).

A feature set names its sources and the dimension each must have; the merge refuses a
source whose stored dimension differs, naming it, rather than silently shifting columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from segpair.embeddings.cache import EmbeddingStore


@dataclass(frozen=True)
class FeatureSource:
    embedder: str
    expected_dim: int | None = None  # None: whatever the cache holds


class FeatureDimensionError(ValueError):
    pass


def merged_features(
    stores: Sequence[EmbeddingStore], sources: Sequence[FeatureSource], ids: Sequence[str]
) -> np.ndarray:
    """Concatenate each source's vectors for `ids` (float32, columns in source order)."""
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
    blocks = [store.gather(ids) for store in stores]
    return np.concatenate(blocks, axis=1)


def merged_dim(stores: Sequence[EmbeddingStore]) -> int:
    return sum(s.dim for s in stores)
