"""The code location loads cleanly: everything is defined, described, and warning-free."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import dagster as dg
import pytest

from segpair_assets_tests.conftest import REPO_ROOT


def test_definitions_load_and_validate(tmp_path):
    from segpair_assets.definitions import build_definitions

    defs = build_definitions(str(tmp_path))
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    names = {k.to_user_string() for k in graph.get_all_asset_keys()}
    embedders = ("kmer_aa3", "kmer_nt6", "esm2", "fastesm2", "nucleotide_transformer",
                 "kmer_nt6_aa3", "nt_esm2")  # fmt: skip
    stages = ("master_embeddings", "pair_classifier", "embedding_diagnostics",
              "isolate_pair_scores", "cross_version_evaluation", "vector_table",
              "embedding_map")  # fmt: skip
    assert names == {
        "raw_files",
        "protein_final",
        "cooccurrence_sets",
        "segment_pairs",
        "segment_conservation",
        *(f"{stage}_{e}" for stage in stages for e in embedders),
    }
    main = defs.resolve_job_def("segpair_main_job")
    main_assets = {k.to_user_string() for k in main.asset_layer.selected_asset_keys}
    assert main_assets == {
        "protein_final",
        "master_embeddings_kmer_aa3",
        "master_embeddings_kmer_nt6",
        "cooccurrence_sets",
        "segment_pairs",
        "pair_classifier_kmer_aa3",
        "pair_classifier_kmer_nt6",
        "embedding_diagnostics_kmer_aa3",
        "embedding_diagnostics_kmer_nt6",
        "isolate_pair_scores_kmer_aa3",
        "isolate_pair_scores_kmer_nt6",
        "cross_version_evaluation_kmer_aa3",
        "cross_version_evaluation_kmer_nt6",
        "vector_table_kmer_aa3",
        "vector_table_kmer_nt6",
        "embedding_map_kmer_aa3",
        "embedding_map_kmer_nt6",
        "segment_conservation",
    }
    for key in graph.get_all_asset_keys():
        assert graph.get(key).description, f"{key} has no description"

    # language-model embedding shards share the "gpu" concurrency pool (limit in
    # dagster.yaml) and go to the Celery "gpu" queue; k-mer embedding is one CPU step
    def steps(name: str) -> dict[str, tuple]:
        node = defs.resolve_assets_def(dg.AssetKey(f"master_embeddings_{name}")).node_def
        ops = node.iterate_op_defs() if isinstance(node, dg.GraphDefinition) else [node]
        return {op.name: (op.pool, op.tags.get("dagster-celery/queue")) for op in ops}

    for name in ("esm2", "fastesm2", "nucleotide_transformer"):
        assert steps(name) == {
            f"plan_{name}_shards": (None, "gpu"),
            f"embed_{name}_shard": ("gpu", "gpu"),
            f"commit_{name}_cache": (None, "gpu"),
        }
    assert steps("kmer_aa3") == {"master_embeddings_kmer_aa3": (None, None)}
    # a merged cache reads its sources' caches: one CPU step, even over language models
    assert steps("nt_esm2") == {"master_embeddings_nt_esm2": (None, None)}


def test_loading_the_code_location_warns_about_nothing(tmp_path):
    """Import in a fresh interpreter with every warning recorded: no deprecated or preview API."""
    code = (
        "import warnings\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import segpair_assets.definitions as d\n"
        "    d.defs.resolve_asset_graph()\n"
        "for w in caught:\n"
        "    print(f'{w.category.__name__}: {w.message} ({w.filename})')\n"
    )
    env = {**os.environ, "SEGPAIR_DATA_ROOT": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO_ROOT
    )
    assert out.returncode == 0, out.stderr
    # Dagster's own conversion of an observable source (raw_files) reads its op's deprecated
    # `version` property (dagster/_core/definitions/external_asset.py): not a call of ours.
    internal = "`OpDefinition.version` is deprecated"
    ours = [ln for ln in out.stdout.splitlines()
            if ("segpair" in ln or "Deprecat" in ln) and internal not in ln]  # fmt: skip
    assert not ours, "\n".join(ours)


def test_dagster_cli_validates_the_workspace(tmp_path):
    env = {**os.environ, "SEGPAIR_DATA_ROOT": str(tmp_path), "DAGSTER_HOME": str(tmp_path)}
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    with warnings.catch_warnings():
        out = subprocess.run(
            [dagster, "definitions", "validate", "-w", "workspace.yaml"],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO_ROOT,
        )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "All code locations passed validation" in out.stdout + out.stderr


def test_executor_is_chosen_by_the_environment(monkeypatch, tmp_path):
    from segpair_assets.definitions import build_definitions
    from segpair_assets.executors import executor_for
    from segpair_assets.settings import Settings

    def executor_from_environment():
        return executor_for(Settings.from_environment())

    monkeypatch.delenv("SEGPAIR_EXECUTOR", raising=False)
    assert executor_from_environment() is dg.multiprocess_executor
    monkeypatch.setenv("SEGPAIR_EXECUTOR", "celery")
    monkeypatch.setenv("SEGPAIR_CELERY_BROKER", "redis://broker:6379/0")
    job = build_definitions(str(tmp_path)).resolve_job_def("segpair_language_model_job")
    assert job.executor_def.name == "segpair_celery"
    monkeypatch.setenv("SEGPAIR_EXECUTOR", "in_process")
    assert executor_from_environment() is dg.in_process_executor
    monkeypatch.setenv("SEGPAIR_EXECUTOR", "dask")
    with pytest.raises(ValueError, match="'multiprocess' \\(default\\), 'in_process' or 'celery'"):
        executor_from_environment()


def test_lineage_groups_by_role_with_everything_that_needs_weights_apart(tmp_path):
    """Issue 15: one `models` group mixed every role and embedder, and "Materialize all"
    there launched the language-model assets. Now a group per role; every asset that needs
    weights sits in `language_models`, says so first, and no other group holds one."""
    from segpair_assets.assets.per_embedder import NEEDS_WEIGHTS_TAG
    from segpair_assets.definitions import build_definitions

    defs = build_definitions(str(tmp_path))
    graph = defs.resolve_asset_graph()
    groups: dict[str, set[str]] = {}
    for key in graph.get_all_asset_keys():
        groups.setdefault(graph.get(key).group_name, set()).add(key.to_user_string())
    lms = ("esm2", "fastesm2", "nucleotide_transformer", "nt_esm2")
    kmers = ("kmer_aa3", "kmer_nt6", "kmer_nt6_aa3")
    stages = ("master_embeddings", "pair_classifier", "cross_version_evaluation",
              "embedding_diagnostics", "isolate_pair_scores", "vector_table",
              "embedding_map")  # fmt: skip
    assert groups == {
        "preprocessing": {"raw_files", "protein_final"},
        "embeddings": {f"{s}_{e}" for s in ("master_embeddings", "vector_table") for e in kmers},
        "pairs": {"cooccurrence_sets", "segment_pairs"},
        "classifiers": {f"{s}_{e}" for s in stages[1:3] for e in kmers},
        "diagnostics": {"segment_conservation"}
        | {f"{s}_{e}" for s in ("embedding_diagnostics", "embedding_map") for e in kmers},
        "scoring": {f"isolate_pair_scores_{e}" for e in kmers},
        "language_models": {f"{s}_{e}" for s in stages for e in lms},
    }
    for name in groups["language_models"]:
        node = graph.get(dg.AssetKey(name))
        assert node.tags[NEEDS_WEIGHTS_TAG] == "true"
        assert node.description.startswith("NEEDS the "), name
    # "Materialize all" in any other group needs no weights: it runs a part of the main
    # job, or the opt-in kmer_nt6_aa3 (kept out of the main job for its time budget)
    main = defs.resolve_job_def("segpair_main_job").asset_layer.selected_asset_keys
    opt_in = {f"{s}_kmer_nt6_aa3" for s in stages}
    assert {k.to_user_string() for k in main} == set().union(
        *(names for group, names in groups.items() if group != "language_models")
    ) - opt_in - {"raw_files"}  # an observable source: observed, never materialized
    job = defs.resolve_job_def("segpair_opt_in_job").asset_layer.selected_asset_keys
    assert opt_in < {k.to_user_string() for k in job} <= opt_in | {
        k.to_user_string() for k in main}  # fmt: skip


def test_a_virus_job_runs_its_own_virus_partitions_only(tmp_path, dagster_instance, monkeypatch):
    """Issue 15: `segpair_flu_a_job`'s launchpad offered bunya partitions with the flu
    preset. Dagster gives a job its assets' partitions, so the preset is per partition: a
    bunya partition has none (the launchpad shows the refusal), and a run started around
    the launchpad fails at its first asset, before anything is written."""
    from segpair_assets.definitions import build_definitions
    from segpair_assets.partitions import DATA_VERSION_PARTITIONS_NAME, partition_tags

    monkeypatch.setenv("SEGPAIR_DATA_ROOT", str(tmp_path / "data"))
    job = build_definitions(str(tmp_path / "data")).resolve_job_def("segpair_flu_a_job")
    preset = job.get_run_config_for_partition_key("v1|flu_a")
    assert preset["ops"]["segment_pairs"]["config"]["hard_negative_share"] == 0.5
    refusal = "segpair_flu_a_job runs flu_a partitions only, and v1|bunya is a bunya partition"
    with pytest.raises(ValueError, match=refusal):
        job.get_run_config_for_partition_key("v1|bunya")

    dagster_instance.add_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME, ["v1"])
    result = job.execute_in_process(
        run_config=preset, instance=dagster_instance, tags=partition_tags("bunya", "v1"),
        raise_on_error=False, asset_selection=[dg.AssetKey("protein_final")],
    )  # fmt: skip
    assert not result.success
    [failure] = result.get_step_failure_events()
    assert failure.step_key == "protein_final"
    assert "segpair_bunya_job" in failure.step_failure_data.error.cause.message
    assert not (tmp_path / "data").exists()
