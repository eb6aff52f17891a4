"""Training through Dagster: one MLflow run per materialization with everything logged,
two configs comparable side by side, and a mismatched checkpoint refused."""

from __future__ import annotations

import re

import mlflow
import numpy as np
import pytest

from segpair.training.checkpoint import CheckpointMismatchError, load_checkpoint
from segpair.training.model_history import ModelHistory


def _md(result, node):
    (mat,) = result.asset_materializations_for_node(node)
    return {k: v.value for k, v in mat.metadata.items()}


def _rows(table_value) -> list[dict]:
    return [r.data for r in table_value.records]


def _significant_digits(x: float) -> int:
    return len(f"{abs(x):.15g}".replace(".", "").lstrip("0").rstrip("0") or "0")


def test_one_mlflow_run_per_materialization_with_everything(trained):
    data_root, first, _second, defs = trained
    assert first.success
    md = _md(first, "pair_classifier_kmer_aa3")
    assert md["beats_majority"] and abs(md["initial_loss"] - np.log(2)) < 0.01
    assert "1nn" in {r["scorer"] for r in _rows(md["model_vs_baselines"])}
    assert "schema=HA-NA" in {r["stratum"] for r in _rows(md["stratified"])}
    assert all(_significant_digits(v) <= 4 for r in _rows(md["stratified"])
               for v in r.values() if isinstance(v, float))  # fmt: skip
    tracking = defs.resources["mlflow_tracking"]
    mlflow.set_tracking_uri(tracking.tracking_uri)
    client = mlflow.MlflowClient()
    run = client.get_run(md["mlflow_run_id"])
    assert run.info.run_name == "kmer_aa3 HA-NA+PB2-PB1 flu_a/simulated_v1"
    assert run.data.tags["dagster_run_id"] == first.run_id
    assert run.data.tags["dagster_partition"] == "simulated_v1|flu_a"
    assert run.data.tags["dagster_run_url"] == f"{tracking.dagster_ui_url}/runs/{first.run_id}"
    assert run.data.tags["dagster_asset_url"] == (
        f"{tracking.dagster_ui_url}/assets/pair_classifier_kmer_aa3"
        "?view=partitions&partition=simulated_v1%7Cflu_a"
    )
    params = run.data.params
    assert params["schema_pairs"] == "HA-NA+PB2-PB1" and "n_train" in params
    assert {k: params[k] for k in ("embedder", "virus", "data_version", "kind")} == {
        "embedder": "kmer_aa3", "virus": "flu_a", "data_version": "simulated_v1",
        "kind": "pair_classifier",
    }  # fmt: skip
    val_loss = client.get_metric_history(run.info.run_id, "val_loss")
    assert len(val_loss) == md["evaluations_run"]
    assert all(_significant_digits(m.value) <= 4 for m in val_loss)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"roc_pr.png", "confusion_matrix.png", "learning_curve.png", "metrics.json",
            "stratified_metrics.csv", "model"} <= artifacts  # fmt: skip
    assert [a.path for a in client.list_artifacts(run.info.run_id, "model")] == ["model/model.pt"]


def test_metrics_name_the_model_first_and_are_rounded(trained):
    md = _md(trained[1], "pair_classifier_kmer_aa3")
    mlflow.set_tracking_uri(trained[3].resources["mlflow_tracking"].tracking_uri)
    metrics = mlflow.MlflowClient().get_run(md["mlflow_run_id"]).data.metrics
    final = {k: v for k, v in metrics.items() if not k.startswith(("train_", "val_"))}
    model = sorted(k for k in final if k.startswith("mlp_"))
    baselines = sorted(k for k in final if k.startswith("vs_"))
    assert sorted(final) == model + baselines  # the model's figures sort first
    for name in ("mlp_test_auc_roc", "mlp_test_tp", "mlp_auc_minus_best_baseline_ci_low",
                 "vs_1nn_test_auc_roc", "vs_gbt_test_auc_pr"):  # fmt: skip
        assert name in final
    assert not any(k.startswith("test_") for k in metrics)
    assert all(_significant_digits(v) <= 4 for v in final.values() if v != int(v))
    assert final["mlp_test_auc_roc"] == pytest.approx(md["test_auc_roc"], abs=1e-3)


