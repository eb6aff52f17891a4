"""Two writers of the same partition's stored outputs at once (two runs of one partition):
the writes serialise through the output's lock, so every stored set is whole and from one
writer. The first writer pauses in the middle of its write, where a second one would
interleave, while the second writes. Threads stand in for the two runs' processes (the
lock is the same between threads as between processes); test_concurrent_partitions.py
runs two real processes through Dagster."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from segpair.embeddings import cache as cache_mod
from segpair.embeddings.cache import CachePaths, EmbeddingStore
from segpair.embeddings.kmer import KmerEmbedder
from segpair.embeddings.pipeline import build_master_cache
from segpair.simulator import SimulationConfig, simulate_population
from segpair.training import artifacts

PAUSE_S = 1.0  # how long the first writer waits, mid-write, for the second to finish


@pytest.fixture(scope="module")
def proteins(flu):
    return simulate_population(flu, SimulationConfig(n_isolates=60, seed=4)).protein_final(flu)


class Pair:
    """Runs `write(name)` in threads "first" and "second"; the second starts once the
    first calls `pause()`, which waits for the second to finish (or PAUSE_S)."""

    def __init__(self):
        self.paused, self.second_done = threading.Event(), threading.Event()
        self.finished: list[tuple[str, object]] = []
        self.errors: list[BaseException] = []

    def pause(self) -> None:
        if threading.current_thread().name == "first":
            self.paused.set()
            self.second_done.wait(PAUSE_S)

    def run(self, write) -> list[tuple[str, object]]:
        def body(name):
            try:
                if name == "second":
                    assert self.paused.wait(60), "the first writer never paused"
                self.finished.append((name, write(name)))
            except BaseException as e:  # reported below, in the test's thread
                self.errors.append(e)
            finally:
                if name == "second":
                    self.second_done.set()

        threads = [threading.Thread(target=body, args=(n,), name=n) for n in ("first", "second")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        if self.errors:
            raise self.errors[0]
        return self.finished  # in the order they finished


def test_two_commits_of_one_embedding_cache_at_once_serialise(tmp_path, proteins, monkeypatch):
    pair = Pair()
    write = cache_mod.write_text_atomic

    def paused_write(target, text):  # both new files are written, not yet swapped in
        if Path(target).name.endswith(".commit.json"):
            pair.pause()
        write(target, text)

    monkeypatch.setattr(cache_mod, "write_text_atomic", paused_write)
    paths = CachePaths.for_partition(tmp_path, "flu_a", "v1", "kmer_aa3")
    sizes = {"first": 150, "second": len(proteins)}

    def commit(name):
        embedder = KmerEmbedder("kmer_aa3", "protein", 3)
        subset = proteins.iloc[: sizes[name]]
        return build_master_cache(subset, embedder, paths, progress=lambda _m: None).content_id

    last, content = pair.run(commit)[-1]
    monkeypatch.undo()
    # the stored pair is whole and is the one the last commit reported
    with EmbeddingStore(paths) as store:
        assert store.attrs["content_id"] == content, (
            f"the commit that finished last ({last}) reported {content}, but the stored "
            f"cache is {store.attrs['content_id']}: a commit was lost"
        )
        assert set(store.index["brc_fea_id"]) == set(proteins["brc_fea_id"].iloc[: sizes[last]])
    assert not paths.commit_record.exists() and not list(paths.folder.glob(".*.tmp"))


def test_training_artifacts_of_two_runs_never_mix(tmp_path, monkeypatch):
    pair = Pair()

    def checkpoint(path, _model, meta):  # after the plots and metrics, before the model
        pair.pause()
        Path(path).write_text(json.dumps(meta))

    monkeypatch.setattr(artifacts, "save_checkpoint", checkpoint)
    monkeypatch.setattr(artifacts, "training_plots", lambda o, *_a: {"roc.png": o.name.encode()})
    out_dir = tmp_path / "models" / "flu_a" / "v1" / "kmer_aa3"

    def write(name):
        outcome = SimpleNamespace(
            name=name, metrics={"writer": name}, verdict={}, learning={}, sizes={},
            result=SimpleNamespace(history=[], model=None),
            stratified=pd.DataFrame({"writer": [name]}),
        )  # fmt: skip
        artifacts.write_training_artifacts(out_dir, outcome, {"writer": name}, "t", "m")
        return time.time()

    pair.run(write)
    writers = {
        "model.pt": json.loads((out_dir / "model.pt").read_text())["writer"],
        "metrics.json": json.loads((out_dir / "metrics.json").read_text())["test"]["writer"],
        "stratified_metrics.csv": pd.read_csv(out_dir / "stratified_metrics.csv")["writer"][0],
        "roc.png": (out_dir / "roc.png").read_text(),
    }
    assert len(set(writers.values())) == 1, f"files from two runs in one folder: {writers}"
