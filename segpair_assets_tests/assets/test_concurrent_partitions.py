"""Two materializations of the same partition at once, in two processes (as a UI run and a
`segpair materialize` run, which the run queue does not see): the writes serialise, so the
stored outputs are whole and equal to a serial run's; and the Parquet IO manager waits
for a writer holding its file."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time

import dagster as dg
import numpy as np
import pandas as pd

from resources.parquet_io_manager import PartitionedParquetIOManager
from segpair.embeddings.cache import CachePaths, EmbeddingStore
from segpair.locks import lock_file_for
from segpair.simulator import SimulationConfig, simulate_population, write_data_version
from segpair_assets.definitions import build_definitions
from segpair_assets.partitions import DATA_VERSION_PARTITIONS_NAME, partition_key
from segpair_assets_tests.conftest import REPO_ROOT

ASSETS = ["protein_final", "master_embeddings_kmer_aa3"]

# One materialization of flu_a|v_small in its own process. The "first" stops in the middle
# of committing its embedding cache (both new files written, not yet swapped in) until the
# "second", started then, has reached that cache and finished, or for 3 s after it reached
# it: where a second writer interleaves.
MATERIALIZE = """
import sys, time
from pathlib import Path
import dagster as dg
from segpair.embeddings import cache, pipeline
from segpair_assets.definitions import build_definitions
from segpair_assets.partitions import partition_key

home, root, role, sync = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
def wait_for(name, seconds):
    deadline = time.time() + seconds
    while not (sync / name).exists() and time.time() < deadline:
        time.sleep(0.05)
if role == "first":
    write = cache.write_text_atomic
    def paused(target, text):
        if str(target).endswith(".commit.json"):
            (sync / "paused").touch()
            wait_for("reached", 120)
            wait_for("done", 3)
        write(target, text)
    cache.write_text_atomic = paused
else:
    recover = pipeline.recover
    def reached(paths):
        (sync / "reached").touch()
        return recover(paths)
    pipeline.recover = reached
job = build_definitions(root).resolve_job_def("segpair_main_job")
if role == "second":
    wait_for("paused", 120)
with dg.DagsterInstance.from_config(home) as instance:
    result = job.execute_in_process(
        instance=instance, partition_key=partition_key("flu_a", "v_small"),
        asset_selection=[dg.AssetKey(a) for a in ASSETS], raise_on_error=False)
if role == "second":
    (sync / "done").touch()
sys.exit(0 if result.success else 1)
""".replace("ASSETS", repr(ASSETS))


def _materialize_serially(root) -> None:
    job = build_definitions(str(root)).resolve_job_def("segpair_main_job")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME, ["v_small"])
        result = job.execute_in_process(
            instance=instance, partition_key=partition_key("flu_a", "v_small"),
            asset_selection=[dg.AssetKey(a) for a in ASSETS],
        )  # fmt: skip
        assert result.success


def _md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_two_runs_of_one_partition_at_once_store_whole_outputs(tmp_path, flu):
    config = SimulationConfig(n_isolates=40, seed=11)
    population = simulate_population(flu, config)
    roots = {name: tmp_path / name / "data" for name in ("together", "serial")}
    for root in roots.values():
        write_data_version(population, root / "raw" / "flu_a" / "v_small", flu, config)
    _materialize_serially(roots["serial"])

    home, sync = tmp_path / "home", tmp_path / "sync"
    home.mkdir()
    sync.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME, ["v_small"])
        procs = [
            subprocess.Popen([sys.executable, "-c", MATERIALIZE, str(home),
                              str(roots["together"]), role, str(sync)], cwd=REPO_ROOT)
            for role in ("first", "second")
        ]  # fmt: skip
        assert [p.wait(timeout=240) for p in procs] == [0, 0], "a run failed (log above)"
        latest = instance.get_latest_materialization_event(dg.AssetKey(ASSETS[1]))
        reported = latest.asset_materialization.metadata["content_id"].value

    together, serial = (
        CachePaths.for_partition(roots[n], "flu_a", "v_small", "kmer_aa3") for n in roots
    )
    # the pair on disk is whole, and is what the run that finished last reported
    with EmbeddingStore(together) as got, EmbeddingStore(serial) as want:
        assert got.attrs["content_id"] == reported, "a run's commit was lost"
        columns = ["brc_fea_id", "row", "cache_key"]
        pd.testing.assert_frame_equal(got.index[columns], want.index[columns])
        np.testing.assert_array_equal(got.load_all(), want.load_all())
    table = "processed/flu_a/v_small/protein_final.parquet"
    assert _md5(roots["together"] / table) == _md5(roots["serial"] / table)
    assert not list(together.folder.glob(".*.tmp")) and not together.commit_record.exists()


HOLD = """
import sys, time
from segpair.locks import exclusive
with exclusive(sys.argv[1], "writing protein_final", holder="Dagster run other-run"):
    print("held", flush=True)
    time.sleep(1.5)
"""


def test_the_parquet_io_manager_waits_for_another_writer_of_its_file(tmp_path):
    manager = PartitionedParquetIOManager(base_dir=str(tmp_path))
    key = partition_key("flu_a", "v1")
    target = tmp_path / "flu_a" / "v1" / "protein_final.parquet"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock_file_for(target))],
                              cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    context = dg.build_output_context(asset_key=dg.AssetKey("protein_final"), partition_key=key)
    t0 = time.monotonic()
    manager.handle_output(context, pd.DataFrame({"x": [1, 2]}))
    assert time.monotonic() - t0 > 0.5  # it waited for the other writer
    assert holder.wait(10) == 0
    assert pd.read_parquet(target)["x"].tolist() == [1, 2]
