"""Scoring protein pairs with a trained pair classifier: the user-facing prediction path.

Given a checkpoint (`model.pt`) and proteins (a `protein_final` table, or files read by
`read_proteins`), score either pairs the user names or every cross-segment pair inside
each isolate. The proteins are embedded by the embedder rebuilt from the checkpoint's
description, and the checkpoint refuses to load unless that embedder's signature and
dimension equal the ones it was trained on.

Pairs are oriented as in training: function a is the first of the model's schema pair
(or, for pairs outside it, the earlier protein in the registry's order). Pairs whose
functions the model never saw are scored but marked `in_training_schema = False`: the
model has no evidence about them.

No silent wrong results: a model scores only proteins of the virus it was trained on
(`PairScorer.virus_name`, `read_model_proteins` name the virus the input holds instead);
no pair to score, or none that could be scored (e.g. a nucleotide k-mer model given
protein sequences), is an InputDataError saying why; pairs of which only some could be
scored keep a status per pair and are counted by `not_scored_summary`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from segpair.atomic import atomic_path
from segpair.cleaning import CleaningReport, build_protein_final
from segpair.embeddings.base import Embedder, input_kinds, signature_of
from segpair.embeddings.cache import EmbeddingStore
from segpair.embeddings.factory import embedder_from_description
from segpair.embeddings.merged import MergedSourceMismatch
from segpair.embeddings.pipeline import input_sequences
from segpair.errors import InputDataError
from segpair.readers import read_data_version, read_fasta, read_tables
from segpair.readers.manifest import is_fasta_path, is_table_path
from segpair.registry import VirusSpec
from segpair.training.checkpoint import (
    CheckpointMismatchError,
    load_checkpoint,
    read_checkpoint,
)
from segpair.training.model import PairClassifier
from segpair.training.plots import score_histogram_png
from segpair.training.train import predict

SCORE_COLUMNS = [
    *("assembly_id_a", "assembly_id_b", "brc_a", "brc_b", "function_a", "function_b"),
    *("schema_pair", "in_training_schema", "score", "same_isolate", "status"),
]
Progress = Callable[[int, int], None]  # (sequences embedded so far, total)


# ------------------------------------------------------------------ input


def read_proteins(
    path: Path, virus: VirusSpec, metadata_table: Path | None = None
) -> tuple[pd.DataFrame, CleaningReport, str]:
    """A protein_final table from a data-version folder, a FASTA file or a table file,
    cleaned by the same rule as the pipeline: (proteins, cleaning report, reader used)."""
    path = Path(path)
    if path.is_dir():
        result, _manifest, _reason = read_data_version(path, virus)
    elif is_fasta_path(path):
        result = read_fasta([path], virus, metadata_table)
    elif is_table_path(path):
        result = read_tables([path], virus)
    else:
        raise InputDataError(
            str(path),
            "is neither a folder, a FASTA file (.fasta/.fa/.faa/.fna) nor a table "
            "(.tsv/.csv/.parquet)",
            "give a data-version folder or one file with one of those suffixes",
        )
    proteins, report = build_protein_final(result.records, virus)
    report.issues.merge(result.issues)  # records the reader dropped are counted too
    return proteins, report, result.reader


def _reads_as(path: Path, virus: VirusSpec, metadata_table: Path | None) -> int:
    """How many proteins `path` yields when read as `virus` (0 when it cannot be read so)."""
    try:
        return len(read_proteins(path, virus, metadata_table)[0])
    except InputDataError:
        return 0


def read_model_proteins(
    path: Path,
    virus: VirusSpec,
    viruses: Iterable[VirusSpec],
    metadata_table: Path | None = None,
) -> tuple[pd.DataFrame, CleaningReport, str]:
    """`read_proteins` for a model trained on `virus`. Input that cannot be read as that virus,
    or yields none of its proteins, is refused; when another of `viruses` reads it, the
    error names that virus (a model never scores proteins of a virus it was not trained on)."""
    try:
        proteins, report, reader = read_proteins(path, virus, metadata_table)
        if len(proteins):
            return proteins, report, reader
        failure = None
    except InputDataError as err:
        failure = err
    for other in viruses:
        n = _reads_as(path, other, metadata_table) if other.name != virus.name else 0
        if n:
            raise InputDataError(
                str(path),
                f"holds {other.name} proteins ({n} read as {other.display_name}), but the model "
                f"was trained on {virus.name}: it knows nothing about {other.name} proteins",
                f"score them with a model trained on {other.name} (the model.pt of a "
                f"pair_classifier_* asset of a {other.name} partition)",
            )
    if failure is not None:
        raise failure
    dropped = "; ".join(report.issues.summary_lines()) or "no records"
    raise InputDataError(
        str(path), f"holds no protein of {virus.name}, the model's virus ({dropped})",
        f"give proteins of {virus.name}, or score with a model trained on their virus",
    )  # fmt: skip


# ------------------------------------------------------------------ pairs


def _function_order(virus: VirusSpec) -> dict[str, int]:
    return {name: i for i, name in enumerate(virus.protein_names())}


_SIDES = (("brc_a", "brc_b"), ("function_a", "function_b"), ("assembly_id_a", "assembly_id_b"))


def swap_rule(virus: VirusSpec, schema_pairs) -> Callable[[str, str], bool]:
    """Whether a pair of functions (a, b) is turned round for the model: as the model saw
    the pair in training, else registry order (a model trained on all pairs)."""
    trained = {tuple(p) for p in schema_pairs} if schema_pairs else None
    order = _function_order(virus)

    def swapped(a: str, b: str) -> bool:
        if trained is not None and (a, b) in trained:
            return False
        if trained is not None and (b, a) in trained:
            return True
        return order.get(a, len(order)) > order.get(b, len(order))

    return swapped


def _oriented(pairs: pl.DataFrame, virus: VirusSpec, schema_pairs) -> pl.DataFrame:
    """`orient` on a polars frame: the rule is decided once per function pair."""
    trained = {tuple(p) for p in schema_pairs} if schema_pairs else None
    swapped = swap_rule(virus, schema_pairs)
    rule = []
    for a, b in pairs.select("function_a", "function_b").unique().rows():
        swap = swapped(a, b)
        first, second = (b, a) if swap else (a, b)
        inside = first != second if trained is None else (first, second) in trained
        rule.append((a, b, swap, inside))
    rule = pl.DataFrame(
        rule,
        schema={"function_a": pl.String, "function_b": pl.String, "_swap": pl.Boolean,
                "in_training_schema": pl.Boolean},
        orient="row",
    )  # fmt: skip
    pairs = pairs.join(rule, on=["function_a", "function_b"], how="left", maintain_order="left")
    swap = pl.col("_swap").fill_null(False)
    pairs = pairs.with_columns(
        *(pl.when(swap).then(pl.col(b)).otherwise(pl.col(a)).alias(a) for a, b in _SIDES),
        *(pl.when(swap).then(pl.col(a)).otherwise(pl.col(b)).alias(b) for a, b in _SIDES),
        in_training_schema=pl.col("in_training_schema").fill_null(False),
    )
    schema_pair = pl.concat_str("function_a", pl.lit("-"), "function_b")
    pairs = pairs.drop("_swap").with_columns(schema_pair=schema_pair)
    return pairs.select(pl.exclude("in_training_schema"), "in_training_schema")


def orient(
    pairs: pd.DataFrame, virus: VirusSpec, schema_pairs: list[list[str]] | None
) -> pd.DataFrame:
    """Swap a/b where the model saw the functions the other way round (registry order for
    pairs it never saw); mark pairs outside the training schema (trained on all pairs:
    every pair of two different functions is inside)."""
    columns = [c for side in _SIDES for c in side]
    done = _oriented(pl.from_pandas(pairs[columns].astype(str)), virus, schema_pairs)
    out = pairs.copy()
    for column in columns:
        out[column] = pd.Series(done[column].to_numpy(), index=out.index, dtype=out[column].dtype)
    out["schema_pair"] = pd.Series(done["schema_pair"].to_numpy(), index=out.index, dtype=str)
    out["in_training_schema"] = done["in_training_schema"].to_numpy()
    return out


def isolate_pairs(
    proteins: pd.DataFrame,
    virus: VirusSpec,
    schema_pairs: list[list[str]] | None,
    only_training_schema: bool = True,
) -> pd.DataFrame:
    """Every cross-segment protein pair inside each isolate (assembly), oriented for the model;
    with `only_training_schema`, only the function pairs the model was trained on. Rows in
    the order of the first protein, then the second, in `proteins`."""
    # polars self-join: 7x faster than pandas merge + per-row orientation (BENCHMARKS.md)
    p = pl.from_pandas(proteins[["brc_fea_id", "assembly_id", "segment", "function"]].astype(str))
    order = _function_order(virus)
    p = p.with_columns(rank=pl.col("function").replace_strict(order, default=len(order)))
    rank, rank_b = pl.col("rank"), pl.col("rank_b")
    # keep each unordered pair once (the earlier function in registry order first)
    first = (rank < rank_b) | ((rank == rank_b) & (pl.col("brc_fea_id") < pl.col("brc_fea_id_b")))
    pairs = (
        p.join(p, on="assembly_id", suffix="_b", maintain_order="left_right")
        .filter(pl.col("segment") != pl.col("segment_b"), first)
        .select(
            assembly_id_a="assembly_id", assembly_id_b="assembly_id", brc_a="brc_fea_id",
            brc_b="brc_fea_id_b", function_a="function", function_b="function_b",
        )
    )  # fmt: skip
    pairs = _oriented(pairs, virus, schema_pairs)
    if only_training_schema:
        pairs = pairs.filter("in_training_schema")
    return pairs.to_pandas()


WITHIN_ISOLATE_FIX = (
    "pairs are scored within an isolate: give the proteins of one isolate the same isolate id "
    "(a table's assembly_id column; for FASTA the strain in the header or a --metadata table), "
    "or list the pairs to score (segpair score --pairs)"
)


def pairing_problem(
    proteins: pd.DataFrame, schema_pairs: list[list[str]] | None, where: str = "proteins"
) -> InputDataError | None:
    """Why `proteins` hold no within-isolate pair of the model's schema pairs (None when they
    hold one); `schema_pairs` None means every pair of two segments."""
    if proteins.empty:
        return InputDataError(where, "no proteins", "give proteins of the model's virus")
    isolates = proteins.groupby(proteins["assembly_id"].astype(str))
    functions = set(proteins["function"].astype(str))
    if not schema_pairs:
        if (isolates["segment"].nunique() > 1).any():
            return None
        return InputDataError(
            where, f"none of the {len(isolates)} isolates holds proteins of two segments",
            WITHIN_ISOLATE_FIX,
        )  # fmt: skip
    label = ", ".join(f"{a}-{b}" for a, b in schema_pairs)
    present = [(a, b) for a, b in schema_pairs if {a, b} <= functions]
    if not present:
        missing = sorted({f for pair in schema_pairs for f in pair} - functions)
        return InputDataError(
            where,
            f"the model was trained on {label} pairs, but the input has no "
            f"{' and no '.join(missing)} protein (its functions: {sorted(functions)})",
            "give proteins of both functions of a pair the model was trained on (segpair score "
            "--all-function-pairs also scores other function pairs, about which the model has "
            "no evidence)",
        )
    held = isolates["function"].apply(lambda f: set(f.astype(str)))
    if any(held.map(lambda f, a=a, b=b: {a, b} <= f).any() for a, b in present):
        return None
    counts = {f: int(held.map(lambda h, f=f: f in h).sum()) for pair in present for f in pair}
    return InputDataError(
        where,
        "no isolate holds proteins of both "
        + " or of both ".join(f"{a} and {b}" for a, b in present)
        + f" (isolates with each: {counts})",
        WITHIN_ISOLATE_FIX,
    )


PAIR_ID_COLUMNS = [("brc_a", "brc_b"), ("id_a", "id_b"), ("protein_a", "protein_b")]


def requested_pairs(
    proteins: pd.DataFrame, wanted: pd.DataFrame, virus: VirusSpec, schema_pairs, where: str
) -> pd.DataFrame:
    """The pairs a user lists (columns brc_a/brc_b, id_a/id_b or protein_a/protein_b),
    looked up in the proteins and oriented for the model."""
    cols = next((c for c in PAIR_ID_COLUMNS if set(c) <= set(wanted.columns)), None)
    if cols is None:
        raise InputDataError(
            where,
            f"has columns {list(wanted.columns)}, none of the pair id column pairs "
            f"{PAIR_ID_COLUMNS}",
            "name the two protein id columns brc_a and brc_b",
        )
    a, b = wanted[cols[0]].astype(str), wanted[cols[1]].astype(str)
    known = proteins.set_index(proteins["brc_fea_id"].astype(str))
    unknown = sorted((set(a) | set(b)) - set(known.index))
    if unknown:
        raise InputDataError(
            where,
            f"names {len(unknown)} protein ids not among the proteins given, e.g. {unknown[:5]}",
            "use the ids of the protein input (its brc_fea_id column; for FASTA the record id)",
        )
    pairs = pd.DataFrame({
        "assembly_id_a": known.loc[a, "assembly_id"].astype(str).to_numpy(),
        "assembly_id_b": known.loc[b, "assembly_id"].astype(str).to_numpy(),
        "brc_a": a.to_numpy(), "brc_b": b.to_numpy(),
        "function_a": known.loc[a, "function"].astype(str).to_numpy(),
        "function_b": known.loc[b, "function"].astype(str).to_numpy(),
    })  # fmt: skip
    return orient(pairs, virus, schema_pairs)


def read_pair_list(path: Path) -> pd.DataFrame:
    from segpair.readers.common import read_any_table

    return read_any_table(Path(path))


# ------------------------------------------------------------------ scoring


@dataclass
class PairScorer:
    """A checkpoint together with the embedder it needs."""

    model: PairClassifier
    meta: dict
    embedder: Embedder | None  # None when the vectors come from a master cache
    path: Path | None = None  # the checkpoint file

    @classmethod
    def from_checkpoint(
        cls, path: Path, model: str | None = None, device: str = "auto"
    ) -> PairScorer:
        """Load `model.pt`, rebuild its embedder (weights from `model` when they moved)."""
        blob = read_checkpoint(path)
        meta = blob["meta"]
        description = meta.get("embedder_description")
        if not description:
            raise CheckpointMismatchError(
                f"{path} does not record how its embeddings were made (saved by an older "
                "segpair): re-materialize its pair_classifier asset to score with it"
            )
        try:
            embedder = embedder_from_description(meta["embedder"], description, model, device)
        except MergedSourceMismatch as err:  # a rebuilt source makes other vectors
            raise CheckpointMismatchError(f"{path}: {err}") from None
        signature = signature_of(embedder.describe())
        clf, meta = load_checkpoint(path, signature, embedder.dim, blob=blob)
        return cls(clf, meta, embedder, Path(path))

    def virus_name(self, requested: str | None = None) -> str:
        """The virus to score: the one the model was trained on; asking for another is
        refused (its proteins mean nothing to the model: it would score them anyway)."""
        trained = self.meta.get("virus")
        if requested and trained and requested != trained:
            raise InputDataError(
                str(self.path or "the model"),
                f"the model was trained on {trained} proteins, but the virus asked for is "
                f"{requested} (-v {requested}): it has learnt nothing about {requested} proteins",
                f"score {requested} proteins with a model trained on {requested} (the model.pt "
                f"of a pair_classifier_* asset of a {requested} partition), or leave out -v to "
                f"score {trained} proteins",
            )
        if not (requested or trained):
            raise InputDataError(str(self.path or "the model"), "records no virus",
                                 "name the virus of the proteins with -v")  # fmt: skip
        return requested or trained

    @property
    def threshold(self) -> float:
        return float(self.meta["threshold"])

    @property
    def schema_pairs(self) -> list[list[str]] | None:
        return self.meta.get("schema_pairs")

    def embed(
        self, proteins: pd.DataFrame, chunk: int = 512, progress: Progress | None = None
    ) -> tuple[np.ndarray, dict[str, int], dict[str, str]]:
        """(vectors, protein id -> row, protein id -> why it has no vector); each distinct
        sequence is embedded once."""
        if self.embedder is None:
            raise ValueError("this scorer has no embedder: build it with from_checkpoint")
        ids = proteins["brc_fea_id"].astype(str).to_numpy()
        seqs = input_sequences(proteins, self.embedder.input_kind).to_numpy()
        unique, inverse = np.unique(seqs, return_inverse=True)
        vectors = np.zeros((len(unique), self.embedder.dim), dtype=np.float32)
        ok = np.zeros(len(unique), dtype=bool)
        reasons: dict[int, str] = {}
        for s in range(0, len(unique), chunk):
            block = [str(x) for x in unique[s : s + chunk]]
            todo = [i for i, x in enumerate(block) if x]
            out = self.embedder.embed([block[i] for i in todo])
            for row, pos in enumerate(out.ok):
                vectors[s + todo[pos]] = out.vectors[row]
                ok[s + todo[pos]] = True
            reasons.update({s + todo[pos]: why for pos, why in out.failed.items()})
            reasons.update({s + i: f"no {self.embedder.input_kind} sequence" for i, x in
                            enumerate(block) if not x})  # fmt: skip
            if progress:
                progress(min(s + chunk, len(unique)), len(unique))
        row_of = {pid: int(inverse[i]) for i, pid in enumerate(ids) if ok[inverse[i]]}
        failed = {pid: reasons.get(int(inverse[i]), "not embedded") for i, pid in enumerate(ids)
                  if not ok[inverse[i]]}  # fmt: skip
        return vectors, row_of, failed

    def score(
        self,
        pairs: pd.DataFrame,
        vectors: np.ndarray,
        row_of: dict[str, int],
        failed: dict[str, str],
    ) -> pd.DataFrame:
        """Scores for oriented pairs; pairs with a protein that has no vector get status
        'not scored: ...' and an empty score."""
        a_rows = pairs["brc_a"].map(row_of)
        b_rows = pairs["brc_b"].map(row_of)
        scorable = (a_rows.notna() & b_rows.notna()).to_numpy()
        scores = np.full(len(pairs), np.nan, dtype=np.float32)
        if scorable.any():
            a = vectors[a_rows[scorable].astype(int).to_numpy()]
            b = vectors[b_rows[scorable].astype(int).to_numpy()]
            scores[scorable] = predict(self.model, a, b)
        out = pairs.copy()
        out["score"] = scores
        out["same_isolate"] = pd.array(
            np.where(scorable, scores >= self.threshold, pd.NA), dtype="boolean"
        )
        status = np.full(len(pairs), "scored", dtype=object)
        for i in np.flatnonzero(~scorable):
            pid = out["brc_a"].iat[i] if out["brc_a"].iat[i] not in row_of else out["brc_b"].iat[i]
            status[i] = f"not scored: {pid} {failed.get(pid, 'has no vector')}"
        out["status"] = status
        return out[SCORE_COLUMNS]

    def score_proteins(
        self,
        proteins: pd.DataFrame,
        virus: VirusSpec,
        wanted: pd.DataFrame | None = None,
        wanted_where: str = "pair list",
        only_training_schema: bool = True,
        progress: Progress | None = None,
        where: str = "proteins",
    ) -> pd.DataFrame:
        """Score the listed pairs, or else every cross-segment pair inside each isolate.
        No pair to score, or none that could be scored, is an InputDataError saying why
        (`where` names the proteins' source); pairs of which only some could be scored are
        returned with their status (`not_scored_summary` counts them)."""
        if wanted is not None:
            pairs = requested_pairs(proteins, wanted, virus, self.schema_pairs, wanted_where)
            if pairs.empty:
                raise InputDataError(wanted_where, "lists no pairs",
                                     "list one pair a row, in columns brc_a and brc_b")  # fmt: skip
        else:
            schema = self.schema_pairs if only_training_schema else None
            problem = pairing_problem(proteins, schema, where)
            if problem is not None:
                raise problem
            pairs = isolate_pairs(proteins, virus, self.schema_pairs, only_training_schema)
        used = set(pairs["brc_a"]) | set(pairs["brc_b"])
        subset = proteins[proteins["brc_fea_id"].astype(str).isin(used)]
        vectors, row_of, failed = self.embed(subset, progress=progress)
        if not row_of:
            raise self.unembeddable(len(pairs), subset, failed, where)
        return self.score(pairs, vectors, row_of, failed)

    def unembeddable(
        self, n_pairs: int, proteins: pd.DataFrame, failed: dict[str, str], where: str
    ) -> InputDataError:
        """The error for pairs none of whose proteins the model's embedder could embed."""
        name, kind = self.embedder.name, self.embedder.input_kind
        head = f"0 of {n_pairs} pairs could be scored"
        reads_nucleotides = "nucleotide" in input_kinds(kind)  # a merged one may read both
        if reads_nucleotides and not input_sequences(proteins, "nucleotide").str.len().any():
            return InputDataError(
                where,
                f"{head}: a {name} model embeds nucleotide sequences (the coding DNA), but "
                "the input has protein sequences only",
                "give the segments' nucleotide sequences (a nucleotide FASTA, or a table with "
                "an nt_seq column), or score with a model trained on a protein embedder "
                "(kmer_aa3, esm2)",
            )
        reasons = "; ".join(f"{n} {why}" for why, n in Counter(failed.values()).most_common())
        return InputDataError(
            where, f"{head}: {name} could embed none of their proteins ({reasons})",
            f"give {kind} sequences that {name} can embed",
        )  # fmt: skip


def not_scored_summary(scores: pd.DataFrame) -> str | None:
    """'k of n pairs not scored: <count> <reason>; ...' for pairs that could not be scored
    (a protein without a vector), or None when every pair was scored."""
    unscored = scores[scores["status"] != "scored"]
    if unscored.empty:
        return None
    reasons = Counter(
        status.removeprefix(f"not scored: {a} ").removeprefix(f"not scored: {b} ")
        for status, a, b in zip(unscored["status"], unscored["brc_a"], unscored["brc_b"],
                                strict=True)
    )  # fmt: skip
    listed = "; ".join(f"{n} {why}" for why, n in reasons.most_common())
    return (f"{len(unscored)} of {len(scores)} pairs not scored: {listed} (their status "
            "column names the protein)")  # fmt: skip


def mark_seen_pairs(scores: pd.DataFrame, segment_pairs: pd.DataFrame) -> pd.DataFrame:
    """Add `seen_in`: the split in which the pair (either orientation) was a labelled pair of
    segment_pairs (the last one listed, should it be in several), or 'new'. Scores of
    training pairs are optimistic; val/test/new are not."""
    # a polars join on the unordered protein pair: 5x faster than a dict of 2 x 4.85M
    # Python tuples at 100k isolates (BENCHMARKS.md)
    a, b = pl.col("brc_a").cast(pl.String), pl.col("brc_b").cast(pl.String)
    unordered = (pl.min_horizontal(a, b).alias("lo"), pl.max_horizontal(a, b).alias("hi"))
    labelled = pl.from_pandas(segment_pairs[["brc_a", "brc_b", "split"]]).select(
        *unordered, seen_in=pl.col("split").cast(pl.String)
    )
    labelled = labelled.unique(subset=["lo", "hi"], keep="last")
    seen = (
        pl.from_pandas(scores[["brc_a", "brc_b"]])
        .select(*unordered)
        .join(labelled, on=["lo", "hi"], how="left", maintain_order="left")
    )
    out = scores.copy()
    out["seen_in"] = seen["seen_in"].fill_null("new").to_numpy()
    return out


def isolate_summary(scores: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Per isolate, from its within-isolate pair scores: the weakest pair and how many pairs
    fall below the threshold. Isolates at the top are the candidates for mis-joined
    records or reassortment."""
    within = scores[(scores["assembly_id_a"] == scores["assembly_id_b"]) & scores["score"].notna()]
    within = within.astype({"score": "float64"})
    if within.empty:
        return pd.DataFrame(
            columns=["assembly_id", "n_pairs", "n_below_threshold", "min_score", "weakest_pair"]
        )
    weakest = within.loc[within.groupby("assembly_id_a")["score"].idxmin()]
    summary = within.groupby("assembly_id_a").agg(
        n_pairs=("score", "size"),
        n_below_threshold=("score", lambda s: int((s < threshold).sum())),
        min_score=("score", "min"),
    )
    summary["weakest_pair"] = weakest.set_index("assembly_id_a").apply(
        lambda r: f"{r['brc_a']} ({r['function_a']}) - {r['brc_b']} ({r['function_b']})", axis=1
    )
    return (
        summary.reset_index(names="assembly_id")
        .sort_values(["n_below_threshold", "min_score"], ascending=[False, True])
        .reset_index(drop=True)
    )


# what `seen_in` can say of a scored pair
SEEN_IN_GROUPS = ("train", "val", "test", "new")


def score_isolate_pairs(
    scorer: PairScorer, pairs: pd.DataFrame, embeddings: EmbeddingStore
) -> pd.DataFrame:
    """Scores of `pairs`; proteins the cache lacks are reported as not scored."""
    used = sorted(set(pairs["brc_a"]) | set(pairs["brc_b"]))
    have = set(embeddings.index["brc_fea_id"])
    present = [p for p in used if p in have]
    vectors = embeddings.gather(present)
    row_of = {pid: i for i, pid in enumerate(present)}
    failed = {pid: "has no embedding in the master cache" for pid in used if pid not in have}
    return scorer.score(pairs, vectors, row_of, failed)


def write_scoring_outputs(out_dir: Path, scores: pd.DataFrame, threshold: float, title: str):
    """isolate_summary.csv and the score histogram; returns (summary, groups, png)."""
    summary = isolate_summary(scores, threshold)
    with atomic_path(out_dir / "isolate_summary.csv") as tmp:
        summary.to_csv(tmp, index=False)
    scored = scores[scores["score"].notna()]
    groups = {g: scored.loc[scored["seen_in"] == g, "score"].to_numpy() for g in SEEN_IN_GROUPS}
    png = score_histogram_png(groups, threshold, title)
    with atomic_path(out_dir / "isolate_pair_scores.png") as tmp:
        tmp.write_bytes(png)
    return summary, groups, png
