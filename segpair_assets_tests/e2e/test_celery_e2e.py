"""Multi-machine execution on a real engine: a Redis broker (Debian's redis-server), two
Celery worker processes (`dagster-celery worker start`, as on a cluster), and `dagster dev`
with SEGPAIR_EXECUTOR=celery. A partition's ESM-2 cache is materialized through the
UI's API with the embedding split into 2 hash-range shards, one per worker,
and the cache equals the one a single machine computes in one shard."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from resources.embedders import embedders_for
from segpair.embeddings.cache import CachePaths, EmbeddingStore
from segpair.embeddings.catalog import CATALOG
from segpair_assets.assets.embeddings import build_embedding_assets
from segpair_assets.assets.preprocessing import protein_final
from segpair_assets.definitions import build_definitions
from segpair_assets.partitions import DATA_VERSION_PARTITIONS_NAME, partition_key
from segpair_assets_tests.conftest import REPO_ROOT
from segpair_assets_tests.e2e.processes import Service, free_port
from segpair_assets_tests.e2e.test_webserver_e2e import DagsterDev, _materialize_partition
from segpair_assets_tests.tiny_models import build_tiny_esm2

pytest.importorskip("dagster_celery", reason="the Celery executor is the 'distributed' extra")
REDIS = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(
    REDIS is None,
    reason="redis-server not installed (Debian: apt-get install redis-server; `make test` "
    "installs it where it runs as root): the Celery test needs a real broker",
)
VIRUS, VERSION, SHARDS = "bunya", "simulated_v1", 2  # a shard per worker


@pytest.fixture
def cluster(tmp_path):
    """Redis + two Celery workers + dagster dev, all sharing one DAGSTER_HOME and data root
    (on a cluster: a shared filesystem and a Postgres-backed instance)."""
    port = free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    model = build_tiny_esm2(tmp_path / "tiny_esm2")
    env = {
        "SEGPAIR_EXECUTOR": "celery",
        "SEGPAIR_CELERY_BROKER": broker,
        "SEGPAIR_CELERY_BACKEND": f"redis://127.0.0.1:{port}/1",
        "SEGPAIR_ESM2_MODEL": str(model),
        "SEGPAIR_SENSOR_INTERVAL_SECONDS": "3600",
    }
    services = []
    try:
        redis = Service(
            [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", str(tmp_path)],
            tmp_path / "redis.log",
        )  # fmt: skip
        services.append(redis)
        redis.wait_for("Ready to accept connections")
        dev = DagsterDev(tmp_path, env)  # creates DAGSTER_HOME with the instance settings
        # the instance's SQLite storage is created by its first user: let that be dagster dev
        dev.wait_until_loaded()
        # two GPU workers: two "gpu" pool slots (the instance default is one, for one GPU)
        dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
        subprocess.run(
            [dagster, "instance", "concurrency", "set", "gpu", "2"],
            env={**os.environ, "DAGSTER_HOME": str(dev.home)}, check=True, capture_output=True,
        )  # fmt: skip
        bin_dir = os.path.dirname(sys.executable)
        worker_env = {
            **os.environ,
            # the worker CLI starts `celery` by name: the one beside this interpreter
            "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
            **env,
            "DAGSTER_HOME": str(dev.home),
            "SEGPAIR_DATA_ROOT": str(dev.data),
        }
        celery_cli = os.path.join(bin_dir, "dagster-celery")
        for name in ("worker1", "worker2"):
            worker = Service(
                [celery_cli, "worker", "start", "-A", "dagster_celery.app",
                 "-y", str(REPO_ROOT / "deploy" / "celery.yaml"),
                 "-q", "dagster,gpu", "-n", name, "--", "--concurrency", "1"],
                tmp_path / f"{name}.log",
                worker_env,
            )  # fmt: skip
            services.append(worker)
        for worker in services[1:]:
            worker.wait_for("ready.")
        yield dev, worker_env
    finally:
        if "dev" in locals():
            dev.stop()
        for s in reversed(services):
            s.stop()


def _single_machine_vectors(tmp_path: Path, model: Path) -> dict[str, np.ndarray]:
    root = tmp_path / "single_machine"
    (root / "raw").mkdir(parents=True)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME, [VERSION])
        esm = embedders_for({"esm2": str(model)})
        result = dg.materialize(
            [protein_final, *build_embedding_assets(CATALOG)],
            instance=instance,
            resources={**build_definitions(str(root)).resources, "embedders": esm},
            partition_key=partition_key(VIRUS, VERSION),
            selection=["protein_final", "master_embeddings_esm2"],
        )
        assert result.success
    with EmbeddingStore(CachePaths.for_partition(root, VIRUS, VERSION, "esm2")) as store:
        ids = store.index["brc_fea_id"].tolist()
        return dict(zip(ids, store.gather(ids), strict=True))


def test_celery_workers_materialize_a_sharded_partition(cluster, tmp_path):
    dev, env = cluster
    config = {"ops": {"master_embeddings_esm2": {"config": {"shards": SHARDS}}}}
    run_id = _materialize_partition(
        dev,
        VIRUS,
        VERSION,
        job="segpair_language_model_job",
        assets=["protein_final", "master_embeddings_esm2"],
        run_config=config,
    )

    # every step ran in a Celery worker, and the shards of the one partition were split
    # between the two workers
    ran_on = _workers_of_steps(dev.home, run_id)
    shard_steps = {f"master_embeddings_esm2.embed_esm2_shard[shard_{i}]" for i in range(SHARDS)}
    assert shard_steps <= set(ran_on), ran_on
    assert {"protein_final", "master_embeddings_esm2.commit_esm2_cache"} <= set(ran_on)
    assert {ran_on[s] for s in shard_steps} == {"worker1", "worker2"}, ran_on

    # the committed cache equals the single-machine one, protein by protein
    paths = CachePaths.for_partition(dev.data, VIRUS, VERSION, "esm2")
    assert not any(paths.work_dir.rglob("chunk_*.npz"))  # staged shards merged and cleared
    reference = _single_machine_vectors(tmp_path, tmp_path / "tiny_esm2")
    with EmbeddingStore(paths) as store:
        ids = store.index["brc_fea_id"].tolist()
        assert sorted(ids) == sorted(reference)
        np.testing.assert_allclose(
            store.gather(ids), np.stack([reference[i] for i in ids]), rtol=0, atol=2e-3
        )

    # `segpair materialize` runs on the same engine; a re-run finds everything stored
    segpair = os.path.join(os.path.dirname(sys.executable), "segpair")
    out = subprocess.run(
        [segpair, "materialize", "-v", VIRUS, "-d", VERSION, "--job",
         "segpair_language_model_job", "--assets", "master_embeddings_esm2"],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    cli_run = re.search(r"\(run ([0-9a-f-]+)\)", out.stdout).group(1)
    assert "master_embeddings_esm2.commit_esm2_cache" in _workers_of_steps(dev.home, cli_run)
    with dg.DagsterInstance.from_config(str(dev.home)) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("master_embeddings_esm2"))
    metadata = event.asset_materialization.metadata
    assert event.run_id == cli_run and metadata["computed"].value == 0
    assert metadata["reused_in_place"].value == metadata["unique_sequences"].value > 0


def _workers_of_steps(home: Path, run_id: str) -> dict[str, str]:
    """Step key -> the Celery worker that ran it (each worker reports itself in an
    engine event of the run)."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        records = instance.all_logs(run_id)
    ran_on: dict[str, str] = {}
    for record in records:
        event = record.dagster_event
        if event and event.is_engine_event and event.engine_event_data:
            worker = event.engine_event_data.metadata.get("Celery worker")
            if worker is not None:
                ran_on[event.step_key] = worker.value.split("@")[0]
    return ran_on


def test_workers_and_executor_share_the_celery_settings(monkeypatch):
    """deploy/celery.yaml (workers) and the executor (code location) must agree."""
    from dagster_celery.cli import get_validated_config

    from segpair_assets.executors import celery_settings
    from segpair_assets.settings import Settings

    monkeypatch.setenv("SEGPAIR_CELERY_BROKER", "redis://broker:6379/0")
    monkeypatch.setenv("SEGPAIR_CELERY_BACKEND", "redis://broker:6379/1")
    workers = get_validated_config(str(REPO_ROOT / "deploy" / "celery.yaml"))
    executor = celery_settings(Settings.from_environment())
    assert workers["broker"] == executor["broker"] == "redis://broker:6379/0"
    assert workers["backend"] == executor["backend"] == "redis://broker:6379/1"
    assert workers["config_source"] == executor["config_source"]
