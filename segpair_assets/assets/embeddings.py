"""Stage 2: master embedding caches, one asset per catalog embedder (`spec.cache_asset`).

Weight-free featurizers are one CPU step. Language models are a graph-backed asset,
plan -> one step per hash-range shard (the GPU work) -> commit, so any executor spreads
the shards (the multiprocess executor across a machine's GPUs, Celery across machines).
All three steps load the same model on the same kind of worker, so they agree on its
signature. A merged entry is one CPU step that reads its sources' committed caches (never
their models) and puts their vectors side by side (`segpair.embeddings.merged`).
"""

from dataclasses import asdict
from typing import Literal

import dagster as dg
import pandas as pd
from pydantic import Field

from resources.embedders import ComputeDevice, Embedders
from resources.reproducibility import Reproducibility
from resources.storage import SegpairStorage
from segpair.embeddings.base import signature_of
from segpair.embeddings.cache import EmbeddingStore, content_version
from segpair.embeddings.catalog import EmbedderSpec
from segpair.embeddings.device import device_for_shard
from segpair.embeddings.merged import prepare_merged_cache
from segpair.embeddings.pipeline import CacheMode, PreparedCache, prepare_master_cache
from segpair.embeddings.sharding import (
    ShardPlan,
    check_shard_signatures,
    credit_shards,
    embed_shard,
    plan_shards,
)
from segpair.embeddings.validation import VALIDATION_SAMPLE, validate_engine
from segpair.report import markdown_table
from segpair_assets.assets.per_embedder import (
    embedder_metadata,
    job_tags,
    stage_group,
    weights_note,
)
from segpair_assets.metadata import versioned_output
from segpair_assets.partitions import virus_and_version, virus_data_version_partitions
from segpair_assets.provenance import provenance_metadata, provenance_of

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

    @property
    def mode(self) -> CacheMode:
        return CacheMode.of(self.force_recompute)


class ShardedEmbeddingConfig(EmbeddingConfig):
    shards: int = Field(
        default=1,
        ge=1,
        le=1024,
        description="Split the sequences to compute into this many hash-range shards, one "
        "step each: several GPUs (one machine, or Celery workers) share one partition.",
    )
    max_sequences: int | None = Field(
        default=None,
        ge=1,
        description="Compute at most this many sequences not yet stored (a trial run, or a "
        "large partition in instalments); the rest are listed in failed_ids.csv as not "
        "computed yet and the next run embeds them. With validate_only: the sample size.",
    )
    validate_only: bool = Field(
        default=False,
        description="Embed a sample (max_sequences, default 64, spread over the proteins' "
        "functions), check it (all embedded, dimension, finite, batch-invariant, closer "
        "within a function than between) and record an observation; the cache is not "
        "changed and nothing downstream runs.",
    )


def _report_problems(context, prepared: PreparedCache) -> None:
    r = prepared.report
    virus, version = virus_and_version(context)
    label = f"{virus} x {version} ({r.embedder})"
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


def cache_metadata(prepared: PreparedCache) -> dict:
    r = prepared.report
    attrs = {k: v for k, v in prepared.attrs.items() if k != "library_versions"}
    attr_table = pd.DataFrame([attrs]).T.reset_index().set_axis(["attribute", "value"], axis=1)
    return {
        "dagster/row_count": len(prepared.row_keys), "embedder": r.embedder,
        "model_name": str(prepared.attrs.get("model_name")), "signature": r.signature,
        "dim": r.dim, "proteins": r.n_proteins, "unique_sequences": r.n_unique_keys,
        "reused_in_place": r.reused_in_place,
        "reused_from_earlier_versions": sum(r.reused_previous.values()),
        "reused_by_version": dg.MetadataValue.json(r.reused_previous),
        "resumed_from_interrupted_run": r.resumed_from_chunks, "computed": r.computed,
        "failed_proteins": r.failed_proteins, "truncated": r.truncated,
        "outside_alphabet": r.outside_alphabet, "left_for_later_run": r.deferred,
        **({"engine": r.engine} if r.engine else {}),
        "compute_seconds": round(r.compute_seconds, 2),
        "sequences_per_s": round(r.sequences_per_s, 1),
        "tokens_per_s": round(r.tokens_per_s, 0),
        "model_metadata": dg.MetadataValue.md(markdown_table(attr_table, 40, 80)),
        **({"failure_examples": dg.MetadataValue.json(r.failure_examples)}
           if r.failure_examples else {}),
    }  # fmt: skip


