"""What the per-embedder assets share: the embedder catalog's names, tags and metadata,
and the decorator of the stages after the cache (partitioned, reading `segment_pairs` and
the embedder's master cache)."""

import dagster as dg

from resources.embedding_io_manager import EMBEDDER_METADATA_KEY
from segpair.embeddings.catalog import EmbedderSpec
from segpair_assets.partitions import virus_data_version_partitions

# Assets that need model weights carry this tag: the main job leaves them out.
NEEDS_WEIGHTS_TAG = "segpair/needs_weights"


def needs_weights_tags(spec: EmbedderSpec) -> dict[str, str]:
    return {NEEDS_WEIGHTS_TAG: str(spec.needs_weights).lower()}


def embedder_metadata(spec: EmbedderSpec) -> dict[str, str]:
    return {EMBEDDER_METADATA_KEY: spec.name}


def model_stage_asset(spec: EmbedderSpec, *, name: str, extra_ins: tuple[str, ...] = (), **kw):
    ins = {
        **{asset: dg.AssetIn(asset) for asset in extra_ins},
        "segment_pairs": dg.AssetIn("segment_pairs"),
        "embeddings": dg.AssetIn(spec.cache_asset),
    }
    return dg.asset(
        name=name,
        partitions_def=virus_data_version_partitions,
        ins=ins,
        group_name="models",
        tags=needs_weights_tags(spec),
        **kw,
    )
