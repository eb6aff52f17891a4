"""Stage 2: master embedding caches, one asset per embedder (`master_embeddings_{name}`)."""

from typing import Literal

import dagster as dg
import pandas as pd
from pydantic import Field

from resources.embedders import ComputeDevice
from resources.embedding_io_manager import ASSET_PREFIX
from resources.storage import SegpairStorage
from segpair.embeddings.cache import CachePaths
from segpair.embeddings.pipeline import PreparedCache, prepare_master_cache, previous_caches
from segpair.report import markdown_table
from segpair_assets.embedders import KMER_EMBEDDERS, embedder_descriptions, needs_weights_tags
from segpair_assets.partitions import virus_and_version, virus_data_version_partitions

GPU_POOL = "gpu"


class EmbeddingConfig(dg.Config):
    force_recompute: bool = Field(
        default=False, description="Recompute every vector, ignoring stored and staged ones."
    )
    reuse_previous_versions: bool = Field(
        default=True,
        description="Take vectors for sequences already embedded, with the same model "
        "signature, in this virus's other data versions.",
    )
    chunk_size: int = Field(
        default=1024, gt=0, description="Sequences per staged chunk (the unit of resume)."
    )
    storage_precision: Literal["fp16", "fp32"] = "fp16"


def build_embedding_asset(name: str, description: str) -> dg.AssetsDefinition:
    needs_weights = name not in KMER_EMBEDDERS

    @dg.asset(
        name=f"{ASSET_PREFIX}{name}",
        partitions_def=virus_data_version_partitions,
        io_manager_key="embedding_io_manager",
        required_resource_keys={f"embedder_{name}", "compute_device", "storage"},
        group_name="embeddings",
        kinds={"hdf5", "parquet", "pytorch" if needs_weights else "numpy"},
        tags=needs_weights_tags(name),
        # one language-model step per GPU: the pool's limit is set in dagster.yaml
        pool=GPU_POOL if needs_weights else None,
        description=(
            f"Master embedding cache, {description}. One HDF5 file (`emb` N x D, `emb_keys`, "
            "model metadata in attrs) and a Parquet index brc_fea_id -> row under "
            "data/embeddings/{virus}/{data_version}/. Identical sequences share a row; rows "
            "already computed here or in earlier data versions are reused; a killed run "
            "resumes; failures go to failed_ids.csv."
        ),
    )
    def _embeddings(
        context: dg.AssetExecutionContext, config: EmbeddingConfig, protein_final: pd.DataFrame
    ) -> dg.Output[PreparedCache]:
        virus, version = virus_and_version(context)
        storage: SegpairStorage = context.resources.storage
        device: ComputeDevice = context.resources.compute_device
        embedder = getattr(context.resources, f"embedder_{name}").build(name, device)
        paths = CachePaths.for_partition(storage.root, virus, version, name)
        previous = (
            previous_caches(storage.root, virus, version, name)
            if config.reuse_previous_versions
            else []
        )
        prepared = prepare_master_cache(
            protein_final,
            embedder,
            paths,
            previous=previous,
            force_recompute=config.force_recompute,
            chunk_size=config.chunk_size,
            storage_precision=config.storage_precision,
            progress=context.log.info,
        )
        r = prepared.report
        if r.failed_proteins == r.n_proteins:
            context.log.warning(
                f"no protein of {virus} x {version} could be embedded by {name}: the cache is "
                f"empty. Reasons: {r.failure_examples[:3]}"
            )
        elif r.failed_proteins:
            context.log.warning(
                f"{r.failed_proteins} proteins not embedded (see {paths.failed}); "
                f"e.g. {r.failure_examples[:3]}"
            )
        attrs = {k: v for k, v in prepared.attrs.items() if k != "library_versions"}
        return dg.Output(
            prepared,
            metadata={
                "dagster/row_count": len(prepared.row_keys),
                "embedder": name,
                "model_name": str(prepared.attrs.get("model_name")),
                "signature": r.signature,
                "dim": r.dim,
                "proteins": r.n_proteins,
                "unique_sequences": r.n_unique_keys,
                "reused_in_place": r.reused_in_place,
                "reused_from_earlier_versions": sum(r.reused_previous.values()),
                "reused_by_version": dg.MetadataValue.json(r.reused_previous),
                "resumed_from_interrupted_run": r.resumed_from_chunks,
                "computed": r.computed,
                "failed_proteins": r.failed_proteins,
                "truncated": r.truncated,
                "compute_seconds": round(r.compute_seconds, 2),
                "sequences_per_s": round(r.sequences_per_s, 1),
                "tokens_per_s": round(r.tokens_per_s, 0),
                "model_metadata": dg.MetadataValue.md(
                    markdown_table(
                        pd.DataFrame([attrs])
                        .T.reset_index()
                        .set_axis(["attribute", "value"], axis=1),
                        max_rows=40,
                        max_cell=80,
                    )
                ),
                **(
                    {"failure_examples": dg.MetadataValue.json(r.failure_examples)}
                    if r.failure_examples
                    else {}
                ),
            },
        )

    return _embeddings


embedding_assets = [
    build_embedding_asset(name, desc) for name, desc in embedder_descriptions().items()
]


def embedding_asset_names(needs_weights: bool) -> list[str]:
    return [
        f"{ASSET_PREFIX}{n}"
        for n in embedder_descriptions()
        if (n not in KMER_EMBEDDERS) == needs_weights
    ]
