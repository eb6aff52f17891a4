"""Cross-version evaluation: a trained model on proteins of another data version.

The test that matters for a user is whether a model trained on one collection of genomes
pairs the segments of genomes it has never seen. `evaluate_model`:

1. builds labelled pairs from the new proteins by the same leakage rules as training
   (`build_segment_pairs` with every isolate in one split): positives within isolates,
   negatives across isolates that never co-occur, a share of them hard (same subtype,
   host and year);
2. scores them with the model and with the baselines refitted on the model's own
   training pairs (the neighbour model's evidence bank holds them);
3. reports every scorer side by side, overall and per stratum, with the number of
   pairs whose sequences were, or were not, seen in training (identical vectors), and
   of pairs left out because a protein has no embedding.

`evaluate_proteins` runs the three steps on proteins read for a checkpoint (`segpair
evaluate`), refusing, with the reason, proteins that hold no pair it could evaluate.

Baseline thresholds come from the training pairs (in-sample), so compare scorers by
AUC, which needs no threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from segpair.errors import InputDataError
from segpair.pairs.cooccurrence import build_cooccurrence
from segpair.pairs.segment_pairs import PairConfig, build_segment_pairs
from segpair.registry import VirusSpec
from segpair.scoring import PairScorer, pairing_problem
from segpair.training.baselines import FittedBaseline, fit_baselines
from segpair.training.data import PairSet
from segpair.training.evaluate import MODEL, stratified_metrics, verdict
from segpair.training.metrics import binary_metrics
from segpair.training.neighbours import NeighbourPairClassifier
from segpair.training.train import predict

SEEN_COSINE = 1 - 1e-5  # a vector this close to a training vector is the same sequence


@dataclass
class EvaluationReport:
    pairs: pd.DataFrame  # the labelled pairs, one score column per scorer
    metrics: pd.DataFrame  # one row per scorer
    stratified: pd.DataFrame  # the model per stratum
    verdict: dict
    counts: dict[str, int]


def labelled_pairs(
    proteins: pd.DataFrame, virus: VirusSpec, schema_pairs, hard_negative_share: float, seed: int
) -> pd.DataFrame:
    """Positives and leakage-safe negatives of `schema_pairs` among `proteins`."""
    cooccurrence, _ = build_cooccurrence(proteins)
    config = PairConfig(schema_pairs=[tuple(p) for p in schema_pairs] if schema_pairs else None,
                        train_ratio=0.0, val_ratio=0.0, test_ratio=1.0,
                        hard_negative_share=hard_negative_share, seed=seed)  # fmt: skip
    pairs, _stats, _ = build_segment_pairs(proteins, cooccurrence, virus, config)
    return pairs.reset_index(drop=True)


def bank_pairs(model) -> PairSet | None:
    """The training pairs a neighbour model keeps as evidence, as a PairSet."""
    if not isinstance(model, NeighbourPairClassifier):
        return None
    ev = model.evidence
    a = np.concatenate([ev.pos_a.cpu().numpy(), ev.neg_a.cpu().numpy()])
    b = np.concatenate([ev.pos_b.cpu().numpy(), ev.neg_b.cpu().numpy()])
    y = np.concatenate([np.ones(len(ev.pos_a)), np.zeros(len(ev.neg_a))]).astype(np.float32)
    return PairSet.from_arrays(a, b, y)


def refit_baselines(model, meta: dict, seed: int = 0) -> dict[str, FittedBaseline]:
    """The baselines fitted on the model's own training pairs (its evidence bank); none for
    a model that keeps no training pairs."""
    train = bank_pairs(model)
    if train is None or len(np.unique(train.y)) < 2:
        return {}
    interactions = meta.get("interactions") or ["concat", "diff", "prod"]
    return fit_baselines(train, train, interactions, "f1", seed)


def _seen(vectors: np.ndarray, bank: np.ndarray) -> np.ndarray:
    unit = lambda x: x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)  # noqa: E731
    if not len(bank) or not len(vectors):
        return np.zeros(len(vectors), dtype=bool)
    best = np.concatenate([(unit(vectors[s : s + 2048]) @ unit(bank).T).max(1)
                           for s in range(0, len(vectors), 2048)])  # fmt: skip
    return best >= SEEN_COSINE


def seen_sequences(model, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per pair, how many of its sequences the model saw in training (0, 1, 2)."""
    train = bank_pairs(model)
    if train is None:
        return np.full(len(a), -1)
    ta, tb, _ = train.arrays()
    return _seen(a, ta).astype(int) + _seen(b, tb).astype(int)


