"""Stage 5: every within-isolate cross-segment pair scored by the partition's trained model.

Low-scoring pairs inside one isolate point at mis-joined genome records or reassortants;
the per-isolate summary ranks isolates by their weakest pair. Scoring new proteins from
files outside the pipeline is the `segpair score` command (same core, `segpair.scoring`).
"""

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from resources.reproducibility import Reproducibility
from resources.storage import SegpairStorage
from resources.viruses import VirusRegistryResource
from segpair.embeddings.cache import EmbeddingStore
from segpair.embeddings.catalog import EmbedderSpec
from segpair.report import markdown_table, png_markdown
from segpair.scoring import (
    PairScorer,
    isolate_pairs,
    mark_seen_pairs,
    score_isolate_pairs,
    write_scoring_outputs,
)
from segpair.training.checkpoint import load_checkpoint
from segpair.training.model_history import CHECKPOINT, ModelHistory
from segpair_assets.assets.per_embedder import model_stage_asset
from segpair_assets.metadata import table
from segpair_assets.partitions import virus_and_version
from segpair_assets.provenance import record_provenance


class IsolatePairScoresConfig(dg.Config):
    checkpoint: str | None = Field(
        default=None,
        description="model.pt to score with; unset: this partition's pair_classifier model "
        "(a model of another data version works if its embedder signature matches).",
    )
    model_run: str | None = Field(
        default=None,
        description="Which of this partition's training runs to score with (a folder name "
        "under data/models/{virus}/{version}/{embedder}/runs/, listed by `segpair models`); "
        "unset: the latest.",
    )
    only_training_schema: bool = Field(
        default=True,
        description="Score only the function pairs the model was trained on (others are "
        "outside its evidence).",
    )


def scores_metadata(scores, summary, groups, png, threshold, model_path, model_version, out_dir):
    scored = scores[scores["score"].notna()]
    flagged = summary[summary["n_below_threshold"] > 0]
    held_out = scored[scored["seen_in"].isin(["test", "new"])]
    below = float((held_out["score"] < threshold).mean()) if len(held_out) else float("nan")
    return {
        "dagster/row_count": len(scores), "model": dg.MetadataValue.path(str(model_path)),
        "model_data_version": model_version, "threshold": round(threshold, 4),
        "pairs_scored": len(scored), "pairs_not_scored": int(scores["score"].isna().sum()),
        "pairs_called_same_isolate": int(scores["same_isolate"].sum()),
        "held_out_below_threshold": round(below, 4),
        "isolates_flagged": len(flagged),
        "isolate_summary": dg.MetadataValue.path(str(out_dir / "isolate_summary.csv")),
        "weakest_isolates": dg.MetadataValue.md(
            markdown_table(flagged.head(15).round(4)) if len(flagged) else "none"),
        "score_histogram": dg.MetadataValue.md(png_markdown(png, "scores")),
        "median_score_by_seen_in": table(pd.DataFrame(
            [{"seen_in": k, "pairs": len(v), "median_score": float(np.median(v))}
             for k, v in groups.items() if len(v)])),
    }  # fmt: skip


def model_to_score(storage: SegpairStorage, virus, version, embedder, config) -> Path:
    if config.checkpoint:
        return Path(config.checkpoint)
    return ModelHistory(storage.model_dir(virus, version, embedder)).resolve(
        config.model_run) / CHECKPOINT  # fmt: skip


def build_scoring_asset(spec: EmbedderSpec) -> dg.AssetsDefinition:
    @model_stage_asset(
        spec,
        name=spec.scores_asset,
        extra_ins=("protein_final",),
        io_manager_key="parquet_io_manager",
        deps=[spec.classifier_asset],
        kinds={"pytorch", "pandas"},
        description=(
            f"Every cross-segment protein pair inside each isolate, scored by the {spec.name} "
            "pair classifier; `seen_in` says whether the pair was a training/val/test "
            "positive (their scores are optimistic) or new. The isolate summary ranks isolates "
            "by their weakest pair: candidates for mis-joined records or reassortants. "
            "Metadata: held_out_below_threshold = the share of within-isolate pairs never "
            "trained on (test split or new) that score below the threshold, i.e. the "
            "model's miss rate on true pairs it has not seen; median_score_by_seen_in = "
            "the median score per origin (train/val scores are optimistic)."
        ),
    )
    def _score(
        context: dg.AssetExecutionContext, config: IsolatePairScoresConfig,
        storage: SegpairStorage, viruses: VirusRegistryResource,
        reproducibility: Reproducibility, protein_final: pd.DataFrame,
        segment_pairs: pd.DataFrame, embeddings: EmbeddingStore,
    ) -> dg.Output[pd.DataFrame]:  # fmt: skip
        virus, version = virus_and_version(context)
        record_provenance(context, storage, reproducibility, config)
        path = model_to_score(storage, virus, version, spec.name, config)
        out_dir = path.parent  # the run's folder: scores belong with the model that made them
        with embeddings:
            # The cache's vectors are the ones the model must see: refuse another signature.
            model, meta = load_checkpoint(path, embeddings.signature, embeddings.dim)
            scorer = PairScorer(model, meta, embedder=None)
            pairs = isolate_pairs(protein_final, viruses.get(virus), scorer.schema_pairs,
                                  config.only_training_schema)  # fmt: skip
            scores = mark_seen_pairs(score_isolate_pairs(scorer, pairs, embeddings), segment_pairs)
        summary, groups, png = write_scoring_outputs(
            out_dir, scores, scorer.threshold, f"{virus} {version}: within-isolate pairs"
        )
        n_flagged = int((summary["n_below_threshold"] > 0).sum())
        context.log.info(
            f"scored {int(scores['score'].notna().sum())} within-isolate pairs of "
            f"{scores['assembly_id_a'].nunique()} isolates; {n_flagged} isolates have a pair "
            f"below {scorer.threshold:.3f}"
        )
        metadata = scores_metadata(scores, summary, groups, png, scorer.threshold, path,
                                   str(meta.get("data_version")), out_dir)  # fmt: skip
        return dg.Output(scores, metadata=metadata)

    return _score


def build_scoring_assets(catalog) -> list[dg.AssetsDefinition]:
    return [build_scoring_asset(spec) for spec in catalog]
