"""No silent wrong results from `segpair score` / `evaluate`: a model is never used on another
virus, and a run that scores no pair exits non-zero saying why (issue 14, case 3)."""

from __future__ import annotations

import pandas as pd
import pytest

from segpair.errors import InputDataError
from segpair.scoring import PairScorer, read_proteins
from segpair_assets.cli import main as cli_main
from segpair_assets_tests.tiny_checkpoints import protein_fasta, simulated_folder, tiny_checkpoint

TABLE_COLUMNS = ["brc_fea_id", "assembly_id", "segment", "function", "prot_seq", "nt_seq"]


@pytest.fixture(scope="module")
def files(tmp_path_factory, registry):
    """Simulated flu and SFTS (bunya) data as folders, protein FASTA and tables, and two
    flu HA-NA models: kmer_aa3 (protein input) and kmer_nt6 (nucleotide input)."""
    root = tmp_path_factory.mktemp("refusals")
    out = {"root": root}
    for virus in ("flu_a", "bunya"):
        spec = registry.get(virus)
        out[virus] = simulated_folder(root / virus, spec)
        proteins = read_proteins(out[virus], spec)[0]
        out[f"{virus}_proteins"] = proteins
        out[f"{virus}_faa"] = protein_fasta(proteins, root / f"{virus}.faa")
    # SFTS proteins with their names but no segment column
    bunya_names = root / "bunya_names.tsv"
    out["bunya_proteins"][["brc_fea_id", "assembly_id", "function", "prot_seq"]].to_csv(
        bunya_names, sep="\t", index=False
    )
    out["bunya_names"] = bunya_names
    # ... and with NCBI-style products, of which flu reads one ('nucleocapsid protein' as NP)
    products = {"RdRp": "RNA-dependent RNA polymerase", "GP": "glycoprotein precursor",
                "N": "nucleocapsid protein", "NSs": "nonstructural protein NSs"}  # fmt: skip
    bunya_products = root / "bunya_products.tsv"
    out["bunya_proteins"].assign(product=out["bunya_proteins"]["function"].map(products))[
        ["brc_fea_id", "assembly_id", "product", "prot_seq"]
    ].to_csv(bunya_products, sep="\t", index=False)
    out["bunya_products"] = bunya_products
    out["aa3"] = tiny_checkpoint(root / "flu_aa3.pt", "kmer_aa3")
    out["nt6"] = tiny_checkpoint(root / "flu_nt6.pt", "kmer_nt6")
    return out


def _run(command, model, given, tmp_path, capsys, *extra):
    out = tmp_path / "out.tsv"
    rc = cli_main([command, "-m", str(model), "-i", str(given), "-o", str(out), *extra])
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    return rc, captured.out, errors, out


def _table(proteins, path):
    proteins[TABLE_COLUMNS].to_csv(path, sep="\t", index=False)
    return path


@pytest.mark.parametrize(
    "command, extra", [("score", []), ("score", ["--all-function-pairs"]), ("evaluate", [])]
)
def test_naming_another_virus_than_the_model_s_is_refused(command, extra, files, tmp_path, capsys):
    rc, _out, errors, out = _run(
        command, files["aa3"], files["bunya"], tmp_path, capsys, "-v", "bunya", *extra
    )
    assert rc == 2 and len(errors) == 1, errors
    assert "trained on flu_a" in errors[0] and "-v bunya" in errors[0], errors
    assert "Fix: score bunya proteins with a model trained on bunya" in errors[0], errors
    assert not out.exists()


@pytest.mark.parametrize("command", ["score", "evaluate"])
@pytest.mark.parametrize("given", ["bunya", "bunya_faa", "bunya_names", "bunya_products"])
def test_proteins_of_another_virus_are_refused(command, given, files, tmp_path, capsys):
    rc, _out, errors, out = _run(command, files["aa3"], files[given], tmp_path, capsys)
    assert rc == 2 and len(errors) == 1, errors
    assert f"error: {files[given]}: holds bunya proteins" in errors[0], errors
    assert "the model was trained on flu_a" in errors[0], errors
    assert "Fix: score them with a model trained on bunya" in errors[0], errors
    assert not out.exists()


