"""Stage 2: master embedding caches, one asset per embedder (`master_embeddings_{name}`)."""

from dataclasses import asdict
from typing import Literal

import dagster as dg
import pandas as pd
from pydantic import Field

from resources.embedders import ComputeDevice
from resources.embedding_io_manager import ASSET_PREFIX
from resources.storage import SegpairStorage
from segpair.embeddings.base import signature_of
from segpair.embeddings.cache import CachePaths
from segpair.embeddings.device import device_for_shard
from segpair.embeddings.pipeline import PreparedCache, prepare_master_cache, previous_caches
from segpair.embeddings.sharding import (
    ShardPlan,
    check_shard_signatures,
    credit_shards,
    embed_shard,
    plan_shards,
)
from segpair.report import markdown_table
from segpair_assets.embedders import KMER_EMBEDDERS, embedder_descriptions, needs_weights_tags
from segpair_assets.partitions import virus_and_version, virus_data_version_partitions

GPU_POOL = "gpu"
# Celery routes steps by this tag: the embedding steps go to workers on GPU machines.
CELERY_QUEUE_TAG = "dagster-celery/queue"
GPU_QUEUE = "gpu"
# Small values passed between the sharded steps (plans, shard reports).
SHARD_IO_MANAGER = "shard_io_manager"


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


def _report_problems(context, prepared: PreparedCache, label: str) -> None:
    r = prepared.report
    if r.failed_proteins == r.n_proteins:
        context.log.warning(
            f"no protein of {label} could be embedded: the cache is empty. "
            f"Reasons: {r.failure_examples[:3]}"
        )
    elif r.failed_proteins:
        context.log.warning(
            f"{r.failed_proteins} proteins not embedded (see {prepared.paths.failed}); "
            f"e.g. {r.failure_examples[:3]}"
        )


def _cache_metadata(name: str, prepared: PreparedCache) -> dict:
    r = prepared.report
    attrs = {k: v for k, v in prepared.attrs.items() if k != "library_versions"}
    return {
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
                pd.DataFrame([attrs]).T.reset_index().set_axis(["attribute", "value"], axis=1),
                max_rows=40,
                max_cell=80,
            )
        ),
        **(
            {"failure_examples": dg.MetadataValue.json(r.failure_examples)}
            if r.failure_examples
            else {}
        ),
    }


def _previous(storage: SegpairStorage, virus: str, version: str, name: str, config) -> list:
    if not config.reuse_previous_versions:
        return []
    return previous_caches(storage.root, virus, version, name)