def test_metadata_opens_with_the_verdict_and_links_to_mlflow(trained):
    md = _md(trained[1], "pair_classifier_kmer_aa3")
    assert list(md)[:2] == ["summary", "beats_best_baseline"]
    summary = md["summary"]
    assert len(summary) < 1000  # the Dagster UI shows shorter Markdown inline
    assert "| best baseline (" in summary and "| model minus baseline [95% CI] |" in summary
    assert "| worst stratum: " in summary and " TP, " in summary
    assert "| same-subtype negatives rejected | " in summary
    tracking = trained[3].resources["mlflow_tracking"]
    mlflow.set_tracking_uri(tracking.tracking_uri)
    run = mlflow.MlflowClient().get_run(md["mlflow_run_id"])
    low, high = (run.data.metrics[f"mlp_auc_minus_best_baseline_ci_{k}"] for k in ("low", "high"))
    verdict = ("**The model beats its best baseline" if low > 0 else
               "**A baseline beats the model" if high < 0 else
               "**The model does NOT beat its best baseline")  # fmt: skip
    assert summary.startswith(verdict) and md["beats_best_baseline"] == (low > 0)
    experiment = run.info.experiment_id
    assert md["mlflow_run"] == (f"{tracking.ui_url}/#/experiments/{experiment}/runs/"
                                f"{run.info.run_id}?workflowType=machine_learning")  # fmt: skip
    assert md["mlflow_experiment"].startswith(
        f"{tracking.ui_url}/#/experiments/{experiment}/runs?workflowType=machine_learning&"
    )
    assert len(md["plots"]) < 1000
    assert f"get-artifact?path=roc_pr.png&run_uuid={run.info.run_id}" in md["plots"]
    note = run.data.tags["mlflow.note.content"]
    assert note.startswith("Materialized by Dagster run [") and note.endswith(summary)
    assert f"]({run.data.tags['dagster_run_url']})" in note
    view = mlflow.MlflowClient().get_experiment(experiment).tags["mlflow.sharedViewState.segpair"]
    assert "metrics.`mlp_test_auc_roc`" in view and "params.`embedder`" in view


def test_make_mlflow_ui_prints_each_experiments_runs_link(trained, capsys):
    from resources.mlflow_tracking import print_experiment_links
    from resources.ui_links import mlflow_experiment_url

    tracking = trained[3].resources["mlflow_tracking"]
    print_experiment_links(tracking.tracking_uri, "http://mlflow.example:5000")
    mlflow.set_tracking_uri(tracking.tracking_uri)
    expected = [
        f"  {name}: {mlflow_experiment_url('http://mlflow.example:5000', e.experiment_id)}"
        for name in ("segpair-flu_a", "segpair-flu_a-diagnostics")
        for e in [mlflow.get_experiment_by_name(name)]
    ]
    assert capsys.readouterr().out.splitlines() == expected


def test_the_logged_mlflow_model_scores_pairs_as_the_checkpoint_does(trained):
    """The checkpoint is an MLflow model too: pyfunc, with a signature, loaded by MLflow
    alone, scoring pairs of embedding vectors like the checkpoint."""
    from segpair.embeddings.pipeline import open_store
    from segpair.training.train import predict

    data_root, first, _second, defs = trained
    md = _md(first, "pair_classifier_kmer_aa3")
    mlflow.set_tracking_uri(defs.resources["mlflow_tracking"].tracking_uri)
    logged = mlflow.pyfunc.load_model(md["mlflow_model_uri"])
    assert [s.name for s in logged.metadata.get_input_schema().inputs] == [
        "embedding_a", "embedding_b"]  # fmt: skip
    model, meta = load_checkpoint(data_root / "main_job_model_kmer_aa3.pt")
    with open_store(data_root, "flu_a", "simulated_v1", "kmer_aa3") as store:
        vectors = store.gather(store.index["brc_fea_id"].iloc[:12])
    a, b = vectors[:6].astype(np.float32), vectors[6:].astype(np.float32)
    out = logged.predict({"embedding_a": a, "embedding_b": b})
    np.testing.assert_allclose(out["score"], predict(model, a, b), rtol=1e-5)
    assert (out["same_isolate"] == (out["score"] >= meta["threshold"])).all()
    with pytest.raises(Exception, match=r"does not match expected shape \(-1, 8000\)"):
        logged.predict({"embedding_a": a, "embedding_b": b[:, :100]})  # the signature
    with pytest.raises(Exception, match="must both be"):
        logged.predict({"embedding_a": a, "embedding_b": b[:3]})


