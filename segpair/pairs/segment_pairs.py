"""Leakage-safe train/val/test segment pairs.

Guarantees, each enforced here and checked again by an asset check:

- isolate in two splits: isolates are assigned to one split (`split_mode="isolate"`,
  the default);
- sequence in two splits (`split_mode="sequence"`): each sequence hash stays in the
  split holding most of its occurrences; its proteins elsewhere are dropped (counted);
- pair in two splits: a pair key (unordered sequence-hash pair) used in one split is
  never used in a later one (train, then val, then test);
- contradictory labels: a negative is never a pair that co-occurs in any isolate of
  the whole data version;
- duplicate pairs: positives and negatives are unique on the pair key within a split.

Positives are same-isolate pairs of the schema pairs' functions, slot A holding the
first function of each schema pair. Negatives pair proteins of different isolates:
random, or (a `hard_negative_share` of them) from isolates that match on subtype,
host and year. Every draw is vectorised and seeded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import polars as pl

from segpair.errors import InputDataError
from segpair.pairs.cooccurrence import HashCodes, within_isolate_pairs
from segpair.registry import VirusSpec

SPLITS = ("train", "val", "test")
MATCH_KEYS = ("subtype", "host", "year")
PAIR_INPUT_COLUMNS = ["brc_fea_id", "assembly_id", "function", "segment", "seq_hash", *MATCH_KEYS]


@dataclass
class PairConfig:
    schema_pairs: list[tuple[str, str]] | None = None  # None: every pair of selected functions
    selected_functions: list[str] | None = None  # None: the virus's primary proteins
    neg_to_pos_ratio: float = 1.0
    allow_same_func_negatives: bool = False
    max_same_func_ratio: float = 0.5
    hard_negative_share: float = 0.0
    split_mode: Literal["isolate", "sequence"] = "isolate"
    train_ratio: float = 0.8
    val_ratio: float = 0.1
    test_ratio: float = 0.1
    seed: int = 42
    max_isolates_to_process: int | None = None
    max_draw_rounds: int = 30


@dataclass
class PairStats:
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> label -> n
    rejections: dict[str, int] = field(default_factory=dict)
    shortfalls: list[str] = field(default_factory=list)
    isolates_per_split: dict[str, int] = field(default_factory=dict)
    dropped_for_sequence_disjoint: int = 0
    positives_seen_in_earlier_split: int = 0
    positives_duplicate_in_split: int = 0

    def reject(self, reason: str, n: int) -> None:
        if n:
            self.rejections[reason] = self.rejections.get(reason, 0) + int(n)


def _in_sorted(values: np.ndarray, sorted_array: np.ndarray) -> np.ndarray:
    """Membership in a sorted array by binary search (np.isin would re-sort it each call)."""
    if not len(sorted_array):
        return np.zeros(len(values), dtype=bool)
    idx = np.minimum(np.searchsorted(sorted_array, values), len(sorted_array) - 1)
    return sorted_array[idx] == values


def _in_set(values: np.ndarray, seen: set[int]) -> np.ndarray:
    """Membership in a growing Python set: O(len(values)), independent of the set's size."""
    return np.fromiter((v in seen for v in values.tolist()), dtype=bool, count=len(values))


def _repeated(values: np.ndarray) -> np.ndarray:
    """True where a value already occurred earlier in `values`."""
    return pd.Series(values).duplicated().to_numpy()


