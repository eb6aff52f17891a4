"""The `segpair` command: the README's demo and materializing a user's data version."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
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
    # a folder dropped before the demo: the temporary daemon's sensor launches a run for
    # it (it fails at once: no file), which the demo must not kill when it stops
    (tmp_path / "data/raw/flu_a/dropped").mkdir(parents=True)
    (tmp_path / "data/raw/flu_a/dropped/manifest.toml").write_text('format = "fasta"\n')
    out = _run(["demo"], tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "flu_a x simulated_v1: ok" in out.stdout and "bunya x simulated_v1: ok" in out.stdout
    # launched through a temporary `dagster dev`, side by side, printed as `segpair
    # materialize` prints, each line saying which run it is from
    assert "launched segpair_main_job on flu_a x simulated_v1" in out.stdout
    finished = r"^\[bunya x simulated_v1\] \d\d:\d\d:\d\d segment_pairs: Finished execution"
    assert re.search(finished, out.stderr, re.M), out.stderr[-3000:]
    port = int(re.search(r"starting dagster dev on port (\d+)", out.stdout).group(1))
    with pytest.raises(OSError):  # and stopped when the runs ended
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    for virus in ("flu_a", "bunya"):
        df = pd.read_parquet(
            tmp_path / "data/processed" / virus / "simulated_v1/protein_final.parquet"
        )
        assert len(df) > 1000
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        records = instance.fetch_materializations(dg.AssetKey("protein_final"), limit=10).records
        partitions = {r.partition_key for r in records}
        runs = instance.get_runs()
    assert partitions == {"simulated_v1|flu_a", "simulated_v1|bunya"}
    # Issue 15: in-process runs had no code location, so Overview said "No runs" and the
    # job no history; these came through the location, as the UI's own launches do
    by_partition = {
        r.tags["dagster/partition"]: (r.job_name, r.status, r.remote_job_origin.location_name,
                                      r.tags.get("dagster/failure_reason"))
        for r in runs
    }  # fmt: skip
    assert by_partition == {
        "simulated_v1|flu_a": ("segpair_main_job", dg.DagsterRunStatus.SUCCESS, "segpair", None),
        "simulated_v1|bunya": ("segpair_main_job", dg.DagsterRunStatus.SUCCESS, "segpair", None),
        "dropped|flu_a": (
            "segpair_flu_a_job", dg.DagsterRunStatus.FAILURE, "segpair", "STEP_FAILURE"
        ),
    }  # fmt: skip
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
    # a run config saved from the launchpad (JSON here), console logger settings included
    launchpad = {"ops": {"protein_final": {"config": {"length_policy": "keep"}}},
                 "loggers": {"console": {"config": {"log_level": "INFO"}}}}  # fmt: skip
    (tmp_path / "run.json").write_text(json.dumps(launchpad))
    out = _run(
        ["materialize", "-v", "flu_a", "-d", "brc_2025", "--assets", "protein_final",
         "-c", str(tmp_path / "run.json")], tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "protein_final: Finished execution" in out.stderr
    df = pd.read_parquet(tmp_path / "data/processed/flu_a/brc_2025/protein_final.parquet")
    assert len(df) == 7
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        latest = instance.get_runs(limit=1)[0]
    assert latest.run_config["ops"] == launchpad["ops"]


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


def test_a_run_config_file_with_errors_is_refused_one_line_per_bad_key(
    tmp_path, monkeypatch, capsys
):
    """Issue 15: `-c FILE` as `dagster job execute -c`; Dagster's config errors print the
    whole expected schema, here each is one line naming the file and the key."""
    from segpair_assets.cli import main

    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("SEGPAIR_DATA_ROOT", str(tmp_path / "data"))
    bad = tmp_path / "run.yaml"
    bad.write_text(
        "ops:\n  segment_pairs:\n    config:\n      neg_to_pos_ratio: lots\n"
        "      negs_to_pos: 2\n  pair_clasifier_kmer_aa3:\n    config: {}\n"
    )

    def refused(*args: str) -> list[str]:
        assert main(["materialize", "-v", "flu_a", "-d", "v1", *args]) == 2
        return capsys.readouterr().err.strip().splitlines()

    lines = refused("-c", str(bad))
    assert sorted(lines) == [
        f"error: {bad}: ops.pair_clasifier_kmer_aa3: unknown key (not an asset of "
        "segpair_main_job)",
        f'error: {bad}: ops.segment_pairs.config.neg_to_pos_ratio: Invalid scalar. Value "lots" '
        """of type "<class 'str'>" is not valid for expected type "Float\"""",
        f"error: {bad}: ops.segment_pairs.config.negs_to_pos: unknown key (not a field here)",
    ]
    bad.write_text("ops: {segment_pairs: [\n")
    [line] = refused("-c", str(bad))
    assert line.startswith(f"error: {bad}:2: not YAML or JSON: "), line
    # a virus job on another virus's partition: its preset refuses, as in the launchpad
    [line] = refused("--job", "segpair_bunya_job")
    assert "segpair_bunya_job runs bunya partitions only" in line and "segpair_flu_a_job" in line
    assert not home.exists()  # nothing registered, no run