def cache_output(context, prepared: PreparedCache, storage, reproducibility, config, extra=None):
    """The cache as the asset's output: its metadata, its provenance, and a data version
    from its content (signature + every protein's key), so dependents show stale only
    when what they read changed."""
    prov = provenance_of(context, storage, reproducibility, config)
    version = content_version(prepared.index, str(prepared.attrs.get("signature", "")))
    metadata = {**cache_metadata(prepared), **(extra or {}), **provenance_metadata(prov)}
    return versioned_output(prepared, metadata, dg.DataVersion(version))


def _partition_caches(context, storage: SegpairStorage, spec: EmbedderSpec, config):
    """This partition's cache paths, and the earlier versions' caches it may reuse."""
    virus, version = virus_and_version(context)
    paths = storage.cache_paths(virus, version, spec.name)
    previous = storage.earlier_caches(virus, version, spec.name)
    return paths, previous if config.reuse_previous_versions else []


def _description(spec: EmbedderSpec, how: str) -> str:
    return weights_note(spec) + (
        f"Master embedding cache, {spec.description}. One HDF5 file (`emb` N x D, "
        "`emb_keys`, model metadata in attrs) and a Parquet index brc_fea_id -> row under "
        "data/embeddings/{virus}/{data_version}/. Identical sequences share a row; rows "
        f"already computed here or in earlier data versions are reused; {how}; failures go "
        "to failed_ids.csv."
    )


def build_embedding_asset(spec: EmbedderSpec) -> dg.AssetsDefinition:
    """One step: reuse what is stored, compute the rest, commit (weight-free featurizers)."""

    @dg.asset(
        name=spec.cache_asset, partitions_def=virus_data_version_partitions,
        io_manager_key="embedding_io_manager", group_name=stage_group(spec, spec.cache_asset),
        kinds={"hdf5", "parquet", "numpy"}, tags=job_tags(spec),
        metadata=embedder_metadata(spec), description=_description(spec, "a killed run resumes"),
    )  # fmt: skip
    def _embeddings(
        context: dg.AssetExecutionContext, config: EmbeddingConfig, storage: SegpairStorage,
        embedders: Embedders, compute_device: ComputeDevice, reproducibility: Reproducibility,
        protein_final: pd.DataFrame,
    ) -> dg.Output[PreparedCache]:  # fmt: skip
        paths, previous = _partition_caches(context, storage, spec, config)
        prepared = prepare_master_cache(
            protein_final, embedders.build(spec, compute_device), paths, previous,
            config.mode, config.chunk_size, config.storage_precision, context.log.info,
        )  # fmt: skip
        _report_problems(context, prepared)
        return cache_output(context, prepared, storage, reproducibility, config)

    return _embeddings


def _shard_step(op_name: str, description: str, out, **extra):
    """Every shard step loads the model: same resources, all routed to the GPU queue."""
    return dg.op(name=op_name, description=description, out=out,
                 tags={CELERY_QUEUE_TAG: GPU_QUEUE}, **extra)  # fmt: skip


def _validate_only(context, spec: EmbedderSpec, embedder, proteins, max_sequences) -> None:
    """A validate-only run: a sample embedded and checked, recorded as an observation of
    the cache asset (its page lists it under Events); nothing is written."""
    trial = validate_engine(proteins, embedder, max_sequences or VALIDATION_SAMPLE)
    checks = pd.DataFrame([
        {"check": name, "passed": o.passed, "what": o.description,
         "failing": "; ".join(o.failing_examples[:3])}
        for name, o in trial.outcomes.items()
    ])  # fmt: skip
    verdict = "passed" if trial.passed else "FAILED"
    (context.log.info if trial.passed else context.log.warning)(
        f"validate-only {spec.name}: {trial.embedded}/{trial.sequences} sample sequences "
        f"embedded in {trial.seconds:.1f} s ({trial.engine}); checks {verdict}: "
        + ", ".join(f"{k} {'ok' if o.passed else 'FAILED'}" for k, o in trial.outcomes.items())
    )
    context.log_event(dg.AssetObservation(
        asset_key=spec.cache_asset, partition=context.partition_key, metadata={
            "validate_only": True, "passed": trial.passed, "sample_sequences": trial.sequences,
            "embedded": trial.embedded, "seconds": round(trial.seconds, 2),
            "tokens_per_s": round(trial.tokens / trial.seconds) if trial.seconds else 0,
            "engine": trial.engine, "checks": dg.MetadataValue.md(markdown_table(checks)),
            **({"failure_examples": dg.MetadataValue.json(trial.failure_examples)}
               if trial.failure_examples else {}),
        },
    ))  # fmt: skip


