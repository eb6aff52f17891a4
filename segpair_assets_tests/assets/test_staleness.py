"""Dagster's own versioning, read through GraphQL as the UI reads it: a changed raw file,
once observed, marks protein_final stale; a re-materialized protein_final with new
content marks its dependents stale; an unchanged folder marks nothing."""

from __future__ import annotations

import contextlib

import dagster as dg
from dagster_graphql.test.utils import define_out_of_process_workspace, execute_dagster_graphql

from segpair.simulator import SimulationConfig, simulate_population, write_data_version
from segpair_assets import definitions as definitions_module
from segpair_assets.assets.pairs import cooccurrence_sets
from segpair_assets.assets.preprocessing import protein_final
from segpair_assets.assets.raw_files import raw_files
from segpair_assets.code_versions import STAGE_LOGIC
from segpair_assets.definitions import build_definitions
from segpair_assets.partitions import DATA_VERSION_PARTITIONS_NAME, partition_key

STALE = """query ($key: AssetKeyInput!, $partition: String) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode { staleStatus(partition: $partition)
                       staleCauses(partition: $partition) { key { path } reason } }
  }
}"""


@contextlib.contextmanager
def graphql(instance):
    """The code location in its own process, as the webserver loads it."""
    with define_out_of_process_workspace(definitions_module.__file__, None, instance) as ws:

        def stale(asset: str, partition: str) -> dict:
            # a fresh request context per question: one caches what it has read
            ctx = ws.create_request_context()
            result = execute_dagster_graphql(
                ctx, STALE, {"key": {"path": [asset]}, "partition": partition}
            )
            return result.data["assetNodeOrError"]

        yield stale


def test_a_changed_raw_file_marks_protein_final_then_its_dependents_stale(
    tmp_path, monkeypatch, bunya
):
    root = tmp_path / "data"
    folder = root / "raw" / "bunya" / "small"
    config = SimulationConfig(n_isolates=30, seed=5)
    write_data_version(simulate_population(bunya, config), folder, bunya, config)
    monkeypatch.setenv("SEGPAIR_DATA_ROOT", str(root))  # the code server's data root
    defs = build_definitions(str(root))
    resources = defs.get_repository_def().get_top_level_resources()
    observe_job = dg.Definitions(
        assets=[raw_files], jobs=[dg.define_asset_job("observe", [raw_files])], resources=resources
    ).resolve_job_def("observe")
    main_job = defs.resolve_job_def("segpair_main_job")
    key = partition_key("bunya", "small")
    pk = str(key)
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        instance.add_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME, ["small"])

        def materialize(*selection):
            # through the code location's job: its assets carry the code versions
            result = main_job.execute_in_process(
                instance=instance, partition_key=key, asset_selection=[a.key for a in selection]
            )
            assert result.success

        assert observe_job.execute_in_process(instance=instance).success
        materialize(protein_final, cooccurrence_sets)
        with graphql(instance) as stale:
            assert stale("protein_final", pk)["staleStatus"] == "FRESH"
            assert stale("cooccurrence_sets", pk)["staleStatus"] == "FRESH"
            # the same bytes observed again: nothing is stale
            assert observe_job.execute_in_process(instance=instance).success
            assert stale("protein_final", pk)["staleStatus"] == "FRESH"

            (folder / "notes.txt").write_text("a curator's note, new in the folder\n")
            assert observe_job.execute_in_process(instance=instance).success
            node = stale("protein_final", pk)
            assert node["staleStatus"] == "STALE"
            (cause,) = node["staleCauses"]
            assert cause == {"key": {"path": ["raw_files"]}, "reason": "has a new data version"}

            # the folder's proteins change: protein_final's data version changes with them
            (folder / "notes.txt").unlink()
            tsv = folder / "segments.tsv"
            header, *rows = tsv.read_text().splitlines()
            fields = rows[-1].split("\t")
            fields[header.split("\t").index("country")] = "Simland"  # a corrected record
            tsv.write_text("\n".join([header, *rows[:-1], "\t".join(fields)]) + "\n")
            assert observe_job.execute_in_process(instance=instance).success
            materialize(protein_final)
            assert stale("protein_final", pk)["staleStatus"] == "FRESH"
            node = stale("cooccurrence_sets", pk)
            assert node["staleStatus"] == "STALE"
            # the UI lists the cause at its root: protein_final has a new data version
            (cause,) = node["staleCauses"]
            assert cause == {"key": {"path": ["protein_final"]}, "reason": "has a new data version"}


def test_every_asset_has_a_code_version_from_the_table():
    graph = build_definitions("/tmp/segpair-unused").resolve_asset_graph()
    versions = {k.path[-1]: graph.get(k).code_version for k in graph.materializable_asset_keys}
    assert all(versions.values()), [k for k, v in versions.items() if not v]
    assert versions["protein_final"] == STAGE_LOGIC["protein_final"]
    assert versions["pair_classifier_kmer_aa3"].startswith(STAGE_LOGIC["pair_classifier"] + "-")
    # an embedder's own hash: kmer_aa3 and kmer_nt6 assets differ
    assert versions["pair_classifier_kmer_aa3"] != versions["pair_classifier_kmer_nt6"]
