"""A model trained on one simulated data version, evaluated on another: from the CLI and
as the cross_version_evaluation asset, with its baselines side by side."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from segpair.simulator import SimulationConfig, simulate_population, write_data_version
from segpair_assets.cli import main
from segpair_assets.partitions import DATA_VERSION_PARTITIONS_NAME, partition_key


def _second_version(data_root, flu):
    """Other genomes of the same simulated population model: a new seed, fewer isolates."""
    folder = data_root / "raw" / "flu_a" / "simulated_v2"
    if not folder.exists():
        config = SimulationConfig(n_isolates=120, seed=7)
        write_data_version(simulate_population(flu, config), folder, flu, config)
    return folder


def test_cli_evaluates_a_model_on_another_data_version(trained, flu, tmp_path, capsys):
    data_root = trained[0]
    folder = _second_version(data_root, flu)
    out = tmp_path / "evaluated.tsv"
    model = data_root / "main_job_model_kmer_aa3.pt"
    assert main(["evaluate", "-m", str(model), "-i", str(folder), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    for scorer in ("mlp", "logreg", "1nn", "knn", "gbt"):
        assert f"\n{scorer:>6} " in printed or f"\n{scorer} " in printed, printed
    assert "model trained on flu_a x simulated_v1" in printed
    pairs = pd.read_csv(out, sep="\t")
    assert set(pairs["label"]) == {0, 1}
    assert {"score_mlp", "score_1nn", "score_gbt", "seen_sequences"} <= set(pairs.columns)
    # the training rules hold: no negative inside one isolate, hard negatives present
    negatives = pairs[pairs["label"] == 0]
    assert (negatives["assembly_a"] != negatives["assembly_b"]).all()
    assert (negatives["neg_type"] != "random").any()
    assert set(pairs["seen_sequences"]) <= {0, 1, 2}


def test_the_asset_evaluates_the_other_version_s_model(trained, flu, tmp_path):
    data_root, _first, _second, defs = trained
    _second_version(data_root, flu)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME, ["simulated_v2"])
        names = ["protein_final", "master_embeddings_kmer_aa3", "cross_version_evaluation_kmer_aa3"]
        result = defs.resolve_job_def("segpair_main_job").execute_in_process(
            instance=instance,
            partition_key=partition_key("flu_a", "simulated_v2"),
            asset_selection=[dg.AssetKey(n) for n in names],
        )
    assert result.success
    (mat,) = result.asset_materializations_for_node("cross_version_evaluation_kmer_aa3")
    md = {k: v.value for k, v in mat.metadata.items()}
    assert md["evaluated"] and md["model_data_version"] == "simulated_v1"
    assert md["pairs"] == md["positives"] + md["negatives"] > 0
    assert "| 1nn |" in md["scorers"] and "| gbt |" in md["scorers"]
    report = data_root / "models" / "flu_a" / "simulated_v2" / "kmer_aa3" / "evaluations"
    assert (report / "simulated_v1" / "report.json").exists()
