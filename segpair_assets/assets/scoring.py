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

from resources.storage import SegpairStorage
from segpair.atomic import atomic_path
from segpair.embeddings.cache import EmbeddingStore
from segpair.registry import load_registry
from segpair.report import markdown_table, png_markdown
from segpair.scoring import PairScorer, isolate_pairs, isolate_summary, mark_seen_pairs
from segpair.training.checkpoint import load_checkpoint
from segpair.training.plots import score_histogram_png
from segpair_assets.assets.per_embedder import model_stage_asset
from segpair_assets.assets.training import MODEL_PREFIX
from segpair_assets.embedders import EMBEDDER_NAMES
from segpair_assets.partitions import virus_and_version


class IsolatePairScoresConfig(dg.Config):
    checkpoint: str | None = Field(
        default=None,
        description="model.pt to score with; unset: this partition's pair_classifier model "
        "(a model of another data version works if its embedder signature matches).",
    )
    only_training_schema: bool = Field(
        default=True,
        description="Score only the function pairs the model was trained on (others are "
        "outside its evidence).",
    )


def build_scoring_asset(embedder: str) -> dg.AssetsDefinition:
    @model_stage_asset(
        embedder,
        name=f"isolate_pair_scores_{embedder}",
        extra_ins=("protein_final",),
        io_manager_key="parquet_io_manager",
        deps=[f"{MODEL_PREFIX}{embedder}"],
        kinds={"pytorch", "pandas"},
        description=(
            f"Every cross-segment protein pair inside each isolate, scored by the {embedder} "
            "pair classifier; `seen_in` says whether the pair was a training/val/test "
            "positive (their scores are optimistic) or new. The isolate summary ranks isolates "
            "by their weakest pair: candidates for mis-joined records or reassortants."
        ),
    )
    def _score(
        context: dg.AssetExecutionContext,
        config: IsolatePairScoresConfig,
        storage: SegpairStorage,
        protein_final: pd.DataFrame,
        segment_pairs: pd.DataFrame,
        embeddings: EmbeddingStore,
    ) -> dg.Output[pd.DataFrame]:
        virus_name, version = virus_and_version(context)
        virus = load_registry().get(virus_name)
        out_dir = storage.root / "models" / virus_name / version / embedder
        path = Path(config.checkpoint) if config.checkpoint else out_dir / "model.pt"
        with embeddings:
            # The cache's vectors are the ones the model must see: refuse another signature.
            model, meta = load_checkpoint(path, embeddings.signature, embeddings.dim)
            scorer = PairScorer(model, meta, embedder=None)
            pairs = isolate_pairs(
                protein_final, virus, scorer.schema_pairs, config.only_training_schema
            )
            used = sorted(set(pairs["brc_a"]) | set(pairs["brc_b"]))
            have = set(embeddings.index["brc_fea_id"])
            present = [p for p in used if p in have]
            vectors = embeddings.gather(present)
        row_of = {pid: i for i, pid in enumerate(present)}
        failed = {pid: "has no embedding in the master cache" for pid in used if pid not in have}
        scores = mark_seen_pairs(scorer.score(pairs, vectors, row_of, failed), segment_pairs)
        summary = isolate_summary(scores, scorer.threshold)
        with atomic_path(out_dir / "isolate_summary.csv") as tmp:
            summary.to_csv(tmp, index=False)

        scored = scores[scores["score"].notna()]
        groups = {name: scored.loc[scored["seen_in"] == name, "score"].to_numpy()
                  for name in ("train", "val", "test", "new")}  # fmt: skip
        png = score_histogram_png(
            groups, scorer.threshold, f"{virus_name} {version}: within-isolate pairs"
        )
        with atomic_path(out_dir / "isolate_pair_scores.png") as tmp:
            tmp.write_bytes(png)
        flagged = summary[summary["n_below_threshold"] > 0]
        context.log.info(
            f"scored {len(scored)} within-isolate pairs of {scores['assembly_id_a'].nunique()} "
            f"isolates; {len(flagged)} isolates have a pair below {scorer.threshold:.3f}"
        )
        held_out = scored[scored["seen_in"].isin(["test", "new"])]
        return dg.Output(
            scores,
            metadata={
                "dagster/row_count": len(scores),
                "model": dg.MetadataValue.path(str(path)),
                "model_data_version": str(meta.get("data_version")),
                "threshold": round(scorer.threshold, 4),
                "pairs_scored": len(scored),
                "pairs_not_scored": int(scores["score"].isna().sum()),
                "pairs_called_same_isolate": int(scores["same_isolate"].sum()),
                "held_out_pairs_below_threshold_fraction": round(
                    float((held_out["score"] < scorer.threshold).mean())
                    if len(held_out)
                    else float("nan"),
                    4,
                ),  # fmt: skip
                "isolates_flagged": len(flagged),
                "isolate_summary": dg.MetadataValue.path(str(out_dir / "isolate_summary.csv")),
                "weakest_isolates": dg.MetadataValue.md(
                    markdown_table(flagged.head(15).round(4)) if len(flagged) else "none"
                ),
                "score_histogram": dg.MetadataValue.md(png_markdown(png, "scores")),
                "median_score_by_seen_in": dg.MetadataValue.json(
                    {k: float(np.median(v)) for k, v in groups.items() if len(v)}
                ),
            },
        )

    return _score


scoring_assets = [build_scoring_asset(name) for name in EMBEDDER_NAMES]
