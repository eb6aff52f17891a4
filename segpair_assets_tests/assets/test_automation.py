"""Refresh automation: data-version discovery, the sensor, the weekly schedules, the per-virus
presets and eager automation, evaluated against a real (temporary) Dagster instance."""

from __future__ import annotations

import datetime as dt
import json
import os
import time

import dagster as dg
import pytest

from resources.storage import SegpairStorage
from segpair.data_versions import complete_folders, latest_versions, scan_raw_root
from segpair.simulator import SimulationConfig, simulate_population, write_data_version
from segpair_assets.definitions import build_definitions
from segpair_assets.jobs import virus_preset
from segpair_assets.partitions import DATA_VERSION_PARTITIONS_NAME, partition_key


def _write(folder, files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)


def test_discovery_marker_stable_listing_and_names(tmp_path):
    raw = tmp_path / "raw"
    _write(raw / "flu_a" / "v1", {"manifest.toml": 'format = "fasta"\n', "a.fasta": ">x\nA\n"})
    _write(raw / "flu_a" / "v2", {"a.fasta": ">x\nA\n"})  # no manifest: needs a stable listing
    _write(raw / "flu_a" / "bad|name", {"a.fasta": ">x\nA\n"})
    _write(raw / "flu_a" / ".copying", {"a.fasta": ">x\nA\n"})
    _write(raw / "not_a_virus" / "v1", {"manifest.toml": ""})
    (raw / "bunya" / "empty").mkdir(parents=True)
    found, skipped = scan_raw_root(raw, ["flu_a", "bunya"])
    assert [f.key for f in found] == ["flu_a/v1", "flu_a/v2"]
    assert len(skipped) == 1 and "bad|name" in skipped[0] and "rename" in skipped[0]

    complete, pending = complete_folders(found, {}, now=1000.0, stable_seconds=60)
    assert [f.key for f in complete] == ["flu_a/v1"] and list(pending) == ["flu_a/v2"]
    complete, pending = complete_folders(found, pending, now=1030.0, stable_seconds=60)
    assert [f.key for f in complete] == ["flu_a/v1"]  # unchanged for 30 s only
    # a file still growing restarts the clock
    (raw / "flu_a" / "v2" / "a.fasta").write_text(">x\nAC\n")
    grown, _ = scan_raw_root(raw, ["flu_a"])
    complete, pending = complete_folders(grown, pending, now=1070.0, stable_seconds=60)
    assert [f.key for f in complete] == ["flu_a/v1"] and pending["flu_a/v2"][1] == 1070.0
    complete, pending = complete_folders(grown, pending, now=1131.0, stable_seconds=60)
    assert [f.key for f in complete] == ["flu_a/v1", "flu_a/v2"] and not pending

    os.utime(raw / "flu_a" / "v1" / "a.fasta", (time.time() + 100, time.time() + 100))
    found, _ = scan_raw_root(raw, ["flu_a"])
    assert latest_versions(found)["flu_a"].version == "v1"


@pytest.fixture
def root_with_new_version(tmp_path, bunya):
    config = SimulationConfig(n_isolates=60, seed=3)
    write_data_version(
        simulate_population(bunya, config), tmp_path / "raw" / "bunya" / "sim_v2", bunya, config
    )
    return tmp_path


def test_sensor_adds_the_partition_and_requests_the_preset_job_once(root_with_new_version):
    root = root_with_new_version
    defs = build_definitions(str(root))
    sensor = defs.resolve_sensor_def("new_data_version_sensor")
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(
            instance=instance, resources={"storage": SegpairStorage(data_root=str(root))},
            definitions=defs,
        )  # fmt: skip
        result = sensor(ctx)
        (request,) = result.run_requests
        assert request.partition_key == partition_key("bunya", "sim_v2")
        assert request.job_name == "segpair_bunya_job"
        assert request.tags["segpair/trigger"] == "new_data_version_sensor"
        (add,) = result.dynamic_partitions_requests
        assert add.partitions_def_name == DATA_VERSION_PARTITIONS_NAME
        assert list(add.partition_keys) == ["sim_v2"]
        # the next tick knows the folder: nothing
        again = sensor(
            dg.build_sensor_context(
                instance=instance, cursor=result.cursor, definitions=defs,
                resources={"storage": SegpairStorage(data_root=str(root))},
            )
        )  # fmt: skip
        assert not again.run_requests and not again.dynamic_partitions_requests
        assert json.loads(again.cursor)["requested"] == ["bunya/sim_v2"]