def evaluate_model(
    model, meta: dict, pairs: pd.DataFrame, vectors: np.ndarray, row_of: dict[str, int]
) -> EvaluationReport:
    """Score labelled `pairs` (brc_a, brc_b, label, ...) with the model and its baselines."""
    keep = pairs["brc_a"].isin(row_of.keys()) & pairs["brc_b"].isin(row_of.keys())
    n_without = int((~keep).sum())  # counted, so the user sees what was not evaluated
    pairs = pairs[keep].reset_index(drop=True)
    if pairs.empty or pairs["label"].nunique() < 2:
        raise InputDataError(
            "evaluation pairs",
            f"{len(pairs)} labelled pairs with embeddings, labels "
            f"{sorted(pairs['label'].unique())}: nothing to evaluate",
            "give proteins of several complete isolates of the model's virus and schema pairs",
        )
    a = vectors[pairs["brc_a"].map(row_of).to_numpy()]
    b = vectors[pairs["brc_b"].map(row_of).to_numpy()]
    y = pairs["label"].to_numpy()
    scores = {MODEL: predict(model, a, b)}
    thresholds = {MODEL: float(meta["threshold"])}
    test = PairSet.from_arrays(a, b, y)
    for name, baseline in refit_baselines(model, meta).items():
        scores[name], thresholds[name] = baseline.score(test), baseline.threshold
    pairs = pairs.assign(seen_sequences=seen_sequences(model, a, b),
                         **{f"score_{k}": v for k, v in scores.items()})  # fmt: skip
    metrics = pd.DataFrame(
        [{"scorer": k, **binary_metrics(y, scores[k], thresholds[k])} for k in scores]
    )
    seen = pairs["seen_sequences"]
    counts = {"pairs": len(pairs), "positives": int(y.sum()),
              "negatives": int(len(y) - y.sum()),
              "both_sequences_seen": int((seen == 2).sum()),
              "one_sequence_seen": int((seen == 1).sum()),
              "no_sequence_seen": int((seen == 0).sum()),
              "pairs_without_embeddings": n_without}  # fmt: skip
    return EvaluationReport(
        pairs, metrics, stratified_metrics(pairs, scores[MODEL], thresholds[MODEL]),
        verdict(pairs, scores, thresholds) if len(scores) > 1 else {}, counts,
    )  # fmt: skip


def evaluate_proteins(
    scorer: PairScorer,
    proteins: pd.DataFrame,
    virus: VirusSpec,
    hard_negative_share: float = 0.5,
    seed: int = 42,
    where: str = "proteins",
) -> EvaluationReport:
    """Labelled pairs of `proteins` (the model's virus) embedded by the scorer's embedder and
    evaluated; proteins holding no pair of the model's schema, or none the embedder can
    embed, are an InputDataError saying why (`where` names their source)."""
    problem = pairing_problem(proteins, scorer.schema_pairs, where)
    if problem is not None:
        raise problem
    pairs = labelled_pairs(proteins, virus, scorer.schema_pairs, hard_negative_share, seed)
    used = proteins[proteins["brc_fea_id"].isin(set(pairs["brc_a"]) | set(pairs["brc_b"]))]
    vectors, row_of, failed = scorer.embed(used)
    if not row_of:
        raise scorer.unembeddable(len(pairs), used, failed, where)
    return evaluate_model(scorer.model, scorer.meta, pairs, vectors, row_of)
