"""The pandas/numpy code the polars port replaced (commit d29b7ba), kept as the baseline of
`benchmarks/polars_vs_pandas.py` and of the test that the port changes no output.

Each function is the code as it was, apart from names: where the old function called a
helper the port also replaced, it calls the old helper here. Helpers the port left alone
are imported from segpair.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from segpair.cleaning import (
    _FLAG_ISSUE,
    PROTEIN_FINAL_COLUMNS,
    CleaningConfig,
    CleaningReport,
    clean_protein_sequence,
    length_flag,
    sequence_hash,
)
from segpair.errors import InputDataError, IssueLog
from segpair.pairs.cooccurrence import HashCodes, within_isolate_pairs
from segpair.pairs.segment_pairs import (
    MATCH_KEYS,
    SPLITS,
    PairConfig,
    PairStats,
    SplitSampler,
    _schema,
    _sequence_disjoint,
    _split_isolates,
)
from segpair.registry import VirusSpec
from segpair.scoring import _function_order, swap_rule
from segpair.validation import CheckOutcome

# ------------------------------------------------------------------ protein_final


def build_protein_final(
    records: pd.DataFrame, virus: VirusSpec, config: CleaningConfig | None = None
) -> tuple[pd.DataFrame, CleaningReport]:
    """Clean raw protein records into the `protein_final` table and a report."""
    config = config or CleaningConfig()
    report = CleaningReport(n_input=len(records))
    seqs, n_amb, keep = [], [], []
    for pid, src, raw in zip(
        records["brc_fea_id"], records["source"], records["prot_seq"], strict=True
    ):
        where = f"{src} (brc_fea_id={pid})"
        cleaned = clean_protein_sequence(str(raw), where, config, report.issues)
        keep.append(cleaned is not None)
        if cleaned is not None:
            seqs.append(cleaned[0])
            n_amb.append(cleaned[1])
    df = records.loc[np.asarray(keep, dtype=bool)].copy()
    df["esm2_ready_seq"] = pd.array(seqs, dtype="string")
    df["length"] = pd.array([len(s) for s in seqs], dtype="Int64")
    df["seq_hash"] = pd.array([sequence_hash(s) for s in seqs], dtype="string")
    df["n_ambiguous"] = pd.array(n_amb, dtype="Int64")
    df = _apply_length_policy(df, virus, config, report.issues)
    order = {name: i for i, name in enumerate(virus.segment_names)}
    df = (
        df.assign(_seg_order=df["segment"].map(order))
        .sort_values(["assembly_id", "_seg_order", "function", "brc_fea_id"], kind="stable")
        .drop(columns="_seg_order")
        .reset_index(drop=True)[PROTEIN_FINAL_COLUMNS]
    )
    report.n_output = len(df)
    segs_per_isolate = df.groupby("assembly_id")["segment"].nunique()
    report.isolates_single_segment = int((segs_per_isolate == 1).sum())
    report.isolates_incomplete = int((segs_per_isolate < len(virus.segments)).sum())
    for isolate in segs_per_isolate[segs_per_isolate == 1].index[:5]:
        report.issues.examples.setdefault("isolate_single_segment", []).append(str(isolate))
    if report.isolates_single_segment:
        report.issues.counts["isolate_single_segment"] = report.isolates_single_segment
    return df, report


def _apply_length_policy(
    df: pd.DataFrame, virus: VirusSpec, config: CleaningConfig, issues: IssueLog
) -> pd.DataFrame:
    specs = {p.name: p for seg in virus.segments for p in seg.proteins}
    stops = df["orf_has_stop"].astype(object).where(df["orf_has_stop"].notna(), None)
    flags = [
        length_flag(int(n), stop, specs[f].expected_length, specs[f].primary, config)
        for n, stop, f in zip(df["length"], stops, df["function"], strict=True)
    ]
    df["length_flag"] = pd.array(flags, dtype="string")
    for row, flag in zip(df.itertuples(), flags, strict=True):
        if not flag:
            continue
        where = f"{row.source} (brc_fea_id={row.brc_fea_id})"
        detail = (
            f"{row.function} of {row.length} aa, expected about "
            f"{specs[row.function].expected_length} aa ({flag})"
        )
        if config.length_policy == "error":
            raise InputDataError(
                where,
                f"atypical protein length: {detail}",
                "fix or remove the record, or set length_policy to 'drop' or 'keep' (flagged)",
            )
        for part in flag.split("+"):
            issues.add(_FLAG_ISSUE[part], where, detail)
    if config.length_policy == "drop":
        df = df[df["length_flag"] == ""]
    return df


# ------------------------------------------------------------------ cooccurrence_sets


def build_cooccurrence(proteins: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """(table of co-occurring hash pairs with isolate counts, summary statistics)."""
    seq_hash = proteins["seq_hash"].astype(str)
    codes, uniques = pd.factorize(seq_hash, sort=True)
    codes_of, codes = HashCodes(np.asarray(uniques, dtype=object)), codes.astype(np.int64)
    isolate = pd.factorize(proteins["assembly_id"].astype(str))[0]
    i, j = within_isolate_pairs(isolate, codes)
    keep = codes[i] != codes[j]
    keys = codes_of.pair_key(codes[i][keep], codes[j][keep])
    iso = isolate[i][keep].astype(np.int64)
    # count distinct isolates per key
    both = np.unique(np.stack([keys, iso]), axis=1)
    uniq, counts = np.unique(both[0], return_counts=True)
    a, b = uniq // codes_of.n, uniq % codes_of.n
    table = pd.DataFrame(
        {
            "seq_hash_a": codes_of.hashes[a].astype(str),
            "seq_hash_b": codes_of.hashes[b].astype(str),
            "n_isolates": counts.astype(np.int64),
        }
    )
    stats = {
        "total_cooccur_pairs": int(len(table)),
        "pairs_in_multiple_isolates": int((counts > 1).sum()),
        "max_isolates_per_pair": int(counts.max()) if len(counts) else 0,
    }
    return table, stats


# ------------------------------------------------------------------ segment_pairs


def build_segment_pairs(
    proteins: pd.DataFrame,
    cooccurrence: pd.DataFrame,
    virus: VirusSpec,
    config: PairConfig | None = None,
) -> tuple[pd.DataFrame, PairStats, list[str]]:
    """(pairs table, statistics, sampled isolate ids) for a protein_final table."""
    config = config or PairConfig()
    rng = np.random.default_rng(config.seed)
    stats = PairStats()
    schema = _schema(virus, sorted(proteins["function"].unique()), config)
    functions = sorted({f for p in schema for f in p}, key=virus.protein_names().index)

    df = proteins[proteins["function"].isin(functions)].reset_index(drop=True)
    all_isolates = np.sort(df["assembly_id"].astype(str).unique())
    sampled = all_isolates
    if config.max_isolates_to_process and config.max_isolates_to_process < len(all_isolates):
        sampled = np.sort(rng.choice(all_isolates, config.max_isolates_to_process, replace=False))
        df = df[df["assembly_id"].isin(sampled)].reset_index(drop=True)
    split_of_isolate = {
        iso: s for s, isos in _split_isolates(sampled, config, rng).items() for iso in isos
    }
    df["split"] = df["assembly_id"].map(split_of_isolate)
    stats.isolates_per_split = df.groupby("split")["assembly_id"].nunique().to_dict()
    codes_of, df["h"], blocked = _hash_codes(df["seq_hash"], cooccurrence)
    if config.split_mode == "sequence":
        df, stats.dropped_for_sequence_disjoint = _sequence_disjoint(df)

    used_keys: set[int] = set()
    frames, sampler = [], None
    for split in SPLITS:
        part = df[df["split"] == split].reset_index(names="_row")
        if part.empty:
            continue
        sampler = SplitSampler(part, codes_of, blocked, used_keys, config, rng, stats)
        pos = sampler.positives(schema)
        neg = sampler.negatives(pos, schema)
        rows = part["_row"].to_numpy()
        for frame in (pos, neg):  # local row numbers -> rows of df
            frame["ia"], frame["ib"] = rows[frame["ia"].to_numpy()], rows[frame["ib"].to_numpy()]
        frames += [pos.assign(split=split), neg.assign(split=split)]
        stats.counts[split] = {"positive": len(pos), "negative": len(neg)}
    # Free the draw bookkeeping before the string columns are built: it is the peak.
    index = pd.concat(frames, ignore_index=True)
    del frames, used_keys, sampler
    pairs = _assemble(index, df)
    return pairs, stats, [str(s) for s in sampled]


def _hash_codes(
    seq_hash: pd.Series, cooccurrence: pd.DataFrame
) -> tuple[HashCodes, np.ndarray, np.ndarray]:
    # Pairs involving sequences outside the table (other functions) can never be drawn here.
    all_hashes = pd.Index(pd.unique(seq_hash.astype(str))).sort_values()
    codes_of = HashCodes(all_hashes.to_numpy(dtype=object))
    h = all_hashes.get_indexer(seq_hash.astype(str))
    ca = all_hashes.get_indexer(cooccurrence["seq_hash_a"].astype(str))
    cb = all_hashes.get_indexer(cooccurrence["seq_hash_b"].astype(str))
    known = (ca >= 0) & (cb >= 0)
    return codes_of, h, np.unique(codes_of.pair_key(ca[known], cb[known]))


def _assemble(idx: pd.DataFrame, df: pd.DataFrame) -> pd.DataFrame:
    ia, ib = pa.array(idx["ia"].to_numpy()), pa.array(idx["ib"].to_numpy())

    cols = {}
    arrow = {c: pa.array(df[c].astype(str).to_numpy(), type=pa.large_string())
             for c in ("brc_fea_id", "seq_hash", "assembly_id")}  # fmt: skip
    for side, rows in (("a", ia), ("b", ib)):
        cols[f"brc_{side}"] = pd.Series(pc.take(arrow["brc_fea_id"], rows), dtype="string[pyarrow]")
    cols["label"] = idx["label"].to_numpy(dtype=np.int8)
    # slots A and B share categories, so func_a == func_b compares as users expect
    for column, out in (("function", "func"), ("segment", "seg")):
        values = df[column].astype(str).to_numpy()
        categories = sorted(set(values))
        for side, rows in (("a", idx["ia"].to_numpy()), ("b", idx["ib"].to_numpy())):
            cols[f"{out}_{side}"] = pd.Categorical(values[rows], categories=categories)
    hashes = {}
    for side, rows in (("a", ia), ("b", ib)):
        hashes[side] = pc.take(arrow["seq_hash"], rows)
        cols[f"seq_hash_{side}"] = pd.Series(hashes[side], dtype="string[pyarrow]")
    for side, rows in (("a", ia), ("b", ib)):
        cols[f"assembly_{side}"] = pd.Series(
            pc.take(arrow["assembly_id"], rows), dtype="string[pyarrow]"
        )
    cols["schema_pair"] = pd.Categorical(idx["schema_pair"])
    cols["neg_type"] = pd.Categorical(idx["neg_type"])
    cols["split"] = pd.Categorical(idx["split"], categories=list(SPLITS))
    first = pc.less_equal(hashes["a"], hashes["b"])
    lo, hi = (
        pc.if_else(first, hashes["a"], hashes["b"]),
        pc.if_else(first, hashes["b"], hashes["a"]),
    )
    sep = pa.scalar("|", type=pa.large_string())
    cols["pair_key"] = pd.Series(pc.binary_join_element_wise(lo, hi, sep), dtype="string[pyarrow]")
    # metadata match flags (for stratified evaluation), compared as integer codes
    for key in MATCH_KEYS:
        values = df[key].astype("string")
        code = pd.factorize(values)[0]  # missing -> -1
        ca, cb = code[idx["ia"].to_numpy()], code[idx["ib"].to_numpy()]
        cols[f"same_{key}"] = (ca == cb) & (ca >= 0)
    return pd.DataFrame(cols)


# ------------------------------------------------------------------ scoring: isolate pairs


def orient(
    pairs: pd.DataFrame, virus: VirusSpec, schema_pairs: list[list[str]] | None
) -> pd.DataFrame:
    # the orientation rule is segpair's own; only the per-row pandas application is the baseline
    trained = {tuple(p) for p in schema_pairs} if schema_pairs else None
    swapped = swap_rule(virus, schema_pairs)
    fa, fb = pairs["function_a"].astype(str), pairs["function_b"].astype(str)
    swap = pd.Series([swapped(a, b) for a, b in zip(fa, fb, strict=True)], index=pairs.index)
    out = pairs.copy()
    for left, right in (("brc_a", "brc_b"), ("function_a", "function_b"),
                        ("assembly_id_a", "assembly_id_b")):  # fmt: skip
        out.loc[swap, [left, right]] = pairs.loc[swap, [right, left]].to_numpy()
    out["schema_pair"] = out["function_a"].astype(str) + "-" + out["function_b"].astype(str)
    out["in_training_schema"] = [
        a != b if trained is None else (a, b) in trained
        for a, b in zip(out["function_a"], out["function_b"], strict=True)
    ]
    return out


def isolate_pairs(
    proteins: pd.DataFrame,
    virus: VirusSpec,
    schema_pairs: list[list[str]] | None,
    only_training_schema: bool = True,
) -> pd.DataFrame:
    p = proteins[["brc_fea_id", "assembly_id", "segment", "function"]].astype(str)
    merged = p.merge(p, on="assembly_id", suffixes=("_a", "_b"))
    merged = merged[merged["segment_a"] != merged["segment_b"]]
    order = _function_order(virus)
    # keep each unordered pair once (the earlier function in registry order first)
    ka = merged["function_a"].map(order).fillna(1e9)
    kb = merged["function_b"].map(order).fillna(1e9)
    keep = (ka < kb) | ((ka == kb) & (merged["brc_fea_id_a"] < merged["brc_fea_id_b"]))
    merged = merged[keep]
    pairs = pd.DataFrame({
        "assembly_id_a": merged["assembly_id"], "assembly_id_b": merged["assembly_id"],
        "brc_a": merged["brc_fea_id_a"], "brc_b": merged["brc_fea_id_b"],
        "function_a": merged["function_a"], "function_b": merged["function_b"],
    }).reset_index(drop=True)  # fmt: skip
    pairs = orient(pairs, virus, schema_pairs)
    if only_training_schema:
        pairs = pairs[pairs["in_training_schema"]].reset_index(drop=True)
    return pairs


# ------------------------------------------------------------------ segment_pairs leakage checks


def _long(pairs: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    return pd.concat(
        [
            pairs[[a, "split"]].set_axis(["value", "split"], axis=1),
            pairs[[b, "split"]].set_axis(["value", "split"], axis=1),
        ],
        ignore_index=True,
    )


def _in_several_splits(values: pd.DataFrame) -> list[str]:
    n = values.groupby("value")["split"].nunique()
    return n[n > 1].index.astype(str).tolist()


def pair_key_in_two_splits(pairs: pd.DataFrame) -> CheckOutcome:
    bad = _in_several_splits(pairs[["pair_key", "split"]].set_axis(["value", "split"], axis=1))
    return CheckOutcome(not bad, "no sequence pair appears in two splits", bad[:10])


def isolate_in_two_splits(pairs: pd.DataFrame) -> CheckOutcome:
    bad = _in_several_splits(_long(pairs, "assembly_a", "assembly_b"))
    return CheckOutcome(not bad, "no isolate appears in two splits", bad[:10])


def sequence_in_two_splits(pairs: pd.DataFrame) -> CheckOutcome:
    bad = _in_several_splits(_long(pairs, "seq_hash_a", "seq_hash_b"))
    return CheckOutcome(not bad, "no sequence appears in two splits", bad[:10])


def negative_cooccurs(pairs: pd.DataFrame, cooccurrence: pd.DataFrame) -> CheckOutcome:
    lo = cooccurrence[["seq_hash_a", "seq_hash_b"]].min(axis=1)
    hi = cooccurrence[["seq_hash_a", "seq_hash_b"]].max(axis=1)
    blocked = set(lo + "|" + hi)
    neg = pairs[pairs["label"] == 0]
    hit = neg["pair_key"].isin(blocked)
    bad = (neg.loc[hit, "brc_a"].astype(str) + "+" + neg.loc[hit, "brc_b"].astype(str)).tolist()
    return CheckOutcome(not bad, "no negative pairs two sequences that co-occur", bad[:10])


def proteins_without_embedding(pairs: pd.DataFrame, embedded_ids: Iterable[str]) -> CheckOutcome:
    have = set(embedded_ids)
    used = pd.unique(pd.concat([pairs["brc_a"], pairs["brc_b"]]))
    missing = [p for p in used if p not in have]
    return CheckOutcome(
        not missing, "every protein in a pair has an embedding in the master cache", missing[:10]
    )


def leakage_report(pairs: pd.DataFrame, cooccurrence: pd.DataFrame, split_mode: str) -> dict:
    out = {
        "pair_key_in_one_split": pair_key_in_two_splits(pairs),
        "isolate_in_one_split": isolate_in_two_splits(pairs),
        "negatives_never_cooccur": negative_cooccurs(pairs, cooccurrence),
    }
    if split_mode == "sequence":
        out["sequence_in_one_split"] = sequence_in_two_splits(pairs)
    return out


# ------------------------------------------------------------------ scoring: seen pairs


def mark_seen_pairs(scores: pd.DataFrame, segment_pairs: pd.DataFrame) -> pd.DataFrame:
    """Add `seen_in`: the split in which the pair (either orientation) was a labelled pair of
    segment_pairs, or 'new'. Scores of training pairs are optimistic; val/test/new are not."""
    split_of: dict[tuple[str, str], str] = {}
    for a, b, split in zip(segment_pairs["brc_a"].astype(str), segment_pairs["brc_b"].astype(str),
                           segment_pairs["split"].astype(str), strict=True):  # fmt: skip
        split_of[(a, b)] = split_of[(b, a)] = split
    out = scores.copy()
    out["seen_in"] = [split_of.get((a, b), "new")
                      for a, b in zip(out["brc_a"], out["brc_b"], strict=True)]  # fmt: skip
    return out
