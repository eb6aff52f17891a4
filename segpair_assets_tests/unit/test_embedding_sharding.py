"""Sharding one partition's embedding work by sequence-hash range: the shards split the
work exactly, and plan + shards + commit give the cache a single step gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segpair.embeddings.base import signature_of
from segpair.embeddings.cache import CachePaths, ChunkStager, EmbeddingStore
from segpair.embeddings.kmer import KmerEmbedder
from segpair.embeddings.pipeline import (
    CacheMode,
    MissingVectorsError,
    build_master_cache,
    prepare_master_cache,
)
from segpair.embeddings.sharding import (
    ShardPlan,
    check_shard_signatures,
    embed_shard,
    hash_range,
    plan_shards,
    shard_of_key,
)
from segpair.simulator import SimulationConfig, simulate_population


@pytest.fixture(scope="module")
def proteins(flu):
    return simulate_population(flu, SimulationConfig(n_isolates=60, seed=4)).protein_final(flu)


def _quiet(_msg: str) -> None:
    pass


def _sharded(proteins, embedder, paths, n_shards, previous=(), force=False):
    mode = CacheMode.of(force_recompute=force)
    plans = plan_shards(proteins, embedder, paths, list(previous), n_shards, mode)
    reports = [
        embed_shard(proteins, embedder, paths, list(previous), p.shard, n_shards,
                    mode=mode, progress=_quiet)
        for p in plans
    ]  # fmt: skip
    prepared = prepare_master_cache(
        proteins, embedder, paths, list(previous), mode=mode.collecting(), progress=_quiet
    )
    check_shard_signatures(reports, prepared.report.signature)
    prepared.commit()
    return plans, reports


def test_hash_ranges_cover_the_key_space_without_overlap():
    for n in (1, 2, 3, 7, 64):
        bounds = [hash_range(i, n).split("-") for i in range(n)]
        assert bounds[0][0] == "00000000" and bounds[-1][1] == "ffffffff"
        for (_, hi), (lo, _) in zip(bounds, bounds[1:], strict=False):
            assert int(hi, 16) + 1 == int(lo, 16)
        for i, (lo, hi) in enumerate(bounds):
            assert shard_of_key(f"{lo}0000:sig", n) == i == shard_of_key(f"{hi}ffff:sig", n)


def test_sharded_cache_equals_the_single_step_cache(tmp_path, proteins):
    e = KmerEmbedder("kmer_aa3", "protein", 3)
    single = CachePaths.for_partition(tmp_path / "one", "flu_a", "v1", e.name)
    build_master_cache(proteins, e, single, progress=_quiet)
    sharded = CachePaths.for_partition(tmp_path / "three", "flu_a", "v1", e.name)
    plans, reports = _sharded(proteins, e, sharded, 3)

    n_unique = proteins["seq_hash"].nunique()
    assert sum(p.to_compute for p in plans) == n_unique
    assert [r.computed for r in reports] == [p.to_compute for p in plans]
    assert all(p.to_compute > 0 for p in plans)  # md5 ranges split real data evenly enough
    assert not list(ChunkStager(sharded, reports[0].signature).chunk_files())  # cleared
    ids = proteins["brc_fea_id"].tolist()
    with EmbeddingStore(single) as a, EmbeddingStore(sharded) as b:
        assert a.n_rows == b.n_rows == n_unique
        np.testing.assert_array_equal(a.gather(ids), b.gather(ids))
        assert list(a.keys()) == list(b.keys())  # same row order: first appearance in the table


def test_a_rerun_computes_nothing_and_a_second_version_only_new_sequences(tmp_path, proteins):
    e = KmerEmbedder("kmer_aa3", "protein", 3)
    v1 = CachePaths.for_partition(tmp_path, "flu_a", "v1", e.name)
    _sharded(proteins, e, v1, 2)
    plans, reports = _sharded(proteins, e, v1, 2)
    assert sum(p.to_compute for p in plans) == 0 == sum(r.computed for r in reports)

    extra = proteins.head(10).assign(
        brc_fea_id=lambda d: d["brc_fea_id"] + "_new",
        esm2_ready_seq=lambda d: d["esm2_ready_seq"].str[::-1],
        seq_hash=lambda d: d["seq_hash"] + "_new",
    )
    v2 = CachePaths.for_partition(tmp_path, "flu_a", "v2", e.name)
    plans, reports = _sharded(pd.concat([proteins, extra]), e, v2, 2, previous=[v1])
    assert sum(r.computed for r in reports) == extra["esm2_ready_seq"].nunique()


def test_a_shard_that_died_resumes_and_force_recompute_starts_over(tmp_path, proteins):
    e = KmerEmbedder("kmer_aa3", "protein", 3)
    paths = CachePaths.for_partition(tmp_path, "flu_a", "v1", e.name)
    plans = plan_shards(proteins, e, paths, [], 2)
    # shard 0 finished; shard 1 was killed after its first chunk (chunk_size 5)
    embed_shard(proteins, e, paths, [], 0, 2, progress=_quiet)

    class DiesAfterOneChunk(KmerEmbedder):
        calls = 0

        def embed(self, seqs):
            DiesAfterOneChunk.calls += 1
            if DiesAfterOneChunk.calls > 1:
                raise KeyboardInterrupt
            return super().embed(seqs)

    dying = DiesAfterOneChunk("kmer_aa3", "protein", 3)
    with pytest.raises(KeyboardInterrupt):
        embed_shard(proteins, dying, paths, [], 1, 2, chunk_size=5, progress=_quiet)
    replanned = plan_shards(proteins, e, paths, [], 2)
    assert replanned[0].to_compute == 0
    assert replanned[1].to_compute == plans[1].to_compute - 5
    with pytest.raises(MissingVectorsError, match="staged by no shard"):
        prepare_master_cache(proteins, e, paths, mode=CacheMode.COLLECT, progress=_quiet)
    resumed = embed_shard(proteins, e, paths, [], 1, 2, progress=_quiet)
    assert resumed.computed == plans[1].to_compute - 5 and resumed.already_available == 5

    _plans, forced = _sharded(proteins, e, paths, 2, force=True)
    assert sum(r.computed for r in forced) == proteins["seq_hash"].nunique()


def test_shards_with_another_signature_are_refused(tmp_path, proteins):
    e = KmerEmbedder("kmer_aa3", "protein", 3)
    other = KmerEmbedder("kmer_aa3", "protein", 3, normalize="none")
    paths = CachePaths.for_partition(tmp_path, "flu_a", "v1", e.name)
    report = embed_shard(proteins, other, paths, [], 0, 1, progress=_quiet)
    with pytest.raises(ValueError, match="same model at the same precision"):
        check_shard_signatures([report.as_dict()], signature_of(e.describe()))


def test_shard_plans_travel_as_plain_values():
    plan = ShardPlan(1, 4, hash_range(1, 4), 17)
    assert ShardPlan(**plan.__dict__) == plan and plan.label == "shard 2/4 (40000000-7fffffff)"
