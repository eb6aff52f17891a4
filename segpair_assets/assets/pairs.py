"""Stage 3: co-occurrence sets and leakage-safe train/val/test segment pairs."""

from typing import Literal

import dagster as dg
import pandas as pd
from pydantic import Field

from resources.reproducibility import Reproducibility
from resources.storage import SegpairStorage
from resources.viruses import VirusRegistryResource
from segpair.atomic import write_text_atomic
from segpair.pairs.cooccurrence import build_cooccurrence
from segpair.pairs.segment_pairs import PairConfig, PairStats, build_segment_pairs
from segpair.report import markdown_table
from segpair_assets.metadata import table
from segpair_assets.partitions import virus_and_version, virus_data_version_partitions
from segpair_assets.provenance import record_provenance


@dg.asset(
    partitions_def=virus_data_version_partitions,
    io_manager_key="parquet_io_manager",
    group_name="pairs",
    kinds={"pandas", "parquet"},
    description=(
        "Every pair of sequences (by sequence hash, unordered) seen together in any isolate "
        "of the data version, with the number of isolates it occurs in. A co-occurring pair "
        "could be a positive, so it is never used as a negative."
    ),
)
def cooccurrence_sets(
    context: dg.AssetExecutionContext,
    storage: SegpairStorage,
    reproducibility: Reproducibility,
    protein_final: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    record_provenance(context, storage, reproducibility)
    table, stats = build_cooccurrence(protein_final)
    spread = table["n_isolates"].value_counts().sort_index()
    spread = spread.rename_axis("isolates").reset_index(name="pairs")
    return dg.Output(
        table,
        metadata={
            "dagster/row_count": len(table),
            **stats,
            "pairs_by_isolate_count": dg.MetadataValue.md(markdown_table(spread, max_rows=15)),
        },
    )


_PAIRS = PairConfig()  # the core's defaults are the launchpad's


class SegmentPairsConfig(dg.Config):
    schema_pairs: list[list[str]] | None = Field(
        default=None,
        description='Function pairs [A, B] (slot A first), e.g. [["HA", "NA"]]; unset: '
        "every pair of the selected functions.",
    )
    selected_functions: list[str] | None = Field(
        default=None, description="Functions to pair; unset: the virus's primary proteins."
    )
    neg_to_pos_ratio: float = Field(default=_PAIRS.neg_to_pos_ratio, gt=0)
    allow_same_func_negatives: bool = Field(
        default=_PAIRS.allow_same_func_negatives,
        description="All-pairs mode only: allow negatives of two proteins of one function "
        "(a conserved function's near-identical proteins would teach the model that "
        "similar means unrelated).",
    )
    max_same_func_ratio: float = Field(default=_PAIRS.max_same_func_ratio, ge=0, le=1)
    hard_negative_share: float = Field(
        default=_PAIRS.hard_negative_share,
        ge=0,
        le=1,
        description="Share of negatives drawn from isolates matching on subtype, host, year.",
    )
    split_mode: Literal["isolate", "sequence"] = Field(
        default=_PAIRS.split_mode,
        description="'isolate': no isolate in two splits (always); 'sequence': additionally "
        "no sequence hash in two splits (stricter).",
    )
    train_ratio: float = _PAIRS.train_ratio
    val_ratio: float = _PAIRS.val_ratio
    test_ratio: float = _PAIRS.test_ratio
    seed: int | None = Field(
        default=None,
        description="Seed of the split and negative draws; unset: derived from the "
        "reproducibility resource's master_seed (process 'dataset').",
    )
    max_isolates_to_process: int | None = Field(
        default=_PAIRS.max_isolates_to_process,
        description="Sample this many isolates (seeded); the list is written.",
    )


def _two_columns(values: dict, key: str, value: str) -> pd.DataFrame:
    return pd.DataFrame({key: list(values), value: list(values.values())})


def pairs_metadata(pairs: pd.DataFrame, stats: PairStats, split_mode: str) -> dict:
    counts = pd.DataFrame(stats.counts).T.reindex(["train", "val", "test"]).dropna(how="all")
    counts = counts.fillna(0).astype(int)
    by_schema = (
        pairs.groupby(["schema_pair", "split", "label"]).size().unstack(["label"], fill_value=0)
    )
    by_schema = by_schema.reset_index().rename(columns={0: "negative", 1: "positive"})
    preview = pairs[["split", "brc_a", "brc_b", "label", "schema_pair", "neg_type"]]
    return {
        "dagster/row_count": len(pairs),
        "split_counts": table(counts.reset_index(names="split")),
        "pairs_by_schema": table(by_schema),
        "isolates_per_split": table(_two_columns(stats.isolates_per_split, "split", "isolates")),
        "rejections": table(_two_columns(stats.rejections, "reason", "candidates_rejected")),
        "shortfalls": dg.MetadataValue.md(
            "\n".join(f"- {line}" for line in stats.shortfalls) or "none"
        ),
        "positives_seen_in_earlier_split": stats.positives_seen_in_earlier_split,
        "positives_duplicate_in_split": stats.positives_duplicate_in_split,
        "dropped_for_sequence_disjoint": stats.dropped_for_sequence_disjoint,
        "split_mode": split_mode,
        "preview": dg.MetadataValue.md(
            markdown_table(preview.sample(min(10, len(pairs)), random_state=0))
        ),
    }


@dg.asset(
    partitions_def=virus_data_version_partitions,
    io_manager_key="parquet_io_manager",
    group_name="pairs",
    kinds={"pandas", "parquet"},
    description=(
        "Train/val/test segment pairs (one Parquet, column `split`): brc_a, brc_b, label, "
        "functions, segments, hashes, isolates, schema pair, negative type and metadata "
        "match flags. Isolate-disjoint splits, co-occurrence-blocked negatives, no pair key "
        "in two splits; optional sequence-disjoint mode. Metadata: split_counts and "
        "pairs_by_schema (pairs per split and label), isolates_per_split, rejections "
        "(candidate pairs refused, per reason: blocked_cooccur = the two sequences occur "
        "together in some isolate, so not a true negative), shortfalls (where fewer pairs "
        "than asked exist), positives_seen_in_earlier_split (positive pairs whose sequence "
        "pair already stands in an earlier split: dropped, so no pair crosses splits), "
        "positives_duplicate_in_split (the same sequence pair from two isolates of one "
        "split, kept once), dropped_for_sequence_disjoint (proteins removed by "
        "split_mode='sequence')."
    ),
)
def segment_pairs(
    context: dg.AssetExecutionContext,
    config: SegmentPairsConfig,
    storage: SegpairStorage,
    viruses: VirusRegistryResource,
    reproducibility: Reproducibility,
    protein_final: pd.DataFrame,
    cooccurrence_sets: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    virus_name, version = virus_and_version(context)
    seed = reproducibility.seed("dataset", config.seed)
    record_provenance(context, storage, reproducibility, config, {"dataset": seed})
    pair_config = PairConfig(**{**config.model_dump(), "seed": seed})
    pairs, stats, sampled = build_segment_pairs(
        protein_final, cooccurrence_sets, viruses.get(virus_name), pair_config
    )
    pairs["split_mode"] = config.split_mode
    for line in stats.shortfalls:
        context.log.warning(f"shortfall: {line}")
    metadata = pairs_metadata(pairs, stats, config.split_mode)
    if config.max_isolates_to_process:
        path = storage.processed_dir(virus_name, version) / "sampled_isolates.txt"
        write_text_atomic(path, "\n".join(sampled) + "\n")
        metadata["sampled_isolates_file"] = dg.MetadataValue.path(str(path))
    return dg.Output(pairs, metadata=metadata)
