"""The master cache: layout, lookups, reuse, failures, validation, crash safety (kill -9)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pandas as pd
import pytest

from segpair.embeddings import cache as cache_mod
from segpair.embeddings.cache import CachePaths, EmbeddingStore
from segpair.embeddings.features import FeatureDimensionError, FeatureSource, merged_features
from segpair.embeddings.kmer import KmerEmbedder
from segpair.embeddings.pipeline import CacheMode, build_master_cache, previous_caches
from segpair.embeddings.validation import check_cache
from segpair.simulator import SimulationConfig, simulate_population
from segpair_assets_tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def proteins(flu):
    return simulate_population(flu, SimulationConfig(n_isolates=120, seed=9)).protein_final(flu)


def _quiet(_msg: str) -> None:
    pass


def test_layout_and_lookup(tmp_path, proteins):
    e = KmerEmbedder("kmer_aa3", "protein", 3)
    paths = CachePaths.for_partition(tmp_path, "flu_a", "v1", e.name)
    report = build_master_cache(proteins, e, paths, progress=_quiet)
    assert paths.h5.name == "master_kmer_aa3_embeddings.h5"
    assert paths.parquet.name == "master_kmer_aa3_embeddings.parquet"
    assert report.n_rows == proteins["seq_hash"].nunique() == report.computed
    with h5py.File(paths.h5) as f:
        assert f["emb"].shape == (report.n_rows, 8000) and f["emb"].dtype == np.float16
        assert f["emb_keys"].shape == (report.n_rows,)
        for attr in ("model_name", "signature", "dim", "storage_precision", "created_at",
                     "library_versions", "content_id", "k"):  # fmt: skip
            assert attr in f.attrs
    with EmbeddingStore(paths) as store:
        ids = proteins["brc_fea_id"].tolist()
        gathered = store.gather(ids[::-1])
        direct = e.embed(proteins["esm2_ready_seq"].tolist()[::-1]).vectors
        np.testing.assert_allclose(gathered, direct, atol=1e-3)
        np.testing.assert_array_equal(store.vector(ids[0]), store.gather([ids[0]])[0])
        # identical sequences share a row
        dup = proteins[proteins["seq_hash"].duplicated(keep=False)].groupby("seq_hash")
        a, b = next(iter(dup))[1]["brc_fea_id"].tolist()[:2]
        assert store.row_of(a) == store.row_of(b)
        assert all(o.passed for o in check_cache(store, proteins).values())
        with pytest.raises(KeyError, match="failed_ids.csv"):
            store.row_of("nope")


def test_second_run_reuses_everything_and_force_recomputes(tmp_path, proteins):
    e = KmerEmbedder("kmer_aa3", "protein", 3)
    paths = CachePaths.for_partition(tmp_path, "flu_a", "v1", e.name)
    build_master_cache(proteins, e, paths, progress=_quiet)
    again = build_master_cache(proteins, e, paths, progress=_quiet)
    assert again.computed == 0 and again.reused_in_place == again.n_unique_keys
    forced = build_master_cache(proteins, e, paths, mode=CacheMode.RECOMPUTE, progress=_quiet)
    assert forced.computed == forced.n_unique_keys and forced.reused_in_place == 0


def test_a_new_data_version_reuses_the_earlier_one(tmp_path, proteins):
    e = KmerEmbedder("kmer_nt6", "nucleotide", 6)
    v1 = CachePaths.for_partition(tmp_path, "flu_a", "v1", e.name)
    build_master_cache(proteins.iloc[:500], e, v1, progress=_quiet)
    prev = previous_caches(tmp_path, "flu_a", "v2", e.name)
    assert prev == [v1]
    v2 = CachePaths.for_partition(tmp_path, "flu_a", "v2", e.name)
    report = build_master_cache(proteins, e, v2, previous=prev, progress=_quiet)
    first = proteins.iloc[:500]["nt_seq"].nunique()
    assert report.reused_previous == {"v1": first}
    assert report.computed == report.n_unique_keys - first
    # another embedder's signature is never reused
    other = KmerEmbedder("kmer_nt6", "nucleotide", 5)
    r = build_master_cache(proteins, other, v2, previous=prev, progress=_quiet)
    assert r.reused_previous == {} and r.reused_in_place == 0


def test_failures_are_recorded_accumulated_and_do_not_stop_the_run(tmp_path, proteins):
    e = KmerEmbedder("kmer_nt6", "nucleotide", 6)
    paths = CachePaths.for_partition(tmp_path, "flu_a", "v1", e.name)
    broken = proteins.copy()
    broken.loc[broken.index[:3], "nt_seq"] = None  # no nucleotide sequence
    broken.loc[broken.index[3], "nt_seq"] = "NNNNNNNNNN"  # no complete 6-mer
    report = build_master_cache(broken, e, paths, progress=_quiet)
    assert report.failed_proteins == 4
    failed = pd.read_csv(paths.failed)
    assert set(failed["brc_fea_id"]) == set(broken["brc_fea_id"].iloc[:4])
    assert "no nucleotide sequence" in set(failed["reason"])
    with EmbeddingStore(paths) as store:
        assert all(o.passed for o in check_cache(store, broken).values())
    # a later run with other failures keeps the earlier ones
    broken2 = proteins.copy()
    broken2.loc[broken2.index[10], "nt_seq"] = None
    build_master_cache(broken2, e, paths, progress=_quiet)
    assert len(pd.read_csv(paths.failed)) == 5


def test_check_catches_planted_faults(tmp_path, proteins):
    e = KmerEmbedder("kmer_aa3", "protein", 3)
    paths = CachePaths.for_partition(tmp_path, "flu_a", "v1", e.name)
    build_master_cache(proteins, e, paths, progress=_quiet)
    with h5py.File(paths.h5, "r+") as f:
        f["emb"][3, 0] = np.nan
    with EmbeddingStore(paths) as store:
        outcome = check_cache(store, proteins)
    assert not outcome["finite"].passed and outcome["finite"].failing_examples == [3]
    extra = pd.concat([proteins, proteins.iloc[[0]].assign(brc_fea_id="unmapped")])
    with EmbeddingStore(paths) as store:
        assert check_cache(store, extra)["every_protein_accounted"].failing_examples == ["unmapped"]


def test_a_parquet_index_from_another_commit_is_refused(tmp_path, proteins):
    e = KmerEmbedder("kmer_aa3", "protein", 3)
    a = CachePaths.for_partition(tmp_path, "flu_a", "a", e.name)
    b = CachePaths.for_partition(tmp_path, "flu_a", "b", e.name)
    build_master_cache(proteins.iloc[:50], e, a, progress=_quiet)
    build_master_cache(proteins.iloc[:60], e, b, progress=_quiet)
    a.parquet.write_bytes(b.parquet.read_bytes())
    with pytest.raises(ValueError, match="does not belong"):
        EmbeddingStore(a)


def test_interrupted_commit_is_rolled_forward(tmp_path, proteins, monkeypatch):
    """Death right after the commit record is written: the next reader finishes the swap."""
    e = KmerEmbedder("kmer_aa3", "protein", 3)
    paths = CachePaths.for_partition(tmp_path, "flu_a", "v1", e.name)
    build_master_cache(proteins.iloc[:40], e, paths, progress=_quiet)
    monkeypatch.setattr(cache_mod, "recover", lambda p: None)  # the renames never happen
    build_master_cache(proteins, e, paths, progress=_quiet)
    monkeypatch.undo()
    assert paths.commit_record.exists()
    with EmbeddingStore(paths) as store:  # opening recovers
        assert store.n_rows == proteins["seq_hash"].nunique()
        assert all(o.passed for o in check_cache(store, proteins).values())
    assert not paths.commit_record.exists()
    assert not list(paths.folder.glob(".*.tmp"))


def test_merged_features_check_dimensions(tmp_path, proteins):
    aa = KmerEmbedder("kmer_aa3", "protein", 3)
    nt = KmerEmbedder("kmer_nt6", "nucleotide", 6)
    pa = CachePaths.for_partition(tmp_path, "flu_a", "v1", aa.name)
    pn = CachePaths.for_partition(tmp_path, "flu_a", "v1", nt.name)
    build_master_cache(proteins, aa, pa, progress=_quiet)
    build_master_cache(proteins, nt, pn, progress=_quiet)
    ids = proteins["brc_fea_id"].tolist()[:7]
    with EmbeddingStore(pn) as sn, EmbeddingStore(pa) as sa:
        x = merged_features(
            [sn, sa], [FeatureSource("kmer_nt6", 4096), FeatureSource("kmer_aa3", 8000)], ids
        )
        assert x.shape == (7, 4096 + 8000)
        np.testing.assert_array_equal(x[:, 4096:], sa.gather(ids))
        with pytest.raises(FeatureDimensionError, match="must have 768 dimensions but .* 4096"):
            merged_features([sn], [FeatureSource("kmer_nt6", 768)], ids)


# ------------------------------------------------------------------ kill -9

CHILD = """
import sys, pandas as pd
from pathlib import Path
from segpair.embeddings.cache import CachePaths
from segpair.embeddings.language_models import LanguageModelEmbedder
from segpair.embeddings.pipeline import build_master_cache
proteins = pd.read_parquet(sys.argv[1])
e = LanguageModelEmbedder("esm2", "esm2", sys.argv[2], device="cpu", toks_per_batch=2000)
paths = CachePaths.for_partition(Path(sys.argv[3]), "flu_a", "v1", "esm2")
r = build_master_cache(proteins, e, paths, chunk_size=8, progress=lambda m: print(m, flush=True))
print("DONE", r.resumed_from_chunks, r.computed, flush=True)
"""


def test_kill_minus_9_loses_nothing_and_resumes(tmp_path, proteins):
    from segpair_assets_tests.tiny_models import build_tiny_esm2

    model = build_tiny_esm2(tmp_path / "model", layers=4, hidden=64)
    table = tmp_path / "proteins.parquet"
    proteins.to_parquet(table)
    paths = CachePaths.for_partition(tmp_path / "data", "flu_a", "v1", "esm2")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    cmd = [sys.executable, "-c", CHILD, str(table), str(model), str(tmp_path / "data")]

    # A complete earlier cache (a subset) that every kill must leave intact.
    proteins.iloc[:30].to_parquet(tmp_path / "small.parquet")
    small = [*cmd[:3], str(tmp_path / "small.parquet"), *cmd[4:]]
    subprocess.run(small, env=env, check=True, capture_output=True, timeout=300)
    with EmbeddingStore(paths) as store:
        old_content, old_vectors = store.attrs["content_id"], store.load_all()

    resumed_total, kills = 0, 0
    for round_ in range(3):  # two runs killed mid-way, then one left to finish
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
        staged_before = len(list(paths.work_dir.rglob("chunk_*.npz")))
        deadline = time.time() + 120
        # kill once two more chunks are staged than when this round started
        while round_ < 2 and time.time() < deadline and proc.poll() is None:
            if len(list(paths.work_dir.rglob("chunk_*.npz"))) >= staged_before + 3:
                break
            time.sleep(0.05)
        if round_ < 2 and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
            # The previous cache is readable and intact after every kill.
            with EmbeddingStore(paths) as store:
                assert store.attrs["content_id"] == old_content
                np.testing.assert_array_equal(store.load_all(), old_vectors)
            continue
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out
        done = [ln for ln in out.splitlines() if ln.startswith("DONE")][0].split()
        resumed_total = int(done[1])
        break
    else:
        pytest.fail("the run never completed")
    assert kills == 2, "a run ended before it could be killed; slow it down"
    assert resumed_total > 0  # the final run picked up the killed runs' chunks
    with EmbeddingStore(paths) as store:
        assert store.attrs["content_id"] != old_content
        assert all(o.passed for o in check_cache(store, proteins).values())
        final = store.gather(proteins["brc_fea_id"])
    # The same as a clean run in one go.
    clean = tmp_path / "clean"
    subprocess.run([*cmd[:5], str(clean)], env=env, check=True, capture_output=True, timeout=300)
    with EmbeddingStore(CachePaths.for_partition(clean, "flu_a", "v1", "esm2")) as ref:
        np.testing.assert_allclose(final, ref.gather(proteins["brc_fea_id"]), atol=2e-3)


def test_an_embedder_that_fits_no_protein_leaves_an_empty_valid_cache(tmp_path, proteins):
    e = KmerEmbedder("kmer_nt6", "nucleotide", 6)
    paths = CachePaths.for_partition(tmp_path, "flu_a", "v1", e.name)
    protein_only = proteins.assign(nt_seq=None)  # e.g. a BV-BRC protein export
    report = build_master_cache(protein_only, e, paths, progress=_quiet)
    assert report.n_rows == 0 and report.failed_proteins == len(proteins)
    with EmbeddingStore(paths) as store:
        assert store.n_rows == 0 and store.gather([]).shape == (0, 4096)
        assert all(o.passed for o in check_cache(store, protein_only).values())
