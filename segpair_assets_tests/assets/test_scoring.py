"""The scoring path: pairs built and oriented as in training, a planted mis-join found,
the CLI on files, and an embedder that differs from the model's refused."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from segpair.errors import InputDataError
from segpair.scoring import (
    PairScorer,
    isolate_pairs,
    isolate_summary,
    orient,
    read_proteins,
    requested_pairs,
)
from segpair.training.checkpoint import CheckpointMismatchError
from segpair_assets.cli import main as cli_main


def _proteins(rows):
    return pd.DataFrame(rows, columns=["brc_fea_id", "assembly_id", "segment", "function"])


def test_isolate_pairs_are_cross_segment_and_oriented_like_training(flu):
    proteins = _proteins([
        ("na1", "iso1", "NA", "NA"), ("ha1", "iso1", "HA", "HA"), ("pb1", "iso1", "PB1", "PB1"),
        ("m1", "iso1", "M", "M1"), ("m2", "iso1", "M", "M2"), ("ha2", "iso2", "HA", "HA"),
    ])  # fmt: skip
    pairs = isolate_pairs(proteins, flu, [["NA", "HA"]], only_training_schema=True)
    # the model saw NA first: the pair is given to it that way round; iso2 has no NA
    assert pairs[["brc_a", "brc_b", "schema_pair"]].values.tolist() == [["na1", "ha1", "NA-HA"]]
    every = isolate_pairs(proteins, flu, [["NA", "HA"]], only_training_schema=False)
    # M1 and M2 share a segment: never paired; 4 proteins on 4 segments -> C(4,2) + M2's 3
    assert len(every) == 9 and not (every["function_a"] + every["function_b"]).eq("M1M2").any()
    assert every["in_training_schema"].sum() == 1
    # trained on all pairs: registry order (PB1 before HA before NA)
    all_mode = isolate_pairs(proteins, flu, None)
    oriented = set(zip(all_mode["function_a"], all_mode["function_b"], strict=True))
    assert {("PB1", "HA"), ("HA", "NA")} <= oriented


def test_requested_pairs_orient_and_name_unknown_ids(flu):
    proteins = _proteins([("ha1", "iso1", "HA", "HA"), ("na2", "iso2", "NA", "NA")])
    proteins = proteins.assign(function=["HA", "NA"])
    wanted = pd.DataFrame({"id_a": ["na2"], "id_b": ["ha1"]})
    pairs = requested_pairs(proteins, wanted, flu, [["HA", "NA"]], "pairs.tsv")
    assert pairs.iloc[0][["brc_a", "brc_b", "assembly_id_a", "assembly_id_b"]].tolist() == [
        "ha1", "na2", "iso1", "iso2"]  # fmt: skip
    with pytest.raises(InputDataError, match=r"pairs.tsv.*nope.*brc_fea_id"):
        requested_pairs(proteins, pd.DataFrame({"brc_a": ["ha1"], "brc_b": ["nope"]}), flu,
                        None, "pairs.tsv")  # fmt: skip
    with pytest.raises(InputDataError, match="brc_a and brc_b"):
        requested_pairs(proteins, pd.DataFrame({"x": [1]}), flu, None, "pairs.tsv")
    assert orient(pairs, flu, [["NA", "HA"]])["brc_a"].tolist() == ["na2"]


@pytest.fixture(scope="module")
def model_and_data(trained):
    data_root = trained[0]
    return data_root / "main_job_model_kmer_aa3.pt", data_root


def test_a_planted_mis_join_is_found(model_and_data, flu):
    model, data_root = model_and_data
    scorer = PairScorer.from_checkpoint(model, device="cpu")
    proteins, _report, reader = read_proteins(data_root / "raw" / "flu_a" / "simulated_v1", flu)
    truth = pd.read_csv(data_root / "raw" / "flu_a" / "simulated_v1" / "segments.tsv", sep="\t")
    truth = truth.drop_duplicates("genome_id").set_index("genome_id")
    with_ = {f: set(proteins.loc[proteins["function"] == f, "assembly_id"]) for f in ("HA", "NA")}
    clean = truth.loc[sorted(with_["HA"] & with_["NA"])]
    clean = clean[~clean["reassortant"]]
    h1 = clean[clean["subtype"] == "H1N1"].index[0]
    h3 = clean[clean["subtype"] == "H3N2"].index[0]
    # swap the HA records of an H1N1 and an H3N2 isolate, as a mis-joined record would
    is_ha = proteins["function"] == "HA"
    swap = {h1: h3, h3: h1}
    moved = is_ha & proteins["assembly_id"].isin(swap)
    proteins.loc[moved, "assembly_id"] = proteins.loc[moved, "assembly_id"].map(swap)

    scores = scorer.score_proteins(proteins, flu)
    assert (scores["status"] == "scored").all()
    ha_na = scores[scores["schema_pair"] == "HA-NA"].set_index("assembly_id_a")["score"]
    assert ha_na[h1] < scorer.threshold and ha_na[h3] < scorer.threshold
    # the mis-joined isolates rank among the weakest few percent of all isolates
    summary = isolate_summary(scores, scorer.threshold)
    ranks = summary.index[summary["assembly_id"].isin([h1, h3])]
    assert ranks.max() < 0.1 * len(summary), summary.head(12)


def test_cli_scores_files_and_listed_pairs(model_and_data, tmp_path, capsys):
    model, data_root = model_and_data
    raw = data_root / "raw" / "flu_a" / "simulated_v1"
    out = tmp_path / "scores.tsv"
    assert cli_main(["score", "-m", str(model), "-i", str(raw), "-o", str(out)]) == 0
    scores = pd.read_csv(out, sep="\t")
    assert len(scores) > 100 and scores["score"].between(0, 1).all()
    assert (scores["assembly_id_a"] == scores["assembly_id_b"]).all()
    printed = capsys.readouterr().out
    assert "called same-isolate" in printed
    # the asset scored the same pairs from the stored (fp16) cache: same scores
    asset = pd.read_parquet(
        data_root / "processed" / "flu_a" / "simulated_v1" / "isolate_pair_scores_kmer_aa3.parquet"
    )
    both = scores.merge(asset, on=["brc_a", "brc_b"], suffixes=("", "_asset"))
    assert len(both) == len(scores)
    assert (both["score"] - both["score_asset"]).abs().max() < 0.02

    listed = tmp_path / "pairs.csv"
    pd.DataFrame({"brc_a": scores["brc_b"][:3], "brc_b": scores["brc_a"][1:4].to_numpy()}).to_csv(
        listed, index=False
    )
    out2 = tmp_path / "listed.parquet"
    argv = ["score", "-m", str(model), "-i", str(raw), "-o", str(out2), "--pairs", str(listed)]
    assert cli_main(argv) == 0
    assert len(pd.read_parquet(out2)) == 3


def test_scoring_with_another_embedder_is_refused(model_and_data, tmp_path, capsys):
    model, data_root = model_and_data
    blob = torch.load(model, weights_only=True)
    blob["meta"]["embedder_description"]["k"] = 4  # not how the training vectors were made
    tampered = tmp_path / "model.pt"
    torch.save(blob, tampered)
    with pytest.raises(CheckpointMismatchError, match="signature"):
        PairScorer.from_checkpoint(tampered)
    raw = data_root / "raw" / "flu_a" / "simulated_v1"
    argv = ["score", "-m", str(tampered), "-i", str(raw), "-o", str(tmp_path / "x.tsv")]
    assert cli_main(argv) == 2
    assert "Score with the embedder the model was trained on" in capsys.readouterr().err


def test_a_missing_checkpoint_says_where_models_come_from(tmp_path, capsys):
    argv = [
        "score",
        "-m",
        str(tmp_path / "nope.pt"),
        "-i",
        str(tmp_path),
        "-o",
        str(tmp_path / "x.tsv"),
    ]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert "nope.pt: no checkpoint there" in err and "pair_classifier_" in err
    assert not (tmp_path / "x.tsv").exists()