def test_weekly_schedule_refreshes_the_newest_registered_version(root_with_new_version):
    root = root_with_new_version
    defs = build_definitions(str(root))
    schedule = defs.resolve_schedule_def("weekly_refresh_bunya")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    when = dt.datetime(2026, 11, 23, 3, tzinfo=dt.UTC)
    with dg.instance_for_test() as instance:
        ctx = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=when,
            resources={"storage": SegpairStorage(data_root=str(root))},
            repository_def=defs.get_repository_def(),
        )  # fmt: skip
        assert isinstance(schedule.evaluate_tick(ctx).skip_message, str)  # not registered yet
        instance.add_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME, ["sim_v2"])
        (request,) = schedule.evaluate_tick(ctx).run_requests
        assert request.partition_key == partition_key("bunya", "sim_v2")
        assert request.run_key == "weekly:2026-11-23:bunya/sim_v2"


def test_presets_are_valid_run_config_of_each_virus_job(registry, tmp_path):
    defs = build_definitions(str(tmp_path))
    flu = virus_preset(registry.get("flu_a"))["ops"]
    assert flu["segment_pairs"]["config"]["selected_functions"][:3] == ["PB2", "PB1", "PA"]
    assert flu["pair_classifier_kmer_aa3"]["config"]["schema_pairs"] == [
        ["HA", "NA"],
        ["PB2", "PB1"],
    ]
    bunya = virus_preset(registry.get("bunya"))["ops"]
    assert bunya["pair_classifier_kmer_nt6"]["config"]["schema_pairs"] == [
        ["GP", "N"],
        ["RdRp", "GP"],
    ]
    for virus in registry.names:
        job = defs.resolve_job_def(f"segpair_{virus}_job")
        # the job's default config is the preset, and it validates against the assets' schemas
        assert job.run_config_schema.config_type is not None
        preset = virus_preset(registry.get(virus))
        assert dg.validate_run_config(job, preset)


def test_eager_automation_requests_downstream_after_an_upstream_materialization(tmp_path):
    key = partition_key("flu_a", "simulated_v1")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME, ["simulated_v1"])
        off = build_definitions(str(tmp_path), eager_automation=False)
        assert not dg.evaluate_automation_conditions(off, instance).total_requested
        defs = build_definitions(str(tmp_path), eager_automation=True)
        first = dg.evaluate_automation_conditions(defs, instance)
        result = defs.resolve_job_def("segpair_main_job").execute_in_process(
            instance=instance, partition_key=key, asset_selection=[dg.AssetKey("protein_final")]
        )
        assert result.success
        after = dg.evaluate_automation_conditions(defs, instance, cursor=first.cursor)
        # everything weight-free downstream follows, in one tick; language models do not
        for name in ("master_embeddings_kmer_aa3", "cooccurrence_sets", "segment_pairs",
                     "pair_classifier_kmer_aa3", "isolate_pair_scores_kmer_nt6"):  # fmt: skip
            assert after.get_requested_partitions(dg.AssetKey(name)) == {key}, name
        for name in ("master_embeddings_esm2", "pair_classifier_esm2", "protein_final"):
            assert after.get_num_requested(dg.AssetKey(name)) == 0, name
        # before anything was materialized, nothing was requested
        assert first.total_requested == 0


def _tick(sensor, instance, defs, root, cursor=None):
    return sensor(
        dg.build_sensor_context(
            instance=instance, cursor=cursor, definitions=defs,
            resources={"storage": SegpairStorage(data_root=str(root))},
        )
    )  # fmt: skip


def _record_run(instance, status, partition, failure_reason=None) -> dg.DagsterRun:
    """A run of the partition's job in `status`, as the sensor sees it in the run storage."""
    tags = {"dagster/partition": partition}
    if failure_reason:
        tags["dagster/failure_reason"] = failure_reason
    run = dg.DagsterRun(job_name="segpair_bunya_job", status=status, tags=tags)
    return instance.add_run(run)


def test_a_version_whose_run_died_is_requested_again_a_step_failure_is_not(
    root_with_new_version,
):
    """kill -9 leaves a run STARTED; run monitoring (instance/dagster.yaml) marks it failed,
    and the next tick requests the version again. An error in a step is not retried."""
    root = root_with_new_version
    defs = build_definitions(str(root))
    sensor = defs.resolve_sensor_def("new_data_version_sensor")
    pk = str(partition_key("bunya", "sim_v2"))
    with dg.instance_for_test() as instance:
        first = _tick(sensor, instance, defs, root)
        assert [r.run_key for r in first.run_requests] == ["data_version:bunya/sim_v2"]
        # the requested run starts, and its worker is killed: it stays STARTED
        run = _record_run(instance, dg.DagsterRunStatus.STARTED, pk)
        busy = _tick(sensor, instance, defs, root, first.cursor)
        assert not busy.run_requests  # in progress, as far as anyone can tell
        # run monitoring finds the worker gone and marks the run failed, with no reason tag
        instance.report_run_failed(run, "Detected run worker status FAILED. Marking run failed.")
        again = _tick(sensor, instance, defs, root, busy.cursor)
        (request,) = again.run_requests
        assert request.run_key == "data_version:bunya/sim_v2:rerun1"
        assert request.partition_key == partition_key("bunya", "sim_v2")
        assert request.tags["segpair/rerun_of"] == run.run_id
        assert not again.dynamic_partitions_requests  # the partition exists already
        # that run fails in a step (bad input): a clear error in the UI, no re-request
        _record_run(instance, dg.DagsterRunStatus.FAILURE, pk, "STEP_FAILURE")
        assert not _tick(sensor, instance, defs, root, again.cursor).run_requests


