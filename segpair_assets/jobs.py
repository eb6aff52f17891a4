"""Jobs users launch: the main job, the language-model job, the opt-in job, and one preset
job per virus."""

from __future__ import annotations

import dagster as dg

from segpair.embeddings.catalog import CATALOG, EmbedderCatalog
from segpair.registry import VirusRegistry, VirusSpec
from segpair_assets.assets.per_embedder import NEEDS_WEIGHTS_TAG, OPT_IN_TAG
from segpair_assets.code_versions import EMBEDDER_TAG
from segpair_assets.partitions import (
    VIRUS_TAG,
    split_partition_key,
    virus_data_version_partitions,
    virus_job_name,
    wrong_virus_message,
)

MAIN_JOB = "segpair_main_job"
LANGUAGE_MODEL_JOB = "segpair_language_model_job"
OPT_IN_JOB = "segpair_opt_in_job"
_needs_weights = dg.AssetSelection.tag(NEEDS_WEIGHTS_TAG, "true")
# weight-free entries kept out of the main job (`in_main_job=False` in the catalog)
_opt_in = dg.AssetSelection.tag(OPT_IN_TAG, "true") - _needs_weights
MAIN_SELECTION = dg.AssetSelection.all() - _needs_weights - _opt_in


def virus_preset(
    virus: VirusSpec, catalog: EmbedderCatalog = CATALOG, language_models: list[str] = ()
) -> dict:
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
        for spec in [*catalog.in_main_job(), *map(catalog.get, language_models)]:
            ops[spec.classifier_asset] = dict(classifier)
    for asset, fields in extra.items():
        ops[asset] = {**ops.get(asset, {}), **fields}
    return {"ops": {asset: {"config": fields} for asset, fields in ops.items()}}


def virus_job(
    virus: VirusSpec, catalog: EmbedderCatalog, language_models: list[str] = ()
) -> dg.UnresolvedAssetJobDefinition:
    """The main job with the virus's preset, for the virus's partitions only.

    A job's partitions are its assets' (Dagster 1.13 infers them; `partitions_def` on an
    asset job is deprecated and must equal them), so the launchpad offers every virus.
    The preset is therefore given per partition, and another virus's partition has none:
    the launchpad and the Materialize dialog show the refusal when it is picked, and a run
    launched around them (the GraphQL API, a re-execution) fails at its first asset
    (`partitions.virus_and_version` reads the run's virus tag)."""
    name, preset = virus_job_name(virus.name), virus_preset(virus, catalog, language_models)
    selection = MAIN_SELECTION
    for embedder in language_models:
        selection = selection | dg.AssetSelection.tag(EMBEDDER_TAG, embedder)
    with_models = (
        f" With weights configured, also {list(language_models)}."
        if language_models
        else " Language models: none (no weights configured)."
    )

    def preset_for(partition_key: str) -> dict:
        other, version = split_partition_key(partition_key)
        if other != virus.name:
            raise ValueError(wrong_virus_message(name, virus.name, other, version))
        return preset

    return dg.define_asset_job(
        name=name,
        selection=selection,
        config=dg.PartitionedConfig(
            partitions_def=virus_data_version_partitions, run_config_for_partition_key_fn=preset_for
        ),
        run_tags={VIRUS_TAG: virus.name},
        description=f"The main job with the {virus.display_name} preset from the virus "
        "registry (segpair/viruses.toml): which proteins are paired and which schema pairs the "
        f"classifiers train on. {virus.name} partitions only: the preset appears in the "
        "launchpad once the partition is picked. What the data-version sensor and the weekly "
        "schedule launch." + with_models,
    )


def build_virus_jobs(
    registry: VirusRegistry, catalog: EmbedderCatalog, language_models: list[str] = ()
) -> list:
    """One preset job per virus; `language_models` (those with weights configured) join
    its selection, so the sensor and the weekly schedule refresh them too."""
    return [virus_job(v, catalog, language_models) for v in registry.viruses.values()]


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

segpair_opt_in_job = dg.define_asset_job(
    name=OPT_IN_JOB,
    selection=_opt_in.upstream(),
    description="Materialize the weight-free embedders kept out of the main job for its time "
    "budget (the merged kmer_nt6_aa3: its cache, classifier, diagnostics, scoring and "
    "evaluation) and what they need, for one virus x data_version.",
)
