"""Asset checks: the invariants each asset promises, visible in the Dagster UI."""

import dagster as dg
import pandas as pd

from resources.embedding_io_manager import embedder_of
from segpair.embeddings.cache import CachePaths, EmbeddingStore
from segpair.embeddings.validation import check_cache
from segpair.pairs.leakage import leakage_report, proteins_without_embedding
from segpair.validation import CheckOutcome, check_protein_final
from segpair_assets.assets.embeddings import embedding_asset_names, embedding_assets
from segpair_assets.assets.pairs import segment_pairs
from segpair_assets.assets.preprocessing import protein_final
from segpair_assets.embedders import DEFAULT_EMBEDDER, embedder_descriptions
from segpair_assets.partitions import partitioned_asset_check, virus_and_version

MAIN_JOB_EMBEDDINGS = embedding_asset_names(needs_weights=False)


def outcome_result(outcomes: dict[str, CheckOutcome]) -> dg.AssetCheckResult:
    """One check result from named invariants: pass only if all pass, each one in metadata."""
    return dg.AssetCheckResult(
        passed=all(o.passed for o in outcomes.values()),
        metadata={
            name: dg.MetadataValue.text(
                "pass" if o.passed else f"FAIL: {o.description}; e.g. {o.failing_examples}"
            )
            for name, o in outcomes.items()
        },
    )


@partitioned_asset_check(
    asset=protein_final,
    blocking=True,
    description="Unique brc_fea_id, non-empty sequences, only the 20 standard residues and X, "
    "length equal to the sequence length, every column present.",
)
def protein_final_is_valid(protein_final: pd.DataFrame) -> dg.AssetCheckResult:
    return outcome_result(check_protein_final(protein_final))


def build_embedding_check(asset: dg.AssetsDefinition) -> dg.AssetChecksDefinition:
    name = asset.key.path[-1]

    @partitioned_asset_check(
        asset=asset,
        name=f"{name}_is_complete",
        blocking=True,
        additional_ins={"protein_final": dg.AssetIn("protein_final")},
        required_resource_keys={"storage"},
        description="Exact dimension, no NaN/Inf, one row per unique sequence, index rows "
        "holding their own keys, and every protein_final id mapped or in failed_ids.csv.",
    )
    def _check(
        context: dg.AssetCheckExecutionContext, protein_final: pd.DataFrame
    ) -> dg.AssetCheckResult:
        virus, version = virus_and_version(context)
        paths = CachePaths.for_partition(
            context.resources.storage.root, virus, version, embedder_of(asset.key)
        )
        with EmbeddingStore(paths) as store:
            return outcome_result(check_cache(store, protein_final))

    return _check


embedding_checks = [build_embedding_check(a) for a in embedding_assets]


@partitioned_asset_check(
    asset=segment_pairs,
    blocking=True,
    additional_ins={"cooccurrence_sets": dg.AssetIn("cooccurrence_sets")},
    description="No pair key in two splits, no isolate in two splits, no negative whose two "
    "sequences co-occur in any isolate, and in sequence mode no sequence in two splits.",
)
def segment_pairs_leakage_free(
    segment_pairs: pd.DataFrame, cooccurrence_sets: pd.DataFrame
) -> dg.AssetCheckResult:
    mode = str(segment_pairs["split_mode"].iloc[0]) if len(segment_pairs) else "isolate"
    return outcome_result(leakage_report(segment_pairs, cooccurrence_sets, mode))


@partitioned_asset_check(
    asset=segment_pairs,
    additional_deps=[a.key for a in embedding_assets if a.key.path[-1] in MAIN_JOB_EMBEDDINGS],
    required_resource_keys={"storage"},
    description=f"Every protein in a pair has a vector in each master cache of this partition. "
    f"Fails as an error when the default cache ({DEFAULT_EMBEDDER}) lacks one, as a warning "
    "for other embedders (e.g. nucleotide embedders on protein-only data).",
)
def segment_pairs_proteins_embedded(
    context: dg.AssetCheckExecutionContext, segment_pairs: pd.DataFrame
) -> dg.AssetCheckResult:
    virus, version = virus_and_version(context)
    outcomes: dict[str, CheckOutcome] = {}
    for name in embedder_descriptions():
        paths = CachePaths.for_partition(context.resources.storage.root, virus, version, name)
        if paths.exists():
            with EmbeddingStore(paths) as store:
                outcomes[name] = proteins_without_embedding(
                    segment_pairs, store.index["brc_fea_id"]
                )
    if DEFAULT_EMBEDDER not in outcomes:
        outcomes[DEFAULT_EMBEDDER] = CheckOutcome(
            False, f"a {DEFAULT_EMBEDDER} master cache exists", ["materialize it first"]
        )
    result = outcome_result(outcomes)
    severity = (
        dg.AssetCheckSeverity.ERROR
        if not outcomes[DEFAULT_EMBEDDER].passed
        else dg.AssetCheckSeverity.WARN
    )
    return dg.AssetCheckResult(passed=result.passed, metadata=result.metadata, severity=severity)
