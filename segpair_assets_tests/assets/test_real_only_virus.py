"""A virus added for real data only (one registry entry, no simulation section): the code
location loads, its job materializes a real data version, `segpair demo` skips it and
`segpair simulate` refuses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd

from segpair_assets import cli
from segpair_assets_tests.conftest import REPO_ROOT, TOY_REGISTRY
from segpair_assets_tests.real_only_virus import (
    ROTA_PROTEINS,
    ROTA_REGISTRY,
    write_rota_data_version,
)

# Run where SEGPAIR_VIRUS_REGISTRY names the rota-only registry (the partitions are built
# from the registry when the code location is imported, so in a fresh interpreter).
_MATERIALIZE = """
import json, sys
import dagster as dg
from segpair_assets.definitions import build_definitions
from segpair_assets.partitions import DATA_VERSION_PARTITIONS_NAME, partition_key

defs = build_definitions(sys.argv[1])
dg.Definitions.validate_loadable(defs)
job = defs.resolve_job_def("segpair_rota_job")
schedule = defs.resolve_schedule_def("weekly_refresh_rota")
with dg.instance_for_test() as instance:
    instance.add_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME, ["real_v1"])
    result = job.execute_in_process(
        instance=instance,
        partition_key=partition_key("rota", "real_v1"),
        asset_selection=[dg.AssetKey(a) for a in sys.argv[2:]],
    )
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
print(json.dumps({"success": result.success, "schedule": schedule.name, "checks": checks}))
"""


def test_the_job_of_a_real_only_virus_materializes_a_real_data_version(tmp_path):
    registry = tmp_path / "viruses.toml"
    registry.write_text(ROTA_REGISTRY)
    data_root = tmp_path / "data"
    write_rota_data_version(data_root / "raw" / "rota" / "real_v1", n_isolates=20)
    env = {
        **os.environ,
        "SEGPAIR_VIRUS_REGISTRY": str(registry),
        "SEGPAIR_DATA_ROOT": str(data_root),
    }
    assets = ["protein_final", "cooccurrence_sets", "segment_pairs"]
    out = subprocess.run(
        [sys.executable, "-c", _MATERIALIZE, str(data_root), *assets],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["success"] and report["schedule"] == "weekly_refresh_rota"
    # (proteins_embedded fails: the embedding caches were not selected)
    checks = report["checks"]
    assert checks["protein_final_is_valid"] and checks["segment_pairs_leakage_free"], checks
    processed = data_root / "processed" / "rota" / "real_v1"
    proteins = pd.read_parquet(processed / "protein_final.parquet")
    assert len(proteins) == 20 * 11 and proteins["assembly_id"].nunique() == 20
    assert sorted(set(zip(proteins["segment"], proteins["function"], strict=True))) == sorted(
        (str(n), p) for n, p, _ in ROTA_PROTEINS
    )
    assert len(pd.read_parquet(processed / "cooccurrence_sets.parquet")) == 20 * 55
    pairs = pd.read_parquet(processed / "segment_pairs.parquet")
    assert set(pairs["split"]) == {"train", "val", "test"} and set(pairs["label"]) == {0, 1}
    assert set(pairs["func_a"]) | set(pairs["func_b"]) == {p for _, p, _ in ROTA_PROTEINS}


def _registry_env(tmp_path, monkeypatch) -> None:
    path = tmp_path / "viruses.toml"
    path.write_text(TOY_REGISTRY + "\n" + ROTA_REGISTRY)
    monkeypatch.setenv("SEGPAIR_VIRUS_REGISTRY", str(path))


def test_demo_skips_a_virus_without_simulation(tmp_path, monkeypatch, capsys):
    _registry_env(tmp_path, monkeypatch)
    asked = []
    monkeypatch.setattr(cli, "_materialize", lambda pairs, *a, **k: asked.append(pairs) or 0)
    assert cli.main(["demo"]) == 0
    assert asked == [[("toy", "simulated_v1")]]
    line = next(x for x in capsys.readouterr().out.splitlines() if "rota" in x)
    assert "no simulation preset" in line and "[rota.simulation]" in line, line
    assert "segpair materialize -v rota" in line


def test_simulate_refuses_a_virus_without_simulation(tmp_path, monkeypatch, capsys):
    _registry_env(tmp_path, monkeypatch)
    out = tmp_path / "sim"
    assert cli.main(["simulate", "-v", "rota", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "rota" in err and "[rota.simulation]" in err, err
    assert not out.exists()


def test_a_malformed_registry_is_one_line_from_the_cli(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "viruses.toml"
    bad.write_text('[rota]\ndisplay_name = "Rotavirus A"\nsegmnts = []\n')
    monkeypatch.setenv("SEGPAIR_VIRUS_REGISTRY", str(bad))
    assert cli.main(["demo"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err and "segmnts" in err, err
