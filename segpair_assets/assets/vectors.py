"""Vector tables, one asset per catalog embedder (`spec.vector_table_asset`): the
partition's master cache as a LanceDB table with each protein's isolate and metadata, for
similarity search (`segpair neighbours`, `segpair.vectors`). Written from the cache (no
vector is computed), incrementally from an earlier table, swapped in atomically."""

import dagster as dg
import pandas as pd
from pydantic import Field

from resources.reproducibility import Reproducibility
from resources.storage import SegpairStorage
from segpair.embeddings.cache import EmbeddingStore
from segpair.embeddings.catalog import EmbedderSpec
from segpair.vectors.search import VectorTable
from segpair.vectors.table import (
    NO_INDEX,
    IndexType,
    VectorTableReport,
    VectorTableSettings,
    build_vector_table,
)
from segpair_assets.assets.per_embedder import LANGUAGE_MODELS_GROUP, job_tags, weights_note
from segpair_assets.metadata import table
from segpair_assets.partitions import virus_and_version, virus_data_version_partitions
from segpair_assets.provenance import record_provenance

_DEFAULTS = VectorTableSettings()
PREVIEW_NEIGHBOURS = 5


class VectorTableConfig(dg.Config):
    ann_min_rows: int = Field(
        default=_DEFAULTS.ann_min_rows,
        ge=1,
        description="Rows from which the table gets an ANN index; below, every search is an "
        "exact scan (BENCHMARKS.md, 'Vector tables', has the latencies behind the default).",
    )
    index_type: IndexType = Field(
        default=_DEFAULTS.index_type,
        description="The ANN index (cosine) of a table of ann_min_rows or more.",
    )
    reuse_earlier_tables: bool = Field(
        default=_DEFAULTS.reuse_earlier_tables,
        description="Start from this partition's current table, else the newest of the "
        "virus's other data versions made with the same embedder signature: unchanged "
        "proteins keep their rows, only new and changed ones are written.",
    )


def preview(paths, n: int = PREVIEW_NEIGHBOURS) -> tuple[str, pd.DataFrame]:
    """One query, the table's first protein: its nearest proteins, as a user would see."""
    vectors = VectorTable(paths)
    first = vectors.table.search().select(["brc_fea_id"]).limit(1).to_pandas()["brc_fea_id"]
    if first.empty:
        return "", pd.DataFrame()
    found = vectors.neighbours(protein_ids=[first.iloc[0]], k=n)
    shown = [
        "rank",
        "similarity",
        "brc_fea_id",
        "assembly_id",
        "function",
        "subtype",
        "host",
        "year",
    ]
    return first.iloc[0], found[shown]


def vector_table_metadata(report: VectorTableReport, query: str, found: pd.DataFrame) -> dict:
    c = report.current
    exact = f"none: exact search (under {c.ann_min_rows} rows)"
    index = exact if c.index_type == NO_INDEX else f"{c.index_type} (cosine)"
    return {
        "dagster/row_count": c.n_rows,
        "dim": c.dim,
        "index": index,
        "build": report.outcome,
        "reused_rows": c.reused_rows,
        "added_rows": c.added_rows,
        "removed_rows": c.removed_rows,
        "reused_from": c.reused_from or "nothing (full build)",
        "proteins_without_vector": report.not_embedded,
        "seconds": round(report.seconds, 2),
        "index_seconds": round(report.index_seconds, 2),
        "path": dg.MetadataValue.path(str(report.path)),
        "cache_content_id": c.cache_content_id,
        "signature": c.signature,
        "preview_query": query or "the table is empty",
        "preview_neighbours": table(found) if len(found) else dg.MetadataValue.text("none"),
    }


def build_vector_table_asset(spec: EmbedderSpec) -> dg.AssetsDefinition:
    @dg.asset(
        name=spec.vector_table_asset,
        partitions_def=virus_data_version_partitions,
        ins={
            "protein_final": dg.AssetIn("protein_final"),
            "embeddings": dg.AssetIn(spec.cache_asset),
        },
        group_name=LANGUAGE_MODELS_GROUP if spec.needs_weights else "embeddings",
        tags=job_tags(spec),
        kinds={"lancedb"},
        description=weights_note(spec)
        + f"The {spec.name} vectors of the partition as a LanceDB table (protein id, isolate, "
        "segment, function, subtype, host, year, sequence hash, vector) for similarity "
        "search: `segpair neighbours -e " + spec.name + " --protein ID`. Written from the "
        "master cache, reusing an earlier table's rows for unchanged proteins; exact search "
        "below ann_min_rows rows, an ANN index (cosine) from there on. The preview shows one "
        "query's nearest proteins.",
    )
    def _vector_table(
        context: dg.AssetExecutionContext,
        config: VectorTableConfig,
        storage: SegpairStorage,
        reproducibility: Reproducibility,
        protein_final: pd.DataFrame,
        embeddings: EmbeddingStore,
    ) -> dg.MaterializeResult:
        virus, version = virus_and_version(context)
        record_provenance(context, storage, reproducibility, config)
        paths = storage.vector_table_paths(virus, version, spec.name)
        earlier = storage.earlier_vector_tables(virus, version, spec.name)
        settings = VectorTableSettings(**config.model_dump())
        with embeddings:
            report = build_vector_table(
                embeddings,
                protein_final,
                paths,
                earlier,
                settings,
                f"Dagster run {context.run.run_id}",
                context.log.info,
            )
        c = report.current
        context.log.info(
            f"{spec.name} vector table {report.outcome}: {c.n_rows} rows x {c.dim} dims "
            f"(kept {c.reused_rows}, added {c.added_rows}, removed {c.removed_rows}), "
            f"index {c.index_type}, {report.seconds:.1f} s"
        )
        query, found = preview(paths)
        return dg.MaterializeResult(metadata=vector_table_metadata(report, query, found))

    return _vector_table


def build_vector_table_assets(catalog) -> list[dg.AssetsDefinition]:
    return [build_vector_table_asset(spec) for spec in catalog]
