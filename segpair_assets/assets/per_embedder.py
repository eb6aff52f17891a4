"""What the per-embedder assets share: the embedder catalog's names, tags, metadata and
lineage groups, and the decorator of the stages after the cache (partitioned, reading
`segment_pairs` and the embedder's master cache)."""

import dagster as dg

from resources.embedding_io_manager import EMBEDDER_METADATA_KEY
from segpair.embeddings.catalog import EmbedderSpec
from segpair_assets.partitions import virus_data_version_partitions

# Assets that need model weights carry this tag: the main job leaves them out.
NEEDS_WEIGHTS_TAG = "segpair/needs_weights"
# Assets of an entry kept out of the main job (`in_main_job=False` in the catalog) carry
# this tag: segpair_opt_in_job runs them.
OPT_IN_TAG = "segpair/opt_in"
# Every asset that needs model weights, whatever its role, sits in this lineage group, so
# "Materialize all" in any other group (or in the main job's graph) runs without weights.
LANGUAGE_MODELS_GROUP = "language_models"


def job_tags(spec: EmbedderSpec) -> dict[str, str]:
    """The tags the jobs select by: whether weights are needed, whether the entry is opt-in."""
    opt_in = {} if spec.in_main_job else {OPT_IN_TAG: "true"}
    return {NEEDS_WEIGHTS_TAG: str(spec.needs_weights).lower(), **opt_in}


def embedder_metadata(spec: EmbedderSpec) -> dict[str, str]:
    return {EMBEDDER_METADATA_KEY: spec.name}


def stage_group(spec: EmbedderSpec, asset: str) -> str:
    """The lineage group of one of the embedder's assets: its role (the cross-version
    evaluation goes with the classifiers it evaluates), or `language_models`."""
    if spec.needs_weights:
        return LANGUAGE_MODELS_GROUP
    return {
        spec.cache_asset: "embeddings",
        spec.classifier_asset: "classifiers",
        spec.evaluation_asset: "classifiers",
        spec.diagnostics_asset: "diagnostics",
        spec.map_asset: "diagnostics",
        spec.scores_asset: "scoring",
    }[asset]


def weights_note(spec: EmbedderSpec) -> str:
    """The description's opening for an asset that needs weights (the graph shows it)."""
    if not spec.needs_weights:
        return ""
    if spec.is_merged:
        return (
            f"NEEDS the {' and '.join(spec.sources_needing_weights)} model weights (through "
            "their caches, which it merges); not in the main or virus jobs. "
        )
    where = f"{spec.model_env_var} or the" if spec.model_env_var else "the"
    return (
        f"NEEDS the {spec.name} model weights ({where} `embedders` resource's "
        f"language_models.{spec.name}.model); not in the main or virus jobs. "
    )


def model_stage_asset(spec: EmbedderSpec, *, name: str, extra_ins: tuple[str, ...] = (), **kw):
    ins = {
        **{asset: dg.AssetIn(asset) for asset in extra_ins},
        "segment_pairs": dg.AssetIn("segment_pairs"),
        "embeddings": dg.AssetIn(spec.cache_asset),
    }
    if "description" in kw:
        kw["description"] = weights_note(spec) + kw["description"]
    return dg.asset(
        name=name,
        partitions_def=virus_data_version_partitions,
        ins=ins,
        group_name=stage_group(spec, name),
        tags=job_tags(spec),
        **kw,
    )