def plan_op(spec: EmbedderSpec) -> dg.OpDefinition:
    @_shard_step(
        f"plan_{spec.name}_shards",
        "Count the sequences not yet stored per hash-range shard; one output per shard.",
        dg.DynamicOut(dict, io_manager_key=SHARD_IO_MANAGER),
    )
    def plan(
        context: dg.OpExecutionContext, config: ShardedEmbeddingConfig, storage: SegpairStorage,
        embedders: Embedders, compute_device: ComputeDevice, protein_final,
    ):  # fmt: skip
        paths, previous = _partition_caches(context, storage, spec, config)
        embedder = embedders.build(spec, compute_device)
        if config.validate_only:
            _validate_only(context, spec, embedder, protein_final, config.max_sequences)
            return  # no shard: nothing is embedded for the cache, nothing committed
        plans = plan_shards(protein_final, embedder, paths, previous, config.shards, config.mode,
                            config.max_sequences)  # fmt: skip
        context.log.info(
            f"{spec.name}: {sum(p.to_compute for p in plans)} sequences to compute in "
            f"{config.shards} shard(s): " + ", ".join(f"{p.label}: {p.to_compute}" for p in plans)
        )
        for p in plans:
            yield dg.DynamicOutput(asdict(p), mapping_key=f"shard_{p.shard}")

    return plan


def embed_op(spec: EmbedderSpec) -> dg.OpDefinition:
    @_shard_step(
        f"embed_{spec.name}_shard",
        "Embed one shard's sequences on this worker's GPU and stage them as chunk files "
        "(resumable).",
        dg.Out(dict, io_manager_key=SHARD_IO_MANAGER),
        # one language-model step per GPU: the pool's limit is set in dagster.yaml
        pool=GPU_POOL,
    )
    def embed(
        context: dg.OpExecutionContext, config: ShardedEmbeddingConfig, storage: SegpairStorage,
        embedders: Embedders, compute_device: ComputeDevice, protein_final, shard,
    ) -> dict:  # fmt: skip
        paths, previous = _partition_caches(context, storage, spec, config)
        plan_ = ShardPlan(**shard)
        embedder = embedders.build(
            spec, compute_device, device_for_shard(compute_device.device, plan_.shard)
        )
        report = embed_shard(
            protein_final, embedder, paths, previous, plan_.shard, plan_.n_shards, config.mode,
            config.chunk_size, context.log.info, config.max_sequences,
        )  # fmt: skip
        context.log.info(
            f"{plan_.label} on {report.device}: computed {report.computed}, "
            f"{report.already_available} already available, {report.failed} failed"
        )
        return report.as_dict()

    return embed


def commit_op(spec: EmbedderSpec) -> dg.OpDefinition:
    @_shard_step(
        f"commit_{spec.name}_cache",
        "Collect the staged shards, validate, swap the cache in atomically; computes nothing.",
        # no output after a validate-only plan: the asset is not materialized
        dg.Out(PreparedCache, io_manager_key="embedding_io_manager",
               metadata=embedder_metadata(spec), is_required=False),
    )  # fmt: skip
    def commit(
        context: dg.OpExecutionContext, config: ShardedEmbeddingConfig, storage: SegpairStorage,
        embedders: Embedders, compute_device: ComputeDevice, reproducibility: Reproducibility,
        protein_final, shard_reports: list,
    ):  # fmt: skip
        if config.validate_only:
            return
        paths, previous = _partition_caches(context, storage, spec, config)
        embedder = embedders.build(spec, compute_device)
        check_shard_signatures(shard_reports, signature_of(embedder.describe()))
        prepared = prepare_master_cache(
            protein_final, embedder, paths, previous, config.mode.collecting(),
            config.chunk_size, config.storage_precision, context.log.info, config.max_sequences,
        )  # fmt: skip
        credit_shards(prepared.report, shard_reports)
        _report_problems(context, prepared)
        shards = pd.DataFrame(shard_reports).drop(columns=["signature"])
        yield cache_output(context, prepared, storage, reproducibility, config, {
            "shards": len(shard_reports),
            "shard_reports": dg.MetadataValue.md(markdown_table(shards, max_rows=64)),
        })  # fmt: skip

    return commit


