"""Maps of the embedding space (per embedder) and segment conservation (per partition).

Both write their files under `storage.analysis_dir(...)`, log them to the partition's
diagnostics experiment in MLflow, and show tables and plots in the asset metadata (the
plots as images the MLflow UI serves, as the diagnostics do: `segpair_assets.metadata`).
"""

from typing import Literal

import dagster as dg
import pandas as pd
from pydantic import Field

from resources.mlflow_tracking import MlflowTracking, TrackedRun
from resources.reproducibility import Reproducibility
from resources.storage import SegpairStorage
from segpair.analysis.conservation import (
    Conservation,
    ConservationConfig,
    measure_conservation,
    write_conservation,
)
from segpair.analysis.maps import (
    MIN_NONLINEAR_POINTS,
    EmbeddingMap,
    MapConfig,
    NothingToMap,
    build_embedding_map,
    write_map,
)
from segpair.embeddings.cache import EmbeddingStore
from segpair.embeddings.catalog import EmbedderSpec
from segpair.training.artifacts import significant
from segpair_assets.assets.per_embedder import job_tags, stage_group, weights_note
from segpair_assets.assets.training import run_name, run_origin, run_tags
from segpair_assets.metadata import images, mlflow_links, rounded, table
from segpair_assets.partitions import virus_and_version, virus_data_version_partitions
from segpair_assets.provenance import record_provenance

_MAP = MapConfig()  # the core's defaults are the launchpad's
_CONSERVATION = ConservationConfig()


class EmbeddingMapConfig(dg.Config):
    nonlinear: Literal["auto", "umap", "tsne", "none"] = Field(
        default=_MAP.nonlinear,
        description="The map beside PCA: 'auto' = UMAP where umap-learn is installed, else "
        "t-SNE (scikit-learn); 'none' = PCA only.",
    )
    max_fit_points: int = Field(
        default=_MAP.max_fit_points,
        ge=MIN_NONLINEAR_POINTS,
        description="Distinct vectors PCA and UMAP are fitted on; above, a seeded sample of "
        "this many: PCA projects every vector, the others get no UMAP coordinates.",
    )
    umap_neighbors: int = Field(default=_MAP.umap_neighbors, ge=2)
    umap_min_dist: float = Field(default=_MAP.umap_min_dist, ge=0)
    umap_epochs: int = Field(
        default=_MAP.umap_epochs,
        ge=10,
        description="UMAP's optimisation epochs (its default is 500 below 10,000 points; "
        "200 draws the same clusters in 40% of the time)",
    )
    pca_dims: int = Field(
        default=_MAP.pca_dims, ge=2, description="Principal components UMAP/t-SNE start from."
    )
    focus_function: str | None = Field(
        default=_MAP.focus_function,
        description="The protein mapped on its own, coloured by subtype (or genotype, host, "
        "year: the first with values); unset: the one with most distinct sequences (HA on "
        "influenza).",
    )
    max_legend_entries: int = Field(
        default=_MAP.max_legend_entries,
        ge=1,
        description="Categories named in a legend; the rest are pooled as 'other'.",
    )
    seed: int | None = Field(
        default=None,
        description="Seed of the fit sample and UMAP; unset: derived from the master seed "
        "(process 'analysis').",
    )


def map_metadata(emap: EmbeddingMap, run: TrackedRun, files: dict) -> dict:
    """The plots, how well the maps separate functions, what each view holds, the
    coordinates file and the MLflow links (README: "Maps of the embedding space")."""
    coords = emap.coordinates
    by_function = emap.separation[emap.separation["view"] == "all"].set_index("method")
    metadata = {
        "mapped": True,
        "maps": images(
            {
                name.removesuffix(".png").replace("_", " "): run.artifact_url(name)
                for name in files
                if name.endswith(".png")
            }
        ),
        **rounded(
            {f"{m}_function_nn_purity": by_function.loc[m, "nn_purity"] for m in emap.methods}
        ),
        "separation": table(emap.separation),
        "views": table(emap.views),
        "focus_function": emap.focus_function,
        "proteins_mapped": int((coords["view"] == "all").sum()),
        "proteins_without_vector": emap.proteins_without_vector,
        "coordinates": dg.MetadataValue.path(str(files["map_coordinates.parquet"])),
    }
    if emap.missing_columns:
        metadata["not_coloured_by"] = "; ".join(
            f"{c}: {why}" for c, why in emap.missing_columns.items()
        )
    return {**metadata, **mlflow_links(run)}