def test_two_configs_are_comparable(trained):
    _data_root, _first, second, defs = trained
    assert second.success
    mlflow.set_tracking_uri(defs.resources["mlflow_tracking"].tracking_uri)
    runs = mlflow.search_runs(
        experiment_names=["segpair-flu_a"],
        filter_string="params.embedder = 'kmer_aa3' and params.kind = 'pair_classifier'",
    )
    assert len(runs) == 2
    assert set(runs["params.slot_transform"]) == {"none", "l2"}
    assert set(runs["params.schema_pairs"]) == {"HA-NA+PB2-PB1", "HA-NA"}
    assert set(runs["tags.mlflow.runName"]) == {
        "kmer_aa3 HA-NA+PB2-PB1 flu_a/simulated_v1",
        "kmer_aa3 HA-NA flu_a/simulated_v1",
    }
    assert runs["metrics.mlp_test_auc_roc"].notna().all()


def test_every_materialization_and_the_mlflow_run_record_their_provenance(trained):
    """Commit, package versions, config hash, the raw data's fingerprint and the seeds, on
    every asset the main job materializes, and as tags of the classifier's MLflow run."""
    from segpair.provenance import content_fingerprint, derive_seed

    data_root, first, second, defs = trained
    fingerprint = content_fingerprint(data_root / "raw" / "flu_a" / "simulated_v1")
    materializations = first.get_asset_materialization_events()
    assert len(materializations) >= 10
    for event in materializations:
        md = event.step_materialization_data.materialization.metadata
        where = event.asset_key.to_user_string()
        assert md["provenance/data_fingerprint"].value == fingerprint, where
        assert re.fullmatch(r"[0-9a-f]{12}( \(dirty\))?", md["provenance/git_commit"].value), where
        assert len(md["provenance/config_hash"].value) == 12, where
        assert md["provenance/package_versions"].value["dagster"], where
        assert md["provenance/seeds"].value["master_seed"] == 42, where
    pairs = _md(first, "segment_pairs")["provenance/seeds"]
    assert pairs == {"master_seed": 42, "dataset": derive_seed(42, "dataset")}
    md = _md(first, "pair_classifier_kmer_aa3")
    assert md["provenance/seeds"]["training"] == derive_seed(42, "training")
    # a different config, a different hash
    assert (
        _md(second, "pair_classifier_kmer_aa3")["provenance/config_hash"]
        != (md["provenance/config_hash"])
    )
    mlflow.set_tracking_uri(defs.resources["mlflow_tracking"].tracking_uri)
    tags = mlflow.MlflowClient().get_run(md["mlflow_run_id"]).data.tags
    assert tags["provenance/config_hash"] == md["provenance/config_hash"]
    assert tags["provenance/master_seed"] == "42"
    assert tags["provenance/seed/training"] == str(derive_seed(42, "training"))
    assert tags["provenance/data_fingerprint"] == fingerprint
    assert tags["provenance/version/torch"] == md["provenance/package_versions"]["torch"]
    assert tags["provenance/git_commit"].startswith(md["provenance/git_commit"][:12])


def test_two_configurations_leave_two_model_folders(trained):
    """Retraining with other schema pairs adds a run folder; the earlier model stays
    readable, `latest` names the newest, and the scoring asset's default follows it."""
    data_root, first, second, _defs = trained
    history = ModelHistory(data_root / "models" / "flu_a" / "simulated_v1" / "kmer_aa3")
    runs = history.runs()
    assert len(runs) == 2 and [r["latest"] for r in runs] == [True, False]
    (newest,) = second.asset_materializations_for_node("pair_classifier_kmer_aa3")
    (older,) = first.asset_materializations_for_node("pair_classifier_kmer_aa3")
    assert history.latest_name() == newest.metadata["model_run"].value
    assert newest.metadata["model_run"].value.startswith("HA-NA-")
    assert older.metadata["model_run"].value.startswith("HA-NA+PB2-PB1-")
    _model, meta = load_checkpoint(history.checkpoint(older.metadata["model_run"].value))
    assert meta["schema_pairs"] == [["HA", "NA"], ["PB2", "PB1"]]
    assert newest.metadata["earlier_runs"].value == 1


