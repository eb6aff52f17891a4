"""The `segpair` command: the README's demo and materializing a user's data version."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from segpair_assets_tests.conftest import FIXTURES, REPO_ROOT


def _run(args: list[str], tmp_path: Path, merged: bool = False) -> subprocess.CompletedProcess:
    """`segpair ARGS`; merged: stderr into stdout, in the order a terminal shows them."""
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "SEGPAIR_DATA_ROOT": str(tmp_path / "data")}
    exe = os.path.join(os.path.dirname(sys.executable), "segpair")
    stderr = subprocess.STDOUT if merged else subprocess.PIPE
    return subprocess.run(
        [exe, *args], stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=REPO_ROOT,
        timeout=600,
    )  # fmt: skip


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


def _files(tmp_path: Path) -> dict[str, int]:
    """Every file but the Dagster instance's, with its modification time."""
    home = tmp_path / "dagster_home"
    return {
        str(p): p.stat().st_mtime_ns
        for p in tmp_path.rglob("*")
        if p.is_file() and home not in p.parents
    }


@pytest.mark.parametrize("relative", [True, False], ids=["dot-dot", "absolute"])
def test_materialize_refuses_a_data_version_that_is_a_path(tmp_path, relative):
    """Issue 14: `-d ../x` read and wrote beside the data root (an absolute path: into the
    input folder itself) and left the odd name registered as a partition."""
    readable = tmp_path / "outside"  # what the bad name points at, readable as a data version
    shutil.copytree(FIXTURES / "bvbrc", readable)
    (tmp_path / "data/raw/flu_a").mkdir(parents=True)
    shutil.copytree(FIXTURES / "bvbrc", tmp_path / "data/raw/x")  # data/raw/flu_a/../x
    version = "../x" if relative else str(readable)
    before = _files(tmp_path)
    out = _run(["materialize", "-v", "flu_a", "-d", version], tmp_path, merged=True)
    assert out.returncode == 2, out.stdout[-3000:]
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1, out.stdout[-3000:]
    assert repr(version) in lines[0] and "letters, digits" in lines[0] and "Fix:" in lines[0]
    assert _files(tmp_path) == before
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        assert instance.get_dynamic_partitions("data_version") == []


def test_a_failed_materialize_ends_with_the_error_and_keeps_the_trace_in_the_run_log(tmp_path):
    """Issue 14: a failed run printed 65-120 lines of stack trace; the useful line sat near
    the top. Now the output ends with the error (file, line, record, fix); the run's log
    (the UI) keeps the trace."""
    folder = tmp_path / "data/raw/flu_a/no_segment"
    folder.mkdir(parents=True)
    fasta = (FIXTURES / "ncbi_protein_fasta/proteins.fasta").read_text()
    n_lines = len(fasta.splitlines())
    record = ">XX000001 A/Chicago/YGA_99999/2013(H3N2) hypothetical protein\nMKTIIALSYIL\n"
    (folder / "proteins.fasta").write_text(fasta + record)
    out = _run(["materialize", "-v", "flu_a", "-d", "no_segment"], tmp_path, merged=True)
    assert out.returncode == 1
    lines = [x for x in out.stdout.splitlines() if x.strip()]
    assert len(lines) < 25, out.stdout
    assert "Traceback" not in out.stdout and "Stack Trace" not in out.stdout
    last = lines[-1]
    assert f"proteins.fasta:{n_lines + 1}" in last and "XX000001" in last and "Fix:" in last, last
    run_id = re.search(r"\(run ([0-9a-f-]+)\)", out.stdout).group(1)
    assert any(run_id in x and "trace" in x for x in lines[-3:]), lines[-3:]
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        failures = [
            e.dagster_event
            for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        ]
    assert [f.step_key for f in failures] == ["protein_final"]
    cause = failures[0].step_failure_data.error.cause
    assert cause.cls_name == "InputDataError" and "XX000001" in cause.message
    assert any("read_data_version" in frame for frame in cause.stack)


def test_simulate_writes_a_labelled_folder(tmp_path):
    out = _run(["simulate", "-v", "bunya", "-o", str(tmp_path / "sim"), "-n", "20"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "SIMULATED" in (tmp_path / "sim" / "manifest.toml").read_text()