def build_map_asset(spec: EmbedderSpec) -> dg.AssetsDefinition:
    @dg.asset(
        name=spec.map_asset,
        partitions_def=virus_data_version_partitions,
        ins={
            "protein_final": dg.AssetIn("protein_final"),
            "embeddings": dg.AssetIn(spec.cache_asset),
        },  # fmt: skip
        group_name=stage_group(spec, spec.map_asset),
        tags=job_tags(spec),
        kinds={"parquet", "mlflow"},
        description=weights_note(spec)
        + (
            f"Maps of the {spec.name} embedding space: every protein in 2-D by PCA and by "
            "UMAP (t-SNE without umap-learn), coloured by function, subtype and host, and the "
            "most variable protein alone coloured by subtype; how well each map keeps "
            "functions apart (nearest-neighbour purity, silhouette). Coordinates as Parquet "
            "for replotting; the plots also in MLflow."
        ),
    )
    def _map(
        context: dg.AssetExecutionContext,
        config: EmbeddingMapConfig,
        storage: SegpairStorage,
        mlflow_tracking: MlflowTracking,
        reproducibility: Reproducibility,
        protein_final: pd.DataFrame,
        embeddings: EmbeddingStore,
    ) -> dg.MaterializeResult:
        virus, version = virus_and_version(context)
        seed = reproducibility.seed("analysis", config.seed)
        prov = record_provenance(context, storage, reproducibility, config, {"analysis": seed})
        try:
            with embeddings:
                emap = build_embedding_map(
                    protein_final, embeddings, MapConfig(**{**config.model_dump(), "seed": seed})
                )
        except NothingToMap as why:
            context.log.warning(f"{spec.name}: no map: {why}")
            return dg.MaterializeResult(metadata={"mapped": False, "why": str(why)})
        out_dir = storage.analysis_dir(virus, version, spec.name)
        files = write_map(out_dir, emap, f"{virus} {version} {spec.name}")
        tags = run_tags(context, "embedding_map", spec.name)
        said = "; ".join(f"{v.view}: {v.nonlinear}" for v in emap.views.itertuples())
        with mlflow_tracking.run(
            f"segpair-{virus}-diagnostics",
            run_name(spec.name, "map", context), run_origin(context),
            {**config.model_dump(), **tags, "seed": seed}, {**tags, **prov.flat()},
        ) as run:  # fmt: skip
            rows = emap.separation.dropna(subset=["nn_purity"]).itertuples()
            run.log_metrics({f"{r.method}_{r.view}_nn_purity": significant(r.nn_purity)
                             for r in rows})  # fmt: skip
            run.log_artifacts(list(files.values()))
            run.describe(f"**{spec.name} maps**: {said}.")
        context.log.info(f"{spec.name} maps: {said}; MLflow run: {run.url}")
        return dg.MaterializeResult(metadata=map_metadata(emap, run, files))

    return _map


class SegmentConservationConfig(dg.Config):
    pairs_per_function: int = Field(
        default=_CONSERVATION.pairs_per_function,
        ge=1,
        description="Pairs of proteins from two isolates aligned per function (seeded "
        "sample); a pair of 2,000-residue proteins takes ~35 ms.",
    )
    seed: int | None = Field(
        default=None,
        description="Seed of the sampled pairs; unset: derived from the master seed "
        "(process 'analysis').",
    )


def conservation_metadata(result: Conservation, run: TrackedRun, files: dict) -> dict:
    """The table, the plot, the extremes and the files (README: "Conservation per segment")."""
    ranked = result.table.dropna(subset=["identity_median"])
    ranked = ranked.sort_values("identity_median", ascending=False)

    def said(at: int) -> str:
        if ranked.empty:
            return "no function has proteins in two isolates"
        row = ranked.iloc[at]
        return (
            f"{row['function']} (median identity {row['identity_median']:.3f}, "
            f"{row['distinct_proteins_per_100_isolates']:.0f} distinct proteins per 100 "
            "isolates)"
        )

    return {
        "conservation": table(result.table),
        "conservation_plot": images(
            {"identity and distinct sequences per segment": run.artifact_url("conservation.png")}
        ),
        "most_conserved": said(0),
        "least_conserved": said(-1),
        "identity_pairs": int(result.table["identity_pairs"].sum()),
        "table_path": dg.MetadataValue.path(str(files["conservation.parquet"])),
        "identities_path": dg.MetadataValue.path(str(files["pairwise_identity.parquet"])),
        **mlflow_links(run),
    }


@dg.asset(
    partitions_def=virus_data_version_partitions,
    group_name="diagnostics",
    kinds={"biopython", "mlflow"},
    description=(
        "How conserved each segment's protein is: per function, the identity between "
        "proteins of two isolates (global alignments of a seeded sample of pairs) and the "
        "distinct protein and coding sequences per 100 isolates, with one plot; also logged "
        "to MLflow. Conserved segments (PB1, M1 on influenza) carry less isolate signal, "
        "which is why their pairs are harder."
    ),
)
def segment_conservation(
    context: dg.AssetExecutionContext,
    config: SegmentConservationConfig,
    storage: SegpairStorage,
    mlflow_tracking: MlflowTracking,
    reproducibility: Reproducibility,
    protein_final: pd.DataFrame,
) -> dg.MaterializeResult:
    virus, version = virus_and_version(context)
    seed = reproducibility.seed("analysis", config.seed)
    prov = record_provenance(context, storage, reproducibility, config, {"analysis": seed})
    result = measure_conservation(
        protein_final, ConservationConfig(**{**config.model_dump(), "seed": seed})
    )
    files = write_conservation(
        storage.analysis_dir(virus, version), result, f"{virus} {version}: conservation"
    )
    tags = {"kind": "segment_conservation", "virus": virus, "data_version": version}
    with mlflow_tracking.run(
        f"segpair-{virus}-diagnostics",
        f"conservation {virus}/{version}",
        run_origin(context),
        {**config.model_dump(), **tags, "seed": seed},
        {**tags, **prov.flat()},
    ) as run:
        run.log_metrics(
            {
                f"identity_median_{r.function}": significant(r.identity_median)
                for r in result.table.itertuples()
                if pd.notna(r.identity_median)
            }
        )
        run.log_artifacts(list(files.values()))
    metadata = conservation_metadata(result, run, files)
    context.log.info(
        f"most conserved: {metadata['most_conserved']}; least: "
        f"{metadata['least_conserved']}; MLflow run: {run.url}"
    )
    return dg.MaterializeResult(metadata=metadata)


def build_map_assets(catalog) -> list[dg.AssetsDefinition]:
    return [build_map_asset(spec) for spec in catalog]
