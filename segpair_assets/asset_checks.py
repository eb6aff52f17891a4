"""Asset checks: the invariants each asset promises, visible in the Dagster UI."""

import dagster as dg
import pandas as pd

from resources.embedding_io_manager import embedder_of
from segpair.embeddings.cache import CachePaths, EmbeddingStore
from segpair.embeddings.validation import check_cache
from segpair.validation import CheckOutcome, check_protein_final
from segpair_assets.assets.embeddings import embedding_assets
from segpair_assets.assets.preprocessing import protein_final
from segpair_assets.partitions import partitioned_asset_check, virus_and_version


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
