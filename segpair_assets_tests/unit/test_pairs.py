"""Co-occurrence sets and segment pairs: correctness, each leakage guarantee (with the leak
planted to see its check fail), and the edge cases that must not pass silently."""

from __future__ import annotations

import pandas as pd
import pytest

from segpair.errors import InputDataError
from segpair.pairs.cooccurrence import build_cooccurrence
from segpair.pairs.leakage import (
    isolate_in_two_splits,
    leakage_report,
    negative_cooccurs,
    pair_key_in_two_splits,
    proteins_without_embedding,
    sequence_in_two_splits,
)
from segpair.pairs.segment_pairs import PairConfig, build_segment_pairs
from segpair.simulator import SimulationConfig, simulate_population


def _proteins(virus, n=300, seed=4):
    return simulate_population(virus, SimulationConfig(n_isolates=n, seed=seed)).protein_final(
        virus
    )


@pytest.fixture(scope="module")
def flu_proteins(flu):
    return _proteins(flu)


@pytest.fixture(scope="module")
def flu_cooc(flu_proteins):
    return build_cooccurrence(flu_proteins)[0]


def test_cooccurrence_by_hand():
    df = pd.DataFrame(
        {
            "assembly_id": ["i1", "i1", "i1", "i2", "i2", "i3", "i3"],
            "seq_hash": ["x", "y", "z", "x", "w", "y", "x"],
        }
    )
    table, stats = build_cooccurrence(df)
    got = {(a, b): n for a, b, n in table.itertuples(index=False)}
    assert got == {("x", "y"): 2, ("x", "z"): 1, ("y", "z"): 1, ("w", "x"): 1}
    assert stats == {
        "total_cooccur_pairs": 4,
        "pairs_in_multiple_isolates": 1,
        "max_isolates_per_pair": 2,
    }


def test_default_pairs_are_leakage_free_and_balanced(flu, flu_proteins, flu_cooc):
    pairs, stats, sampled = build_segment_pairs(flu_proteins, flu_cooc, flu)
    assert all(o.passed for o in leakage_report(pairs, flu_cooc, "isolate").values())
    for split in ("train", "val", "test"):
        c = stats.counts[split]
        assert c["positive"] > 0 and c["negative"] == c["positive"]
    assert set(pairs["schema_pair"]) == {
        f"{a}-{b}"
        for i, a in enumerate(flu.protein_names(primary_only=True))
        for b in flu.protein_names(primary_only=True)[i + 1 :]
    }
    assert stats.rejections["blocked_cooccur"] > 0  # blocking did reject candidates
    assert len(sampled) == flu_proteins["assembly_id"].nunique()
    # positives are same-isolate, negatives are not
    pos, neg = pairs[pairs["label"] == 1], pairs[pairs["label"] == 0]
    assert (pos["assembly_a"] == pos["assembly_b"]).all()
    assert (neg["assembly_a"] != neg["assembly_b"]).all()


def test_schema_pair_slots_and_hard_negatives(flu, flu_proteins, flu_cooc):
    config = PairConfig(schema_pairs=[("NA", "HA")], hard_negative_share=0.5, seed=1)
    pairs, stats, _ = build_segment_pairs(flu_proteins, flu_cooc, flu, config)
    assert (pairs["func_a"] == "NA").all() and (pairs["func_b"] == "HA").all()
    hard = pairs[pairs["neg_type"] == "hard"]
    assert len(hard) > 0
    assert hard[["same_subtype", "same_host", "same_year"]].all().all()
    # small val/test splits may lack matching isolates: made up with random ones, reported
    for split, c in stats.counts.items():
        assert c["negative"] == c["positive"], split
    assert all("filled with random" in s for s in stats.shortfalls)


def test_sequence_disjoint_mode(flu, flu_proteins, flu_cooc):
    isolate_mode, _, _ = build_segment_pairs(flu_proteins, flu_cooc, flu)
    assert not sequence_in_two_splits(isolate_mode).passed  # conserved proteins recur
    pairs, stats, _ = build_segment_pairs(
        flu_proteins, flu_cooc, flu, PairConfig(split_mode="sequence")
    )
    assert all(o.passed for o in leakage_report(pairs, flu_cooc, "sequence").values())
    assert stats.dropped_for_sequence_disjoint > 0


def test_same_function_negatives_are_limited(flu, flu_proteins, flu_cooc):
    config = PairConfig(allow_same_func_negatives=True, max_same_func_ratio=0.2)
    pairs, stats, _ = build_segment_pairs(flu_proteins, flu_cooc, flu, config)
    neg = pairs[pairs["label"] == 0]
    same = neg["neg_type"] == "same_func"
    assert same.any() and (neg.loc[same, "func_a"] == neg.loc[same, "func_b"]).all()
    assert same.mean() <= 0.2 + 1e-9
    assert stats.rejections.get("same_func_limit", 0) > 0
    assert all(o.passed for o in leakage_report(pairs, flu_cooc, "isolate").values())
    off, _, _ = build_segment_pairs(flu_proteins, flu_cooc, flu)
    assert (off["func_a"] != off["func_b"]).all()


