"""Embeddings: featurizers and protein/DNA language models, and the master cache.

Nothing here imports Dagster; torch and transformers are imported only by the
language-model embedders, so the k-mer path and the cache run without them.
"""
