"""Cross-version evaluation per embedder: a model trained on another data version of the
virus, scored with its baselines on this partition's genomes (`segpair.evaluation`)."""

import json

import dagster as dg
import pandas as pd
from pydantic import Field

from resources.reproducibility import Reproducibility
from resources.storage import SegpairStorage
from resources.viruses import VirusRegistryResource
from segpair.atomic import atomic_path, write_text_atomic
from segpair.embeddings.cache import EmbeddingStore
from segpair.embeddings.catalog import EmbedderSpec
from segpair.evaluation import EvaluationReport, evaluate_model, labelled_pairs
from segpair.report import markdown_table
from segpair.training.checkpoint import load_checkpoint
from segpair.training.model_history import ModelHistory
from segpair_assets.assets.per_embedder import job_tags, stage_group, weights_note
from segpair_assets.metadata import table
from segpair_assets.partitions import virus_and_version, virus_data_version_partitions
from segpair_assets.provenance import record_provenance


class CrossVersionEvaluationConfig(dg.Config):
    model_data_version: str | None = Field(
        default=None,
        description="The data version whose trained model to evaluate here; unset: the "
        "newest other data version of this virus with a model of this embedder.",
    )
    hard_negative_share: float = Field(default=0.5, ge=0, le=1)
    seed: int | None = Field(
        default=None,
        description="Seed of the labelled pairs' negative draws; unset: derived from the "
        "reproducibility resource's master_seed (process 'evaluation').",
    )


def model_to_evaluate(storage: SegpairStorage, virus: str, version: str, embedder: str, wanted):
    """The latest checkpoint of `wanted` (or of the newest other data version), else None."""
    if wanted:
        return ModelHistory(storage.model_dir(virus, wanted, embedder)).checkpoint()
    found = []
    for folder in (storage.root / "models" / virus).glob(f"*/{embedder}"):
        name = ModelHistory(folder).latest_name()
        if folder.parent.name != version and name is not None:
            found.append(ModelHistory(folder).checkpoint(name))
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def evaluation_metadata(report: EvaluationReport, model_path, model_version) -> dict:
    by_scorer = report.metrics[["scorer", "auc_roc", "auc_pr", "f1", "mcc", "tp", "fp", "tn", "fn"]]
    strata = report.stratified[["stratum", "n", "auc_roc", "f1"]]
    return {
        "verdict": report.verdict.get("summary", "no baselines (the model keeps no pairs)"),
        "model": dg.MetadataValue.path(str(model_path)), "model_data_version": model_version,
        # a few rows: short Markdown shows inline; the strata are many, a table
        "scorers": dg.MetadataValue.md(markdown_table(by_scorer.round(4))),
        "model_by_stratum": table(strata),
        **report.counts,
    }  # fmt: skip


def build_evaluation_asset(spec: EmbedderSpec) -> dg.AssetsDefinition:
    @dg.asset(
        name=spec.evaluation_asset, partitions_def=virus_data_version_partitions,
        ins={"protein_final": dg.AssetIn("protein_final"),
             "embeddings": dg.AssetIn(spec.cache_asset)},
        group_name=stage_group(spec, spec.evaluation_asset), tags=job_tags(spec),
        kinds={"pytorch", "pandas"},
        description=weights_note(spec) + (
            f"The {spec.name} model of ANOTHER data version (config `model_data_version`, "
            "default the newest other one) on this partition's genomes: labelled pairs built "
            "by the training rules (hard negatives included), scored by the model and by its "
            "baselines refitted on its own training pairs, with counts of pairs whose "
            "sequences were or were not seen in training. Records that there is nothing to "
            "evaluate when no other data version has a model."
        ),
    )  # fmt: skip
    def _evaluate(
        context: dg.AssetExecutionContext, config: CrossVersionEvaluationConfig,
        storage: SegpairStorage, viruses: VirusRegistryResource,
        reproducibility: Reproducibility, protein_final: pd.DataFrame, embeddings: EmbeddingStore,
    ) -> dg.MaterializeResult:  # fmt: skip
        virus, version = virus_and_version(context)
        seed = reproducibility.seed("evaluation", config.seed)
        record_provenance(context, storage, reproducibility, config, {"evaluation": seed})
        path = model_to_evaluate(storage, virus, version, spec.name, config.model_data_version)
        if path is None:
            why = f"no {spec.name} model of another {virus} data version to evaluate"
            context.log.info(why)
            return dg.MaterializeResult(metadata={"evaluated": False, "why": why})
        with embeddings:
            model, meta = load_checkpoint(path, embeddings.signature, embeddings.dim)
            pairs = labelled_pairs(protein_final, viruses.get(virus), meta.get("schema_pairs"),
                                   config.hard_negative_share, seed)  # fmt: skip
            have = set(embeddings.index["brc_fea_id"])
            ids = sorted((set(pairs["brc_a"]) | set(pairs["brc_b"])) & have)
            report = evaluate_model(model, meta, pairs, embeddings.gather(ids),
                                    {pid: i for i, pid in enumerate(ids)})  # fmt: skip
        out = storage.model_dir(virus, version, spec.name) / "evaluations" / meta["data_version"]
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / "pairs.parquet") as tmp:
            report.pairs.to_parquet(tmp, index=False)
        write_text_atomic(out / "report.json", json.dumps(
            {"verdict": report.verdict, "counts": report.counts,
             "metrics": report.metrics.to_dict("records")}, indent=1, default=str))  # fmt: skip
        context.log.info(report.verdict.get("summary", f"evaluated {report.counts}"))
        return dg.MaterializeResult(
            metadata={
                "evaluated": True,
                **evaluation_metadata(report, path, meta["data_version"]),
            }  # fmt: skip
        )

    return _evaluate


def build_evaluation_assets(catalog) -> list[dg.AssetsDefinition]:
    return [build_evaluation_asset(spec) for spec in catalog]
