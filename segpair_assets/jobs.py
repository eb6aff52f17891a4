"""Jobs users launch: the main job, the language-model job, and one preset job per virus."""

from __future__ import annotations

import dagster as dg

from segpair.embeddings.catalog import CATALOG, EmbedderCatalog
from segpair.registry import VirusRegistry, VirusSpec
from segpair_assets.assets.per_embedder import NEEDS_WEIGHTS_TAG

MAIN_JOB = "segpair_main_job"
LANGUAGE_MODEL_JOB = "segpair_language_model_job"
_needs_weights = dg.AssetSelection.tag(NEEDS_WEIGHTS_TAG, "true")
MAIN_SELECTION = dg.AssetSelection.all() - _needs_weights


def virus_job_name(virus: str) -> str:
    return f"segpair_{virus}_job"


def virus_preset(virus: VirusSpec, catalog: EmbedderCatalog = CATALOG) -> dict:
    """The run config a virus's job starts from: its primary proteins paired, its training
    schema pairs, then the registry's `run_config` entries on top."""
    ops: dict[str, dict] = {
        "segment_pairs": {"selected_functions": virus.protein_names(primary_only=True)},
    }
    classifier: dict = {}
    if virus.training_schema_pairs:
        classifier["schema_pairs"] = virus.training_schema_pairs
    extra = dict(virus.run_config)
    classifier.update(extra.pop("pair_classifier", {}))
    if classifier:
        for spec in catalog.weight_free():
            ops[spec.classifier_asset] = dict(classifier)
    for asset, fields in extra.items():
        ops[asset] = {**ops.get(asset, {}), **fields}
    return {"ops": {asset: {"config": fields} for asset, fields in ops.items()}}


def virus_job(virus: VirusSpec, catalog: EmbedderCatalog) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        name=virus_job_name(virus.name),
        selection=MAIN_SELECTION,
        config=virus_preset(virus, catalog),
        description=f"The main job with the {virus.display_name} preset from the virus "
        "registry (segpair/viruses.toml): which proteins are paired and which schema pairs the "
        "classifiers train on. What the data-version sensor and the weekly schedule launch.",
    )


def build_virus_jobs(registry: VirusRegistry, catalog: EmbedderCatalog) -> list:
    return [virus_job(v, catalog) for v in registry.viruses.values()]


segpair_main_job = dg.define_asset_job(
    name=MAIN_JOB,
    selection=MAIN_SELECTION,
    description="Materialize every segpair asset that runs anywhere (no model weights needed), "
    "with its checks, for one virus x data_version.",
)

segpair_language_model_job = dg.define_asset_job(
    name=LANGUAGE_MODEL_JOB,
    selection=_needs_weights | _needs_weights.upstream(),
    description="Materialize the language-model embedding caches (ESM-2, FastESM2, "
    "Nucleotide Transformer) and what they need; run where the weights and a GPU are.",
)
