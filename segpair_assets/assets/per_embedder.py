"""The decorator the per-embedder assets of the models group share: partitioned, reading
`segment_pairs` and the embedder's master cache, tagged by whether weights are needed."""

import dagster as dg

from resources.embedding_io_manager import ASSET_PREFIX
from segpair_assets.embedders import needs_weights_tags
from segpair_assets.partitions import virus_data_version_partitions


def model_stage_asset(embedder: str, *, name: str, extra_ins: tuple[str, ...] = (), **kwargs):
    ins = {
        **{asset: dg.AssetIn(asset) for asset in extra_ins},
        "segment_pairs": dg.AssetIn("segment_pairs"),
        "embeddings": dg.AssetIn(f"{ASSET_PREFIX}{embedder}"),
    }
    return dg.asset(
        name=name,
        partitions_def=virus_data_version_partitions,
        ins=ins,
        group_name="models",
        tags=needs_weights_tags(embedder),
        **kwargs,
    )