def build_sharded_embedding_asset(spec: EmbedderSpec) -> dg.AssetsDefinition:
    """plan -> one step per hash-range shard -> commit (language models)."""
    plan, embed, commit = plan_op(spec), embed_op(spec), commit_op(spec)

    def route_config(config: ShardedEmbeddingConfig) -> dict:
        # The asset takes one config (defaults filled in); each of its steps gets it.
        values = config.model_dump() if isinstance(config, dg.Config) else dict(config)
        return {op.name: {"config": values} for op in (plan, embed, commit)}

    @dg.graph_asset(
        name=spec.cache_asset, partitions_def=virus_data_version_partitions,
        group_name=stage_group(spec, spec.cache_asset), kinds={"hdf5", "parquet", "pytorch"},
        tags=job_tags(spec), metadata=embedder_metadata(spec),
        config=dg.ConfigMapping(config_fn=route_config),
        description=_description(spec, "the sequences to compute are split into `shards` hash "
                                 "ranges, one step each (a GPU each, on one machine or on "
                                 "Celery workers); shards stage chunks and a commit step swaps "
                                 "the cache in atomically, so a killed run resumes"),
    )  # fmt: skip
    def _sharded_embeddings(protein_final):
        reports = plan(protein_final).map(lambda shard: embed(protein_final, shard))
        return commit(protein_final, reports.collect())

    return _sharded_embeddings


def _merged_description(spec: EmbedderSpec) -> str:
    sources = " and ".join(f"{s.embedder} ({s.expected_dim} dims)" for s in spec.sources)
    return _description(spec, (
        f"merged from the committed caches of {sources}, never recomputed: each source's "
        f"vector, {spec.block_norm}-normalised per block, side by side; a source of another "
        "dimension stops the run naming it"
    ))  # fmt: skip


def build_merged_embedding_asset(spec: EmbedderSpec) -> dg.AssetsDefinition:
    """One step: read the source caches, reuse what is stored, gather the rest, commit."""
    # the catalog checked that every source is an entry, so its cache asset exists
    ins = {s.embedder: dg.AssetIn(f"master_embeddings_{s.embedder}") for s in spec.sources}

    @dg.asset(
        name=spec.cache_asset, partitions_def=virus_data_version_partitions,
        ins={"protein_final": dg.AssetIn("protein_final"), **ins},
        io_manager_key="embedding_io_manager", group_name=stage_group(spec, spec.cache_asset),
        kinds={"hdf5", "parquet", "numpy"}, tags=job_tags(spec),
        metadata=embedder_metadata(spec), description=_merged_description(spec),
    )  # fmt: skip
    def _merged(
        context: dg.AssetExecutionContext, config: EmbeddingConfig, storage: SegpairStorage,
        reproducibility: Reproducibility, protein_final: pd.DataFrame,
        **source_caches: EmbeddingStore,
    ) -> dg.Output[PreparedCache]:  # fmt: skip
        paths, previous = _partition_caches(context, storage, spec, config)
        stores = [source_caches[s.embedder] for s in spec.sources]
        try:
            prepared = prepare_merged_cache(
                protein_final, stores, spec.sources, paths, spec.block_norm, previous,
                config.mode, config.chunk_size, config.storage_precision, context.log.info,
            )  # fmt: skip
        finally:
            for store in stores:
                store.close()
        _report_problems(context, prepared)
        sources = {s.paths.embedder: f"{s.signature} ({s.dim} dims)" for s in stores}
        return cache_output(context, prepared, storage, reproducibility, config, {
            "sources": dg.MetadataValue.json(sources), "block_norm": spec.block_norm,
        })  # fmt: skip

    return _merged


def build_embedding_assets(catalog) -> list[dg.AssetsDefinition]:
    """Per entry: merged (reads other caches), sharded (language models) or one step."""
    return [
        build_merged_embedding_asset(spec) if spec.is_merged
        else build_sharded_embedding_asset(spec) if spec.needs_weights
        else build_embedding_asset(spec)
        for spec in catalog
    ]  # fmt: skip