@pytest.mark.parametrize("command", ["score", "evaluate"])
def test_a_nucleotide_model_on_protein_input_says_it_needs_nucleotides(
    command, files, tmp_path, capsys
):
    rc, _out, errors, out = _run(command, files["nt6"], files["flu_a_faa"], tmp_path, capsys)
    assert rc == 2 and len(errors) == 1, errors
    assert "a kmer_nt6 model embeds nucleotide sequences" in errors[0], errors
    assert "the input has protein sequences only" in errors[0], errors
    assert "Fix: give the segments' nucleotide sequences" in errors[0], errors
    assert not out.exists()


def test_the_core_refuses_to_score_nothing(files, flu):
    scorer = PairScorer.from_checkpoint(files["nt6"], device="cpu")
    proteins = files["flu_a_proteins"].assign(nt_seq=None)
    with pytest.raises(InputDataError, match="0 of .* pairs could be scored.*nucleotide"):
        scorer.score_proteins(proteins, flu)
    with pytest.raises(InputDataError, match="trained on flu_a.*-v bunya"):
        scorer.virus_name("bunya")
    assert scorer.virus_name(None) == scorer.virus_name("flu_a") == "flu_a"


@pytest.mark.parametrize("command", ["score", "evaluate"])
def test_no_protein_of_the_model_s_function_pair_says_what_is_there(
    command, files, tmp_path, capsys
):
    proteins = files["flu_a_proteins"]
    table = _table(proteins[proteins["function"] != "NA"], tmp_path / "no_na.tsv")
    rc, _out, errors, out = _run(command, files["aa3"], table, tmp_path, capsys)
    assert rc == 2 and len(errors) == 1, errors
    assert "the model was trained on HA-NA pairs" in errors[0], errors
    assert "no NA protein" in errors[0] and "'HA'" in errors[0], errors
    assert not out.exists()


def test_no_isolate_holding_both_proteins_is_said(files, tmp_path, capsys):
    proteins = files["flu_a_proteins"].copy()
    is_na = proteins["function"] == "NA"
    proteins.loc[is_na, "assembly_id"] = "alone_" + proteins.loc[is_na, "assembly_id"]
    table = _table(proteins, tmp_path / "apart.tsv")
    rc, _out, errors, out = _run("score", files["aa3"], table, tmp_path, capsys)
    assert rc == 2 and len(errors) == 1, errors
    assert "no isolate holds proteins of both HA and NA" in errors[0], errors
    assert not out.exists()


def test_partly_unscorable_pairs_are_counted_and_said(files, tmp_path, capsys):
    proteins = files["flu_a_proteins"].copy()
    with_na = set(proteins.loc[proteins["function"] == "NA", "assembly_id"])
    ha = proteins.index[(proteins["function"] == "HA") & proteins["assembly_id"].isin(with_na)]
    proteins.loc[ha[:3], "nt_seq"] = None  # three HA proteins of HA-NA pairs lose their DNA
    table = _table(proteins, tmp_path / "some_nt.tsv")
    rc, printed, errors, out = _run("score", files["nt6"], table, tmp_path, capsys)
    assert rc == 0 and not errors
    scores = pd.read_csv(out, sep="\t")
    n_pairs, n_unscored = len(scores), int(scores["score"].isna().sum())
    assert n_unscored == 3 < n_pairs
    assert f"scored {n_pairs - 3} of {n_pairs} pairs" in printed, printed
    assert f"3 of {n_pairs} pairs not scored: 3 no nucleotide sequence" in printed, printed


def test_an_empty_pair_list_is_refused(files, tmp_path, capsys):
    listed = tmp_path / "pairs.csv"
    listed.write_text("brc_a,brc_b\n")
    rc, _out, errors, out = _run(
        "score", files["aa3"], files["flu_a"], tmp_path, capsys, "--pairs", str(listed)
    )
    assert rc == 2 and errors == [f"error: {listed}: lists no pairs. Fix: list one pair a row, "
                                  "in columns brc_a and brc_b"], errors  # fmt: skip
    assert not out.exists()


def test_evaluation_counts_the_pairs_it_could_not_embed(files, tmp_path, capsys):
    proteins = files["flu_a_proteins"].copy()
    ha = proteins.index[proteins["function"] == "HA"]
    proteins.loc[ha[:3], "nt_seq"] = None
    table = _table(proteins, tmp_path / "some_nt.tsv")
    rc, printed, errors, _out = _run("evaluate", files["nt6"], table, tmp_path, capsys)
    assert rc == 0 and not errors
    left_out = int(printed.split("'pairs_without_embeddings': ")[1].split("}")[0])
    assert left_out >= 3, printed