def _unordered_key(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Order-free key of two codes below `n`."""
    return np.minimum(a, b) * n + np.maximum(a, b)


def _schema(virus: VirusSpec, present: list[str], config: PairConfig) -> list[tuple[str, str]]:
    selected = config.selected_functions or virus.protein_names(primary_only=True)
    unknown = [f for f in selected if f not in virus.protein_names()]
    if unknown:
        raise InputDataError(
            "segment_pairs config",
            f"selected_functions {unknown} are no proteins of {virus.name}",
            f"choose from {virus.protein_names()}",
        )
    if config.schema_pairs:
        pairs = [tuple(p) for p in config.schema_pairs]
    else:
        # all-pairs mode pairs the selected functions this data version has
        order = [f for f in virus.protein_names() if f in selected and f in present]
        pairs = [(a, b) for i, a in enumerate(order) for b in order[i + 1 :]]
        if not pairs:
            raise InputDataError(
                "segment_pairs",
                f"fewer than two of the selected functions {selected} are in the data "
                f"(present: {sorted(present)})",
                "select functions this data version has",
            )
    for a, b in pairs:
        missing = [f for f in (a, b) if f not in present]
        if missing:
            raise InputDataError(
                f"schema pair ({a}, {b})",
                f"{missing} absent from the data (functions present: {sorted(present)})",
                "choose schema pairs of functions this data version has",
            )
        if a == b:
            raise InputDataError(
                f"schema pair ({a}, {b})", "pairs a function with itself", "use two functions"
            )
    return pairs


def _split_isolates(isolates: np.ndarray, config: PairConfig, rng) -> dict[str, np.ndarray]:
    ratios = np.array([config.train_ratio, config.val_ratio, config.test_ratio], dtype=float)
    if (ratios < 0).any() or not np.isclose(ratios.sum(), 1.0):
        raise InputDataError(
            "segment_pairs config",
            f"train/val/test ratios {ratios.tolist()} must be >= 0 and sum to 1",
            "fix train_ratio, val_ratio, test_ratio",
        )
    n = len(isolates)
    sizes = np.floor(ratios * n).astype(int)
    sizes[0] = n - sizes[1:].sum()
    needed = [(s, r) for s, r in zip(SPLITS, ratios, strict=True) if r > 0]
    if n < 2 * len(needed) or any(sizes[SPLITS.index(s)] < 2 for s, _ in needed):
        raise InputDataError(
            "segment_pairs",
            f"{n} isolates cannot fill train/val/test at ratios {ratios.tolist()} "
            f"(sizes {sizes.tolist()}; each non-empty split needs >= 2 isolates for negatives)",
            "add isolates, or raise the ratio of the small split",
        )
    perm = rng.permutation(isolates)
    cuts = np.cumsum(sizes)[:-1]
    return dict(zip(SPLITS, np.split(perm, cuts), strict=True))


def build_segment_pairs(
    proteins: pd.DataFrame,
    cooccurrence: pd.DataFrame,
    virus: VirusSpec,
    config: PairConfig | None = None,
) -> tuple[pd.DataFrame, PairStats, list[str]]:
    """(pairs table, statistics, sampled isolate ids) for a protein_final table.

    `cooccurrence` is the cooccurrence_sets table of the whole data version
    (seq_hash_a, seq_hash_b): every co-occurring pair is blocked as a negative.
    """
    config = config or PairConfig()
    rng = np.random.default_rng(config.seed)
    stats = PairStats()
    schema = _schema(virus, sorted(proteins["function"].unique()), config)
    functions = sorted({f for p in schema for f in p}, key=virus.protein_names().index)

    # only the columns pairs are built from: the sequences would be copied at every filter
    df = proteins.loc[proteins["function"].isin(functions), PAIR_INPUT_COLUMNS]
    df = df.reset_index(drop=True)
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
    """(codes, code of each of `seq_hash`, sorted pair keys of the co-occurring pairs among
    them): co-occurring pairs are blocked as negatives by key."""
    # polars hash joins: 3x faster than pandas' get_indexer on 2.4M hash strings (100k isolates)
    hashes = pl.from_pandas(seq_hash).cast(pl.String).rename("seq_hash")
    unique = hashes.unique().sort()
    code = pl.DataFrame({"seq_hash": unique, "h": pl.int_range(len(unique), eager=True)})
    h = hashes.to_frame().join(code, on="seq_hash", how="left", maintain_order="left")["h"]
    # Inner joins drop pairs involving sequences outside the table (other functions): such
    # pairs can never be drawn here.
    pairs = (
        pl.from_pandas(cooccurrence[["seq_hash_a", "seq_hash_b"]])
        .cast(pl.String)
        .join(code.rename({"seq_hash": "seq_hash_a", "h": "a"}), on="seq_hash_a")
        .join(code.rename({"seq_hash": "seq_hash_b", "h": "b"}), on="seq_hash_b")
    )
    n = len(unique)
    key = pl.min_horizontal("a", "b") * n + pl.max_horizontal("a", "b")
    blocked = pairs.select(key=key)["key"].unique().sort()
    return HashCodes(unique.to_numpy()), h.to_numpy(), blocked.to_numpy()


def _sequence_disjoint(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Keep each hash only in the split holding most of its occurrences (ties: train first)."""
    counts = df.groupby(["h", "split"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=[s for s in SPLITS if s in counts.columns])
    home = counts.idxmax(axis=1)  # idxmax takes the first maximum: train before val before test
    keep = df["split"].to_numpy() == df["h"].map(home).to_numpy()
    return df[keep].reset_index(drop=True), int((~keep).sum())


@dataclass
class SplitSampler:
    """The pair-drawing state of one split.

    Pairs are (ia, ib) arrays of row numbers into `part`. `used_keys` holds the pair keys
    of every pair accepted so far, in this split and earlier ones: pass the same set to
    each split's sampler (train, then val, then test). `stats` counts what was dropped
    and why; `rng` is consumed in a fixed order, so a seed gives the same pairs.
    """

    part: pd.DataFrame  # this split's proteins, with hash codes in column "h"
    codes_of: HashCodes
    blocked: np.ndarray  # sorted pair keys that co-occur in some isolate of the data version
    used_keys: set[int]
    config: PairConfig
    rng: np.random.Generator
    stats: PairStats
    taken_brc: set[int] = field(default_factory=set)  # protein-id pair keys of negatives

    def __post_init__(self) -> None:
        self.h = self.part["h"].to_numpy()
        self.iso = pd.factorize(self.part["assembly_id"])[0]
        self.func = self.part["function"].to_numpy()
        self.brc = pd.factorize(self.part["brc_fea_id"])[0].astype(np.int64)

    def accept(
        self, ia: np.ndarray, ib: np.ndarray, limit: int, *, same_func: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """The leakage rules for candidate negatives (ib -1: no partner drawn).

        Returns the first `limit` candidates that pass, in draw order, and records them
        as used; every rejection is counted in `stats.rejections` under its reason.
        `same_func` candidates pair two proteins of one function (capped by `limit`).
        """
        h, iso = self.h, self.iso
        ok = (ib >= 0) & (iso[ia] != iso[np.maximum(ib, 0)])  # a negative spans two isolates
        ia, ib = ia[ok], ib[ok]
        key = self.codes_of.pair_key(h[ia], h[ib])
        brc_key = _unordered_key(self.brc[ia], self.brc[ib], len(self.brc))
        # contradictory label: the pair co-occurs in some isolate of the data version
        bad = _in_sorted(key, self.blocked)
        if same_func:
            bad |= h[ia] == h[ib]  # one sequence paired with itself is no negative
        ia, ib, key, brc_key = self._reject("blocked_cooccur", bad, ia, ib, key, brc_key)
        if not same_func:  # the same two proteins again (same-function repeats: duplicate_seq)
            bad = _in_set(brc_key, self.taken_brc) | _repeated(brc_key)
            ia, ib, key, brc_key = self._reject("duplicate_brc", bad, ia, ib, key, brc_key)
        # duplicate pair: a pair key is used once, in one split
        bad = _in_set(key, self.used_keys) | _repeated(key)
        ia, ib, key, brc_key = self._reject("duplicate_seq", bad, ia, ib, key, brc_key)
        if same_func:
            self.stats.reject("same_func_limit", max(0, len(ia) - limit))
        self.used_keys.update(key[:limit].tolist())
        self.taken_brc.update(brc_key[:limit].tolist())
        return ia[:limit], ib[:limit]

    def _reject(self, reason: str, bad: np.ndarray, *arrays: np.ndarray) -> tuple:
        """`arrays` without the `bad` entries, which are counted as rejected for `reason`."""
        self.stats.reject(reason, bad.sum())
        return tuple(a[~bad] for a in arrays)

    def positives(self, schema: list[tuple[str, str]]) -> pd.DataFrame:
        """Same-isolate pairs of each schema pair's functions (slot A: the first), unique on
        the pair key and unused in earlier splits; columns ia, ib, schema_pair, pair_key,
        label, neg_type."""
        i, j = within_isolate_pairs(self.iso, self.h)
        fcode, fnames = pd.factorize(self.part["function"])
        code = {name: c for c, name in enumerate(fnames)}
        fi, fj = fcode[i], fcode[j]
        rows = []
        for a, b in schema:
            ca, cb = code.get(a, -1), code.get(b, -1)
            fwd = (fi == ca) & (fj == cb)
            rev = (fi == cb) & (fj == ca)
            ia = np.concatenate([i[fwd], j[rev]])
            ib = np.concatenate([j[fwd], i[rev]])
            rows.append(pd.DataFrame({"ia": ia, "ib": ib, "schema_pair": f"{a}-{b}"}))
        pos = pd.concat(rows, ignore_index=True)
        pos["pair_key"] = self.codes_of.pair_key(self.h[pos["ia"]], self.h[pos["ib"]])
        before = len(pos)
        pos = pos.drop_duplicates("pair_key", keep="first")
        self.stats.positives_duplicate_in_split += before - len(pos)
        seen = pd.Series(_in_set(pos["pair_key"].to_numpy(), self.used_keys), index=pos.index)
        self.stats.positives_seen_in_earlier_split += int(seen.sum())
        pos = pos[~seen]
        self.used_keys.update(pos["pair_key"].tolist())
        return pos.assign(label=1, neg_type="positive")

    def negatives(self, pos: pd.DataFrame, schema: list[tuple[str, str]]) -> pd.DataFrame:
        """Per schema pair, `neg_to_pos_ratio` x its positives in `pos`, plus same-function
        negatives where allowed; columns ia, ib, schema_pair, neg_type, label, pair_key."""
        groups = _match_groups(self.part, self.iso)
        out = []
        for a, b in schema:
            n_pos = int((pos["schema_pair"] == f"{a}-{b}").sum())
            need = int(round(self.config.neg_to_pos_ratio * n_pos))
            if need:
                out += self._cross_negatives(a, b, need, groups)
        if self.config.schema_pairs is None and self.config.allow_same_func_negatives:
            out.append(self._same_func_negatives(len(pos)))
        empty = pd.DataFrame({"ia": np.empty(0, np.int64), "ib": np.empty(0, np.int64),
                              "schema_pair": [], "neg_type": []})  # fmt: skip
        neg = pd.concat([empty, *out], ignore_index=True)
        neg["label"] = 0
        neg["pair_key"] = self.codes_of.pair_key(self.h[neg["ia"]], self.h[neg["ib"]])
        return neg

    def _cross_negatives(self, a: str, b: str, need: int, groups: tuple) -> list[pd.DataFrame]:
        """`need` negatives of functions (a, b): a `hard_negative_share` of them
        metadata-matched, the rest random; a shortfall is recorded in stats."""
        pool_a, pool_b = np.flatnonzero(self.func == a), np.flatnonzero(self.func == b)
        n_hard = int(round(self.config.hard_negative_share * need))
        frames = []
        got_hard = 0
        for kind in ("hard", "random"):
            # Hard negatives the metadata groups cannot supply are made up with random ones.
            target = n_hard if kind == "hard" else need - got_hard
            batches = self._draw(kind, pool_a, pool_b, target, groups)
            got = sum(len(ia) for ia, _ in batches)
            if kind == "hard":
                got_hard = got
            if got < target:
                self.stats.shortfalls.append(
                    f"{a}-{b} {kind} negatives: {got} of {target} after "
                    f"{self.config.max_draw_rounds} draws (too few eligible pairs)"
                    + ("; filled with random negatives" if kind == "hard" else "")
                )
            frames += [
                pd.DataFrame({"ia": ia, "ib": ib, "schema_pair": f"{a}-{b}", "neg_type": kind})
                for ia, ib in batches
            ]
        return frames

    def _draw(self, kind: str, pool_a: np.ndarray, pool_b: np.ndarray, target: int,
              groups: tuple) -> list[tuple[np.ndarray, np.ndarray]]:  # fmt: skip
        """Accepted (ia, ib) batches, up to `target` pairs in all, of slot A from `pool_a`
        and slot B from `pool_b` ("hard": same subtype, host and year), in at most
        `max_draw_rounds` draws."""
        batches, got = [], 0
        for _round in range(self.config.max_draw_rounds):
            if got >= target:
                break
            m = max(64, 3 * (target - got))
            ia = pool_a[self.rng.integers(len(pool_a), size=m)]
            if kind == "hard":
                ib = _partner_in_group(ia, pool_b, self.iso, groups, self.rng)
            else:
                ib = pool_b[self.rng.integers(len(pool_b), size=m)]
            batches.append(self.accept(ia, ib, target - got))
            got += len(batches[-1][0])
        return batches

    def _same_func_negatives(self, n_pos: int) -> pd.DataFrame:
        """Pairs of two proteins of one function from different isolates: one draw, at most
        `max_same_func_ratio` of all negatives (cross-function ones from `n_pos` positives)."""
        n_neg_cross = int(round(self.config.neg_to_pos_ratio * n_pos))
        r = self.config.max_same_func_ratio
        limit = int(r / (1 - r) * n_neg_cross) if r < 1 else n_neg_cross
        m = max(64, 3 * limit)
        # partner of the same function: proteins sorted by function, a random one of the block
        fcode = pd.factorize(self.func)[0]
        order = np.argsort(fcode, kind="stable")
        starts = np.searchsorted(fcode[order], np.arange(fcode.max() + 1))
        ends = np.r_[starts[1:], len(order)]
        ia = self.rng.integers(len(self.h), size=m)
        g = fcode[ia]
        ib = order[starts[g] + (self.rng.random(m) * (ends[g] - starts[g])).astype(np.int64)]
        ia, ib = self.accept(ia, ib, limit, same_func=True)
        schema = [f"{f}-{f}" for f in self.func[ia]]
        return pd.DataFrame({"ia": ia, "ib": ib, "schema_pair": schema, "neg_type": "same_func"})


PAIR_COLUMNS = [
    "brc_a", "brc_b", "label", "func_a", "func_b", "seg_a", "seg_b", "seq_hash_a", "seq_hash_b",
    "assembly_a", "assembly_b", "schema_pair", "neg_type", "split", "pair_key",
    *(f"same_{key}" for key in MATCH_KEYS),
]  # fmt: skip


def unordered_key(a: str, b: str) -> pl.Expr:
    """'lo|hi' of two string columns: the pairs table's pair_key, the same whichever
    sequence is a."""
    lo, hi = pl.col(a), pl.col(b)
    return (
        pl.when(lo <= hi)
        .then(pl.concat_str(lo, pl.lit("|"), hi))
        .otherwise(pl.concat_str(hi, pl.lit("|"), lo))
    )


def _assemble(idx: pd.DataFrame, df: pd.DataFrame) -> pd.DataFrame:
    """The pairs table (PAIR_COLUMNS) from row numbers into `df`: strings gathered with
    polars (3x faster than Arrow's take with pandas at 100k isolates), each handed to pandas
    as soon as it is built; the few-valued columns categorical (a 100k-isolate table stays
    small)."""
    proteins = pl.from_pandas(df[["brc_fea_id", "seq_hash", "assembly_id", "function",
                                  "segment", *MATCH_KEYS]])  # fmt: skip
    rows = {"a": pl.Series(idx["ia"].to_numpy()), "b": pl.Series(idx["ib"].to_numpy())}
    cols = {"label": idx["label"].to_numpy(dtype=np.int8)}
    hashes = pl.DataFrame({s: proteins["seq_hash"].cast(pl.String).gather(rows[s]) for s in "ab"})
    cols["pair_key"] = _pandas_string(hashes.select(unordered_key("a", "b")).to_series())
    cols |= {f"seq_hash_{s}": _pandas_string(hashes[s]) for s in "ab"}
    del hashes
    for column, out in (("brc_fea_id", "brc"), ("assembly_id", "assembly")):
        for s in "ab":
            cols[f"{out}_{s}"] = _pandas_string(proteins[column].cast(pl.String).gather(rows[s]))
    # slots A and B share categories, so func_a == func_b compares as users expect
    for column, out in (("function", "func"), ("segment", "seg")):
        values = proteins[column].cast(pl.String)
        categories = values.unique().sort()
        codes = values.cast(pl.Enum(categories)).to_physical()
        for s in "ab":
            cols[f"{out}_{s}"] = pd.Categorical.from_codes(
                codes.gather(rows[s]).to_numpy(), categories=categories.to_list()
            )
    cols["schema_pair"] = pd.Categorical(idx["schema_pair"])
    cols["neg_type"] = pd.Categorical(idx["neg_type"])
    cols["split"] = pd.Categorical(idx["split"], categories=list(SPLITS))
    # metadata match flags (for stratified evaluation); unknown matches nothing
    for key_column in MATCH_KEYS:
        same = proteins[key_column].gather(rows["a"]) == proteins[key_column].gather(rows["b"])
        cols[f"same_{key_column}"] = same.fill_null(False).to_numpy()
    return pd.DataFrame({column: cols[column] for column in PAIR_COLUMNS})


def _pandas_string(values: pl.Series) -> pd.Series:
    """A polars string column as pandas `string[pyarrow]` (held as Arrow large_string)."""
    return pd.Series(values.to_arrow(compat_level=pl.CompatLevel.oldest()), dtype="string[pyarrow]")


def _match_groups(part: pd.DataFrame, iso: np.ndarray):
    """Isolates grouped by (subtype, host, year): group of each isolate (-1 where any of
    the three is unknown: such an isolate matches nothing), members by group."""
    meta = part.groupby(iso)[list(MATCH_KEYS)].first()
    unknown = meta.isna().any(axis=1).to_numpy()
    text = meta.astype(str)
    key = (text["subtype"] + "|" + text["host"] + "|" + text["year"]).to_numpy(dtype=object)
    key[unknown] = None
    group_of_iso = pd.factorize(key, use_na_sentinel=True)[0]
    order = np.argsort(group_of_iso, kind="stable")
    starts = np.searchsorted(group_of_iso[order], np.arange(group_of_iso.max() + 1))
    ends = np.r_[starts[1:], len(order)]
    return group_of_iso, order, starts, ends


def _partner_in_group(ia, pool_b, iso, groups, rng) -> np.ndarray:
    """For each protein index in `ia`, a protein of `pool_b`'s function from another isolate
    with the same subtype, host and year; -1 where none was drawn."""
    group_of_iso, order, starts, ends = groups
    # the pool_b protein of each isolate (first one if several)
    b_of_iso = np.full(len(group_of_iso), -1, dtype=np.int64)
    iso_b = iso[pool_b]
    first = ~_repeated(iso_b)
    b_of_iso[iso_b[first]] = pool_b[first]
    g = group_of_iso[iso[ia]]
    known = g >= 0
    out = np.full(len(ia), -1, dtype=np.int64)
    size = ends[g[known]] - starts[g[known]]
    pick = order[starts[g[known]] + (rng.random(int(known.sum())) * size).astype(np.int64)]
    out[known] = b_of_iso[pick]
    return out