def build_embedding_asset(name: str, description: str) -> dg.AssetsDefinition:
    """One step: reuse what is stored, compute the rest, commit (the k-mer embedders)."""

    @dg.asset(
        name=f"{ASSET_PREFIX}{name}",
        partitions_def=virus_data_version_partitions,
        io_manager_key="embedding_io_manager",
        required_resource_keys={f"embedder_{name}", "compute_device", "storage"},
        group_name="embeddings",
        kinds={"hdf5", "parquet", "numpy"},
        tags=needs_weights_tags(name),
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
        prepared = prepare_master_cache(
            protein_final,
            embedder,
            CachePaths.for_partition(storage.root, virus, version, name),
            previous=_previous(storage, virus, version, name, config),
            force_recompute=config.force_recompute,
            chunk_size=config.chunk_size,
            storage_precision=config.storage_precision,
            progress=context.log.info,
        )
        _report_problems(context, prepared, f"{virus} x {version} ({name})")
        return dg.Output(prepared, metadata=_cache_metadata(name, prepared))

    return _embeddings


class ShardedEmbeddingConfig(EmbeddingConfig):
    shards: int = Field(
        default=1,
        ge=1,
        le=1024,
        description="Split the sequences to compute into this many hash-range shards, one "
        "step each: several GPUs (one machine, or Celery workers) share one partition.",
    )


def _cache_step_context(context, name: str, config: ShardedEmbeddingConfig):
    virus, version = virus_and_version(context)
    storage: SegpairStorage = context.resources.storage
    paths = CachePaths.for_partition(storage.root, virus, version, name)
    return paths, _previous(storage, virus, version, name, config)


def build_sharded_embedding_asset(name: str, description: str) -> dg.AssetsDefinition:
    """plan -> one step per hash-range shard (the GPU work) -> commit, as a graph-backed
    asset: each shard is a Dagster step, so any executor spreads them (the multiprocess
    executor across a machine's GPUs, Celery across machines). All three steps load the
    same model on the same kind of worker, so they agree on its signature."""

    def step(op_name: str, op_description: str, out, **extra):
        # every step loads the model: same resources, all routed to the GPU queue
        return dg.op(
            name=op_name,
            description=op_description,
            out=out,
            required_resource_keys={f"embedder_{name}", "compute_device", "storage"},
            tags={CELERY_QUEUE_TAG: GPU_QUEUE},
            **extra,
        )

    def embedder_for(context, device_name: str | None = None):
        device: ComputeDevice = context.resources.compute_device
        return getattr(context.resources, f"embedder_{name}").build(name, device, device_name)

    @step(
        f"plan_{name}_shards",
        "Count the sequences not yet stored per hash-range shard; one output per shard.",
        dg.DynamicOut(dict, io_manager_key=SHARD_IO_MANAGER),
    )
    def plan(context: dg.OpExecutionContext, config: ShardedEmbeddingConfig, protein_final):
        paths, previous = _cache_step_context(context, name, config)
        plans = plan_shards(
            protein_final,
            embedder_for(context),
            paths,
            previous,
            config.shards,
            force_recompute=config.force_recompute,
        )
        context.log.info(
            f"{name}: {sum(p.to_compute for p in plans)} sequences to compute in "
            f"{config.shards} shard(s): " + ", ".join(f"{p.label}: {p.to_compute}" for p in plans)
        )
        for p in plans:
            yield dg.DynamicOutput(asdict(p), mapping_key=f"shard_{p.shard}")

    @step(
        f"embed_{name}_shard",
        "Embed one shard's sequences on this worker's GPU and stage them as chunk files "
        "(resumable).",
        dg.Out(dict, io_manager_key=SHARD_IO_MANAGER),
        # one language-model step per GPU: the pool's limit is set in dagster.yaml
        pool=GPU_POOL,
    )
    def embed(
        context: dg.OpExecutionContext, config: ShardedEmbeddingConfig, protein_final, shard
    ) -> dict:
        paths, previous = _cache_step_context(context, name, config)
        plan_ = ShardPlan(**shard)
        device: ComputeDevice = context.resources.compute_device
        report = embed_shard(
            protein_final,
            embedder_for(context, device_for_shard(device.device, plan_.shard)),
            paths,
            previous,
            plan_.shard,
            plan_.n_shards,
            reuse_stored=not config.force_recompute,
            chunk_size=config.chunk_size,
            progress=context.log.info,
        )
        context.log.info(
            f"{plan_.label} on {report.device}: computed {report.computed}, "
            f"{report.already_available} already available, {report.failed} failed"
        )
        return report.as_dict()

    @step(
        f"commit_{name}_cache",
        "Collect the staged shards, validate, swap the cache in atomically; computes nothing.",
        dg.Out(PreparedCache, io_manager_key="embedding_io_manager"),
    )
    def commit(
        context: dg.OpExecutionContext,
        config: ShardedEmbeddingConfig,
        protein_final,
        shard_reports: list,
    ) -> dg.Output[PreparedCache]:
        virus, version = virus_and_version(context)
        paths, previous = _cache_step_context(context, name, config)
        embedder = embedder_for(context)
        check_shard_signatures(shard_reports, signature_of(embedder.describe()))
        prepared = prepare_master_cache(
            protein_final,
            embedder,
            paths,
            previous=previous,
            reuse_stored=not config.force_recompute,
            compute_missing=False,
            chunk_size=config.chunk_size,
            storage_precision=config.storage_precision,
            progress=context.log.info,
        )
        credit_shards(prepared.report, shard_reports)
        _report_problems(context, prepared, f"{virus} x {version} ({name})")
        shards = pd.DataFrame(shard_reports).drop(columns=["signature"])
        return dg.Output(
            prepared,
            metadata={
                **_cache_metadata(name, prepared),
                "shards": len(shard_reports),
                "shard_reports": dg.MetadataValue.md(markdown_table(shards, max_rows=64)),
            },
        )

    def route_config(config: ShardedEmbeddingConfig) -> dict:
        # The asset takes one config (defaults filled in); each of its steps gets it.
        values = config.model_dump() if isinstance(config, dg.Config) else dict(config)
        return {op.name: {"config": values} for op in (plan, embed, commit)}

    @dg.graph_asset(
        name=f"{ASSET_PREFIX}{name}",
        partitions_def=virus_data_version_partitions,
        group_name="embeddings",
        kinds={"hdf5", "parquet", "pytorch"},
        tags=needs_weights_tags(name),
        config=dg.ConfigMapping(config_fn=route_config),
        description=(
            f"Master embedding cache, {description}. One HDF5 file (`emb` N x D, `emb_keys`, "
            "model metadata in attrs) and a Parquet index brc_fea_id -> row under "
            "data/embeddings/{virus}/{data_version}/. Identical sequences share a row; rows "
            "already computed here or in earlier data versions are reused. The sequences to "
            "compute are split into `shards` hash ranges, one step each (a GPU each, on one "
            "machine or on Celery workers); shards stage chunks and a commit step swaps the "
            "cache in atomically, so a killed run resumes; failures go to failed_ids.csv."
        ),
    )
    def _sharded_embeddings(protein_final):
        reports = plan(protein_final).map(lambda shard: embed(protein_final, shard))
        return commit(protein_final, reports.collect())

    return _sharded_embeddings


embedding_assets = [
    (build_embedding_asset if name in KMER_EMBEDDERS else build_sharded_embedding_asset)(name, desc)
    for name, desc in embedder_descriptions().items()
]


def embedding_asset_names(needs_weights: bool) -> list[str]:
    return [
        f"{ASSET_PREFIX}{n}"
        for n in embedder_descriptions()
        if (n not in KMER_EMBEDDERS) == needs_weights
    ]
