"""Asset checks: the invariants each asset promises, visible in the Dagster UI."""

import json

import dagster as dg
import pandas as pd

from resources.storage import SegpairStorage
from segpair.embeddings.cache import EmbeddingStore
from segpair.embeddings.catalog import EmbedderCatalog, EmbedderSpec
from segpair.embeddings.validation import check_cache
from segpair.pairs.leakage import leakage_report, proteins_without_embedding
from segpair.training.model_history import ModelHistory
from segpair.validation import CheckOutcome, check_protein_final
from segpair_assets.assets.pairs import segment_pairs
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


def build_embedding_check(spec: EmbedderSpec) -> dg.AssetChecksDefinition:
    @partitioned_asset_check(
        asset=spec.cache_asset,
        name=f"{spec.cache_asset}_is_complete",
        blocking=True,
        additional_ins={"protein_final": dg.AssetIn("protein_final")},
        description="Exact dimension, no NaN/Inf, one row per unique sequence, index rows "
        "holding their own keys, and every protein_final id mapped or in failed_ids.csv.",
    )
    def _check(
        context: dg.AssetCheckExecutionContext, storage: SegpairStorage, protein_final: pd.DataFrame
    ) -> dg.AssetCheckResult:
        virus, version = virus_and_version(context)
        with EmbeddingStore(storage.cache_paths(virus, version, spec.name)) as store:
            return outcome_result(check_cache(store, protein_final))

    return _check


def build_embedding_checks(catalog: EmbedderCatalog) -> list[dg.AssetChecksDefinition]:
    return [build_embedding_check(spec) for spec in catalog]


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


def build_proteins_embedded_check(catalog: EmbedderCatalog) -> dg.AssetChecksDefinition:
    """Every protein of segment_pairs has a vector in each weight-free cache."""
    default = catalog.default

    @partitioned_asset_check(
        asset=segment_pairs,
        # after the main job's caches (others are checked when they exist)
        additional_deps=[spec.cache_asset for spec in catalog.in_main_job()],
        description="Every protein in a pair has a vector in each master cache of this "
        f"partition. Fails as an error when the default cache ({default}) lacks one, as a "
        "warning for other embedders (e.g. nucleotide embedders on protein-only data).",
    )
    def segment_pairs_proteins_embedded(
        context: dg.AssetCheckExecutionContext,
        storage: SegpairStorage,
        segment_pairs: pd.DataFrame,
    ) -> dg.AssetCheckResult:
        virus, version = virus_and_version(context)
        outcomes: dict[str, CheckOutcome] = {}
        for spec in catalog:
            paths = storage.cache_paths(virus, version, spec.name)
            if paths.exists():
                with EmbeddingStore(paths) as store:
                    ids = store.index["brc_fea_id"]
                    outcomes[spec.name] = proteins_without_embedding(segment_pairs, ids)
        if default not in outcomes:
            outcomes[default] = CheckOutcome(
                False, f"a {default} master cache exists", ["materialize it first"]
            )
        result = outcome_result(outcomes)
        severity = dg.AssetCheckSeverity.WARN if outcomes[default].passed else (
            dg.AssetCheckSeverity.ERROR)  # fmt: skip
        return dg.AssetCheckResult(
            passed=result.passed, metadata=result.metadata, severity=severity
        )

    return segment_pairs_proteins_embedded


HARD_NEGATIVE_AUC = 0.85  # same-subtype negatives: the regime a scientist cares about most


def _verdict(storage: SegpairStorage, context, spec: EmbedderSpec) -> dict:
    virus, version = virus_and_version(context)
    metrics = ModelHistory(storage.model_dir(virus, version, spec.name)).resolve() / "metrics.json"
    return json.loads(metrics.read_text())["verdict"]


def build_classifier_checks(spec: EmbedderSpec) -> list[dg.AssetChecksDefinition]:
    """Warnings in the UI when the classifier does not beat its best baseline, or does not
    separate same-subtype negatives; they never block downstream scoring."""

    @partitioned_asset_check(
        asset=spec.classifier_asset,
        name="beats_baselines",
        description="The model's test AUC exceeds the best baseline's (logreg, 1-NN, k-NN, "
        "GBT on the same pairs), with a paired bootstrap 95% CI above zero.",
    )
    def beats_baselines(context: dg.AssetCheckExecutionContext, storage: SegpairStorage):
        v = _verdict(storage, context, spec)
        return dg.AssetCheckResult(
            passed=bool(v["beats_best_baseline"]), severity=dg.AssetCheckSeverity.WARN,
            metadata={"verdict": v["summary"], "best_baseline": v["best_baseline"],
                      "auc_difference": round(v["auc_difference"], 4),
                      "ci_low": round(v["auc_difference_ci_low"], 4),
                      "ci_high": round(v["auc_difference_ci_high"], 4)},
        )  # fmt: skip

    @partitioned_asset_check(
        asset=spec.classifier_asset,
        name="separates_hard_negatives",
        description=f"Test AUC of positives against same-subtype negatives >= "
        f"{HARD_NEGATIVE_AUC} (the negatives a lookup by subtype cannot reject).",
    )
    def separates_hard_negatives(context: dg.AssetCheckExecutionContext, storage: SegpairStorage):
        auc = _verdict(storage, context, spec)["same_subtype_negatives_auc"]
        if auc is None:
            return dg.AssetCheckResult(
                passed=False, severity=dg.AssetCheckSeverity.WARN,
                metadata={"why": "no same-subtype negatives in the test split: build "
                          "segment_pairs with hard_negative_share > 0 to measure it"},
            )  # fmt: skip
        return dg.AssetCheckResult(
            passed=auc >= HARD_NEGATIVE_AUC, severity=dg.AssetCheckSeverity.WARN,
            metadata={"same_subtype_negatives_auc": round(auc, 4), "goal": HARD_NEGATIVE_AUC},
        )  # fmt: skip

    return [beats_baselines, separates_hard_negatives]


def build_classifier_checks_for(catalog: EmbedderCatalog) -> list[dg.AssetChecksDefinition]:
    return [check for spec in catalog for check in build_classifier_checks(spec)]
