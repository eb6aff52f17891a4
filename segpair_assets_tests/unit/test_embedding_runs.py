"""Trial runs of the embedding engine (the seeds' `max_sequences` and `--validate-only`):
a run limited to N new sequences commits them and lists the rest as not computed yet,
the next run completes the cache; sharded runs agree on the same N; a validate-only run
checks a sample and writes nothing. Plus launchpad defaults equal to the embedder's."""

from __future__ import annotations

import inspect

import pandas as pd
import pytest

from segpair.embeddings.cache import CachePaths, EmbeddingStore
from segpair.embeddings.kmer import KmerEmbedder
from segpair.embeddings.language_models import LanguageModelEmbedder
from segpair.embeddings.pipeline import CacheMode, build_master_cache, prepare_master_cache
from segpair.embeddings.sharding import embed_shard, plan_shards
from segpair.embeddings.validation import check_cache, validate_engine, validation_sample
from segpair.simulator import SimulationConfig, simulate_population
from segpair_assets_tests.tiny_models import build_tiny_esm2, build_tiny_nucleotide_transformer


@pytest.fixture(scope="module")
def proteins(flu):
    return simulate_population(flu, SimulationConfig(n_isolates=12, seed=5)).protein_final(flu)


def _quiet(_msg: str) -> None:
    pass


def _failed(paths: CachePaths) -> pd.DataFrame:
    return pd.read_csv(paths.failed, dtype=str, keep_default_na=False)


def test_max_sequences_commits_a_part_and_the_next_run_completes_it(proteins, tmp_path):
    embedder = KmerEmbedder("kmer_aa3", "protein", 3)
    paths = CachePaths.for_partition(tmp_path, "flu_a", "v1", "kmer_aa3")
    first = build_master_cache(proteins, embedder, paths, progress=_quiet, max_sequences=10)
    unique = first.n_unique_keys
    assert first.computed == 10 and first.deferred == unique - 10 > 0
    with EmbeddingStore(paths) as store:
        assert store.n_rows == 10
        assert all(o.passed for o in check_cache(store, proteins).values())  # all accounted
    waiting = _failed(paths)
    assert waiting["reason"].str.contains("max_sequences=10; run again without").all()
    assert len(waiting) == len(proteins) - len(EmbeddingStore(paths).index)

    second = build_master_cache(proteins, embedder, paths, progress=_quiet)
    assert second.reused_in_place == 10 and second.computed == unique - 10
    assert second.deferred == 0 and second.failed_proteins == 0
    # the proteins embedded now leave failed_ids.csv
    assert _failed(paths).empty


def test_sharded_runs_agree_on_the_same_max_sequences(proteins, tmp_path):
    embedder = KmerEmbedder("kmer_aa3", "protein", 3)
    single = CachePaths.for_partition(tmp_path / "single", "flu_a", "v1", "kmer_aa3")
    build_master_cache(proteins, embedder, single, progress=_quiet, max_sequences=7)
    paths = CachePaths.for_partition(tmp_path / "sharded", "flu_a", "v1", "kmer_aa3")
    plans = plan_shards(proteins, embedder, paths, [], 3, max_sequences=7)
    assert sum(p.to_compute for p in plans) == 7
    reports = [
        embed_shard(proteins, embedder, paths, [], p.shard, 3, progress=_quiet, max_sequences=7)
        for p in plans
    ]
    assert [r.computed for r in reports] == [p.to_compute for p in plans]
    report = prepare_master_cache(
        proteins, embedder, paths, mode=CacheMode.COLLECT, progress=_quiet, max_sequences=7
    ).commit()
    assert report.deferred == report.n_unique_keys - 7
    with EmbeddingStore(single) as a, EmbeddingStore(paths) as b:
        assert set(a.keys()) == set(b.keys())


def test_validate_only_checks_a_sample_and_writes_nothing(proteins, tmp_path):
    model = build_tiny_esm2(tmp_path / "esm2")
    embedder = LanguageModelEmbedder("esm2", "esm2", str(model), device="cpu")
    trial = validate_engine(proteins, embedder, n_sequences=20)
    assert trial.sequences == trial.embedded == 20
    names = {"every_sequence_embedded", "dimension", "finite", "batch_invariant"}
    assert names <= set(trial.outcomes)
    assert all(trial.outcomes[n].passed for n in names)
    # random weights: whether functions separate is measured and reported, either way
    assert "mean cosine" in trial.outcomes["closer_within_function"].description
    assert trial.engine.startswith("packed")
    assert not any(tmp_path.rglob("*.h5")) and not any(tmp_path.rglob("*.parquet"))


def test_validation_sample_spans_the_functions(proteins):
    sample = validation_sample(proteins, "protein", 8)
    assert sample["function"].nunique() == min(8, proteins["function"].nunique())
    assert sample["_input"].is_unique


def test_validate_only_fails_on_letters_a_nucleotide_model_cannot_read(proteins, tmp_path):
    model = build_tiny_nucleotide_transformer(tmp_path / "nt")
    embedder = LanguageModelEmbedder("nt", "nucleotide_transformer", str(model), max_length=60)
    dirty = proteins.copy()
    dirty["nt_seq"] = dirty["nt_seq"].str.slice_replace(3, 4, "R")  # an ambiguity code
    trial = validate_engine(dirty, embedder, n_sequences=6)
    outcome = trial.outcomes["every_sequence_embedded"]
    assert not trial.passed and not outcome.passed and trial.embedded == 0
    assert "outside ACGTN" in outcome.failing_examples[0]


def test_launchpad_language_model_options_default_to_the_embedders_defaults():
    from resources.embedders import ComputeDevice, LanguageModelOptions
    from segpair_assets.assets.embeddings import ShardedEmbeddingConfig

    core = {
        name: p.default
        for name, p in inspect.signature(LanguageModelEmbedder).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    options = LanguageModelOptions()
    for name in ("pooling", "layer", "packing", "compile_encoder"):
        assert getattr(options, name) == core[name], name
    device = ComputeDevice()
    for name in ("device", "precision", "toks_per_batch", "cpu_workers"):
        assert getattr(device, name) == core[name], name
    run = inspect.signature(prepare_master_cache).parameters
    config = ShardedEmbeddingConfig()
    assert config.max_sequences == run["max_sequences"].default
    assert config.validate_only is False