def test_a_version_whose_runs_keep_dying_is_requested_twice_more_then_left(
    root_with_new_version,
):
    root = root_with_new_version
    defs = build_definitions(str(root))
    sensor = defs.resolve_sensor_def("new_data_version_sensor")
    pk = str(partition_key("bunya", "sim_v2"))
    with dg.instance_for_test() as instance:
        cursor = _tick(sensor, instance, defs, root).cursor
        keys = []
        for _ in range(4):
            _record_run(instance, dg.DagsterRunStatus.FAILURE, pk, "START_TIMEOUT")
            result = _tick(sensor, instance, defs, root, cursor)
            keys += [r.run_key for r in result.run_requests]
            cursor = result.cursor
        assert keys == ["data_version:bunya/sim_v2:rerun1", "data_version:bunya/sim_v2:rerun2"]
        assert json.loads(cursor)["reruns"] == {"bunya/sim_v2": 2}


def test_the_sensor_observes_raw_files_whose_content_changed(root_with_new_version):
    """A registered folder is observed (content fingerprint as raw_files' data version) on
    the tick that sees it, again only when its listing changes."""
    root = root_with_new_version
    defs = build_definitions(str(root))
    sensor = defs.resolve_sensor_def("new_data_version_sensor")
    resources = {"storage": SegpairStorage(data_root=str(root))}
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME, ["sim_v2"])

        def tick(cursor=None):
            context = dg.build_sensor_context(
                instance=instance, cursor=cursor, resources=resources, definitions=defs
            )
            return sensor(context)

        first = tick()
        (seen,) = first.asset_events
        assert seen.asset_key == dg.AssetKey("raw_files")
        assert seen.partition == str(partition_key("bunya", "sim_v2"))
        version = seen.tags["dagster/data_version"]
        assert not tick(first.cursor).asset_events  # unchanged: nothing
        (root / "raw" / "bunya" / "sim_v2" / "notes.txt").write_text("changed\n")
        (again,) = tick(first.cursor).asset_events
        assert again.tags["dagster/data_version"] != version


def test_a_language_model_with_weights_joins_the_refresh(tmp_path, bunya):
    """With a tiny local ESM-2 configured, the sensor's run also builds that model's cache
    for the new version; without weights the job leaves it out and says why."""
    from segpair_assets.settings import Settings
    from segpair_assets_tests.tiny_models import build_tiny_esm2

    root = tmp_path / "data"
    config = SimulationConfig(n_isolates=8, seed=3)
    folder = root / "raw" / "bunya" / "sim_v2"
    write_data_version(simulate_population(bunya, config), folder, bunya, config)
    bare = build_definitions(str(root), settings=Settings(data_root=str(root)))
    job = bare.resolve_job_def("segpair_bunya_job")
    assert dg.AssetKey("master_embeddings_esm2") not in job.asset_layer.selected_asset_keys
    sensor_text = bare.resolve_sensor_def("new_data_version_sensor").description
    assert "no weights are configured" in sensor_text

    model = build_tiny_esm2(tmp_path / "tiny_esm2")
    settings = Settings(data_root=str(root), models={"esm2": str(model)})
    defs = build_definitions(str(root), settings=settings)
    sensor = defs.resolve_sensor_def("new_data_version_sensor")
    assert "esm2" in sensor.description
    with dg.instance_for_test() as instance:
        result = sensor(dg.build_sensor_context(
            instance=instance, definitions=defs,
            resources={"storage": SegpairStorage(data_root=str(root))},
        ))  # fmt: skip
        (request,) = result.run_requests
        instance.add_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME, ["sim_v2"])
        job = defs.resolve_job_def(request.job_name)
        assert {"master_embeddings_esm2", "pair_classifier_esm2", "isolate_pair_scores_esm2"} <= {
            k.path[-1] for k in job.asset_layer.selected_asset_keys
        }
        run = job.execute_in_process(
            instance=instance, partition_key=request.partition_key, tags=request.tags,
            asset_selection=[dg.AssetKey("protein_final"), dg.AssetKey("master_embeddings_esm2")],
        )  # fmt: skip
        assert run.success
        (mat,) = run.asset_materializations_for_node("master_embeddings_esm2")
        assert mat.metadata["model_name"].value == str(model)
        assert mat.metadata["computed"].value > 0