def test_mismatched_checkpoint_is_refused(trained):
    data_root = trained[0]
    path = ModelHistory(data_root / "models" / "flu_a" / "simulated_v1" / "kmer_aa3").checkpoint()
    model, meta = load_checkpoint(path)
    assert meta["embedder"] == "kmer_aa3" and meta["dim"] == 8000
    load_checkpoint(path, expected_signature=meta["signature"], expected_dim=8000)
    with pytest.raises(CheckpointMismatchError, match="signature"):
        load_checkpoint(path, expected_signature="0123456789abcdef")
    with pytest.raises(CheckpointMismatchError, match="8000-dimensional"):
        load_checkpoint(path, expected_dim=4096)


def test_embedding_diagnostics_in_metadata_and_mlflow(trained):
    _data_root, first, _second, defs = trained
    md = _md(first, "embedding_diagnostics_kmer_aa3")
    assert {"cohens_d", "histogram_overlap", "positive_mean", "negative_mean"} <= md.keys()
    assert 0 <= md["histogram_overlap"] <= 1 and _significant_digits(md["cohens_d"]) <= 4
    assert "PB1" in {r["function"] for r in _rows(md["per_function"])}
    mlflow.set_tracking_uri(defs.resources["mlflow_tracking"].tracking_uri)
    run = mlflow.MlflowClient().get_run(md["mlflow_run_id"])
    assert f"get-artifact?path=similarity.png&run_uuid={run.info.run_id}" in md[
        "similarity_histogram"]  # fmt: skip
    assert run.data.tags["kind"] == "embedding_diagnostics"
    assert run.data.params["embedder"] == "kmer_aa3"
    assert run.info.run_name == "kmer_aa3 diagnostics flu_a/simulated_v1"
    # their own experiment: the classifiers' runs table lists classifiers only
    experiment = mlflow.get_experiment(run.info.experiment_id)
    assert experiment.name == "segpair-flu_a-diagnostics"
    assert run.data.metrics["cohens_d"] == pytest.approx(md["cohens_d"], abs=1e-3)


def test_every_metadata_key_is_explained_in_the_readme(trained):
    from segpair_assets_tests.conftest import REPO_ROOT

    readme = (REPO_ROOT / "README.md").read_text()
    for node in ("pair_classifier_kmer_aa3", "embedding_diagnostics_kmer_aa3"):
        missing = [k for k in _md(trained[1], node) if f"`{k}`" not in readme]
        assert not missing, f"{node}: README does not explain {missing}"


def test_streaming_from_hdf5_trains_the_same_model_as_gathering(trained):
    """Embeddings too large for the memory budget are read from the HDF5 cache batch by
    batch; the result equals the in-memory run (same rows, same seeded order)."""
    import pandas as pd

    from segpair.embeddings.pipeline import open_store
    from segpair.training.pipeline import run_training
    from segpair.training.train import TrainConfig

    data_root = trained[0]
    pairs = pd.read_parquet(
        data_root / "processed" / "flu_a" / "simulated_v1" / "segment_pairs.parquet"
    )
    config = TrainConfig(hidden=[32], steps=100)
    outcomes = {}
    with open_store(data_root, "flu_a", "simulated_v1", "kmer_aa3") as store:
        for budget in (8.0, 1e-6):
            outcomes[budget] = run_training(pairs, store, [["HA", "NA"]], config,
                                            memory_budget_gb=budget)  # fmt: skip
    in_memory, streamed = outcomes[8.0], outcomes[1e-6]
    assert in_memory.embeddings_in_memory and not streamed.embeddings_in_memory
    assert streamed.result.history == in_memory.result.history
    for scorer in ("mlp", "logreg", "1nn", "knn", "gbt"):
        np.testing.assert_allclose(streamed.scores[scorer], in_memory.scores[scorer], rtol=1e-5)


def _open_store(uri_and_root) -> str:
    from resources.mlflow_tracking import MlflowTracking

    uri, root = uri_and_root
    return MlflowTracking(tracking_uri=uri, artifact_root=root).experiment_id("segpair-race")


def test_parallel_steps_open_a_new_mlflow_store_safely(tmp_path):
    """The multiprocess executor runs several training steps at once; on a fresh SQLite
    store they must not race creating its tables or the experiment (found end to end)."""
    import multiprocessing

    from resources.mlflow_tracking import default_tracking_uri

    args = (default_tracking_uri(str(tmp_path)), str(tmp_path / "artifacts"))
    pool = multiprocessing.get_context("spawn").Pool(4)
    try:
        ids = pool.map(_open_store, [args] * 4)
    finally:  # close + join: the workers exit on their own, whatever signals they ignore
        pool.close()
        pool.join()
    assert len(set(ids)) == 1
