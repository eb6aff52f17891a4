"""Training through Dagster: one MLflow run per materialization with everything logged,
two configs comparable side by side, and a mismatched checkpoint refused."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest

from segpair.training.checkpoint import CheckpointMismatchError, load_checkpoint


def _md(result, node):
    (mat,) = result.asset_materializations_for_node(node)
    return {k: v.value for k, v in mat.metadata.items()}


def test_one_mlflow_run_per_materialization_with_everything(trained):
    data_root, first, _second, defs = trained
    assert first.success
    md = _md(first, "pair_classifier_kmer_aa3")
    assert md["beats_majority"] and abs(md["initial_loss"] - np.log(2)) < 0.01
    assert "| 1nn |" in md["model_vs_baselines"] and "schema=HA-NA" in md["stratified"]
    assert md["roc_pr_curves"].startswith("![ROC and PR](data:image/png;base64,")
    mlflow.set_tracking_uri(defs.resources["mlflow_tracking"].tracking_uri)
    client = mlflow.MlflowClient()
    run = client.get_run(md["mlflow_run_id"])
    assert run.data.tags["dagster_run_id"] == first.run_id
    assert run.data.tags["dagster_partition"] == "simulated_v1|flu_a"
    assert run.data.params["schema_pairs"] == "HA-NA+PB2-PB1"
    assert run.data.params["data_version"] == "simulated_v1" and "n_train" in run.data.params
    for scorer in ("mlp", "logreg", "1nn"):
        assert f"test_{scorer}_auc_roc" in run.data.metrics
    assert len(client.get_metric_history(run.info.run_id, "val_loss")) == md["evaluations_run"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"roc_pr.png", "confusion_matrix.png", "learning_curve.png", "metrics.json",
            "stratified_metrics.csv", "model"} <= artifacts  # fmt: skip
    assert [a.path for a in client.list_artifacts(run.info.run_id, "model")] == ["model/model.pt"]


def test_two_configs_are_comparable(trained):
    _data_root, _first, second, defs = trained
    assert second.success
    mlflow.set_tracking_uri(defs.resources["mlflow_tracking"].tracking_uri)
    runs = mlflow.search_runs(
        experiment_names=["segpair-flu_a"],
        filter_string="tags.embedder = 'kmer_aa3' and tags.kind = 'pair_classifier'",
    )
    assert len(runs) == 2
    assert set(runs["params.slot_transform"]) == {"none", "l2"}
    assert set(runs["params.schema_pairs"]) == {"HA-NA+PB2-PB1", "HA-NA"}
    assert runs["metrics.test_mlp_auc_roc"].notna().all()


def test_mismatched_checkpoint_is_refused(trained):
    data_root = trained[0]
    path = data_root / "models" / "flu_a" / "simulated_v1" / "kmer_aa3" / "model.pt"
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
    assert 0 <= md["histogram_overlap"] <= 1
    assert md["similarity_histogram"].startswith("![cosine similarity](data:image/png;base64,")
    assert "| PB1 |" in md["per_function"]
    mlflow.set_tracking_uri(defs.resources["mlflow_tracking"].tracking_uri)
    run = mlflow.MlflowClient().get_run(md["mlflow_run_id"])
    assert run.data.tags["kind"] == "embedding_diagnostics"
    assert run.data.metrics["cohens_d"] == pytest.approx(md["cohens_d"], abs=1e-3)


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
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        ids = pool.map(_open_store, [args] * 4)
    assert len(set(ids)) == 1
