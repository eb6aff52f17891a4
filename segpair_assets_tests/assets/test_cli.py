"""The `segpair` command: the README's demo and materializing a user's data version."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd

from segpair_assets_tests.conftest import FIXTURES, REPO_ROOT


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "SEGPAIR_DATA_ROOT": str(tmp_path / "data")}
    exe = os.path.join(os.path.dirname(sys.executable), "segpair")
    return subprocess.run(
        [exe, *args], capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=600
    )


def test_demo_materializes_every_virus_into_dagster_home(tmp_path):
    out = _run(["demo"], tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "flu_a x simulated_v1: ok" in out.stdout and "bunya x simulated_v1: ok" in out.stdout
    for virus in ("flu_a", "bunya"):
        df = pd.read_parquet(
            tmp_path / "data/processed" / virus / "simulated_v1/protein_final.parquet"
        )
        assert len(df) > 1000
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        records = instance.fetch_materializations(dg.AssetKey("protein_final"), limit=10).records
        partitions = {r.partition_key for r in records}
    assert partitions == {"simulated_v1|flu_a", "simulated_v1|bunya"}
    for virus in ("flu_a", "bunya"):
        pairs = pd.read_parquet(
            tmp_path / "data/processed" / virus / "simulated_v1/segment_pairs.parquet"
        )
        assert set(pairs["split"]) == {"train", "val", "test"}


def test_materialize_a_user_data_version(tmp_path):
    shutil.copytree(FIXTURES / "bvbrc", tmp_path / "data/raw/flu_a/brc_2025")
    # two isolates: enough for protein_final and the caches, too few for train/val/test
    out = _run(["materialize", "-v", "flu_a", "-d", "brc_2025"], tmp_path)
    assert out.returncode == 1 and "cannot fill train/val/test" in out.stdout + out.stderr
    out = _run(
        ["materialize", "-v", "flu_a", "-d", "brc_2025", "--assets", "protein_final"], tmp_path
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    df = pd.read_parquet(tmp_path / "data/processed/flu_a/brc_2025/protein_final.parquet")
    assert len(df) == 7


def test_materialize_reports_failure_with_nonzero_exit(tmp_path):
    (tmp_path / "data/raw/flu_a/broken").mkdir(parents=True)
    (tmp_path / "data/raw/flu_a/broken/p.csv").write_text("protein_id,segment,sequence\np1,4,MK\n")
    out = _run(["materialize", "-v", "flu_a", "-d", "broken"], tmp_path)
    assert out.returncode == 1
    assert "FAILED" in out.stdout and "missing required column" in out.stdout + out.stderr


def test_simulate_writes_a_labelled_folder(tmp_path):
    out = _run(["simulate", "-v", "bunya", "-o", str(tmp_path / "sim"), "-n", "20"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "SIMULATED" in (tmp_path / "sim" / "manifest.toml").read_text()