def test_isolate_sampling_is_seeded(flu, flu_proteins, flu_cooc):
    config = PairConfig(max_isolates_to_process=100, seed=3)
    pairs, _, sampled = build_segment_pairs(flu_proteins, flu_cooc, flu, config)
    again, _, sampled2 = build_segment_pairs(flu_proteins, flu_cooc, flu, config)
    assert len(sampled) == 100 and sampled == sampled2 and pairs.equals(again)
    used = set(pairs["assembly_a"]) | set(pairs["assembly_b"])
    assert used <= set(sampled)


# ------------------------------------------------------------------ planted leaks


@pytest.fixture(scope="module")
def clean_pairs(flu, flu_proteins, flu_cooc):
    return build_segment_pairs(flu_proteins, flu_cooc, flu)[0]


def test_planted_pair_key_in_two_splits(clean_pairs):
    leak = clean_pairs[clean_pairs["split"] == "train"].iloc[[0]].assign(split="test")
    outcome = pair_key_in_two_splits(pd.concat([clean_pairs, leak]))
    assert not outcome.passed and leak["pair_key"].iloc[0] in outcome.failing_examples


def test_planted_isolate_in_two_splits(clean_pairs):
    train_iso = clean_pairs.loc[clean_pairs["split"] == "train", "assembly_a"].iloc[0]
    leaked = clean_pairs.copy()
    leaked.loc[leaked.index[leaked["split"] == "test"][0], "assembly_b"] = train_iso
    outcome = isolate_in_two_splits(leaked)
    assert not outcome.passed and train_iso in outcome.failing_examples


def test_planted_sequence_in_two_splits(flu, flu_proteins, flu_cooc):
    pairs, _, _ = build_segment_pairs(
        flu_proteins, flu_cooc, flu, PairConfig(split_mode="sequence")
    )
    train_hash = pairs.loc[pairs["split"] == "train", "seq_hash_a"].iloc[0]
    pairs.loc[pairs.index[pairs["split"] == "val"][0], "seq_hash_b"] = train_hash
    assert not sequence_in_two_splits(pairs).passed


def test_planted_cooccurring_negative(clean_pairs, flu_cooc):
    row = clean_pairs[clean_pairs["label"] == 1].iloc[[0]].assign(label=0, neg_type="random")
    outcome = negative_cooccurs(pd.concat([clean_pairs, row]), flu_cooc)
    assert not outcome.passed
    assert outcome.failing_examples == [f"{row['brc_a'].iloc[0]}+{row['brc_b'].iloc[0]}"]


def test_planted_protein_without_embedding(clean_pairs):
    ids = set(clean_pairs["brc_a"]) | set(clean_pairs["brc_b"])
    assert proteins_without_embedding(clean_pairs, ids).passed
    missing = clean_pairs["brc_a"].iloc[0]
    outcome = proteins_without_embedding(clean_pairs, ids - {missing})
    assert not outcome.passed and outcome.failing_examples == [missing]


# ------------------------------------------------------------------ edge cases


def test_too_few_isolates_is_a_clear_error(flu, flu_proteins, flu_cooc):
    few = flu_proteins[flu_proteins["assembly_id"].isin(flu_proteins["assembly_id"].unique()[:4])]
    with pytest.raises(InputDataError, match="cannot fill train/val/test"):
        build_segment_pairs(few, flu_cooc, flu)


def test_absent_schema_pair_is_a_clear_error(flu, flu_proteins, flu_cooc):
    with pytest.raises(InputDataError, match=r"schema pair \(HA, PB1-F2\).*absent"):
        build_segment_pairs(
            flu_proteins, flu_cooc, flu, PairConfig(schema_pairs=[("HA", "PB1-F2")])
        )
    with pytest.raises(InputDataError, match="no proteins of flu_a"):
        build_segment_pairs(flu_proteins, flu_cooc, flu, PairConfig(selected_functions=["L"]))
    with pytest.raises(InputDataError, match="sum to 1"):
        build_segment_pairs(flu_proteins, flu_cooc, flu, PairConfig(train_ratio=0.9))


def test_impossible_ratio_reports_a_shortfall(flu, flu_proteins, flu_cooc):
    config = PairConfig(schema_pairs=[("HA", "NA")], neg_to_pos_ratio=400, max_draw_rounds=5)
    pairs, stats, _ = build_segment_pairs(flu_proteins, flu_cooc, flu, config)
    assert stats.shortfalls and "HA-NA" in stats.shortfalls[0]
    assert all(o.passed for o in leakage_report(pairs, flu_cooc, "isolate").values())


def test_hard_negatives_never_match_on_unknown_metadata(flu, flu_proteins, flu_cooc):
    """An isolate without subtype, host or year matches no other: with none known there is
    no hard negative (and no crash); with some unknown, those isolates get none."""
    config = PairConfig(schema_pairs=[("HA", "NA")], hard_negative_share=0.5)
    blank = flu_proteins.assign(subtype=None, host=None, year=None)
    pairs, stats, _ = build_segment_pairs(blank, flu_cooc, flu, config)
    assert (pairs["neg_type"] != "hard").all() and (pairs["label"] == 0).any()
    unknown = set(flu_proteins["assembly_id"].drop_duplicates().iloc[::2])
    partly = flu_proteins.copy()
    partly.loc[partly["assembly_id"].isin(unknown), "subtype"] = None
    pairs, _, _ = build_segment_pairs(partly, flu_cooc, flu, config)
    hard = pairs[pairs["neg_type"] == "hard"]
    assert len(hard) and not (set(hard["assembly_a"]) | set(hard["assembly_b"])) & unknown
