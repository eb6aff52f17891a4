"""Does scoring find mis-joined genome records? Plant them and count.

On a materialized data version: train the pair classifier on one schema pair (asset
defaults), then take the held-out test isolates, swap the slot-A protein (e.g. HA)
between pairs of isolates of different subtypes (as a mis-joined record would), score
every within-isolate pair of the test isolates with `segpair.scoring`, and report how
many planted isolates fall below the model's threshold against how many untouched
isolates do (the false-flag rate), plus the planted isolates' rank among all. The
1-NN baseline's margin, computed on the same pairs, is the baseline in the same run.

    .venv/bin/python benchmarks/misjoin_detection.py --data-root data \
        --virus flu_a --data-version simulated_v1 --schema HA-NA --embedder kmer_nt6
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from segpair.embeddings.pipeline import open_store
from segpair.registry import load_registry
from segpair.report import markdown_table
from segpair.scoring import PairScorer, isolate_pairs, isolate_summary
from segpair.training.baselines import nearest_neighbour_margin
from segpair.training.metrics import select_threshold
from segpair.training.pipeline import gather_splits, run_training
from segpair.training.train import TrainConfig


def plant_swaps(proteins, test_isolates, function, n_swaps, rng):
    """Swap `function`'s protein between isolates of different subtypes; (proteins, planted)."""
    has = proteins[proteins["function"] == function].drop_duplicates("assembly_id")
    has = has[has["assembly_id"].isin(test_isolates)].set_index("assembly_id")["subtype"]
    has = has.sample(frac=1.0, random_state=int(rng.integers(1 << 31)))
    planted, used = {}, set()
    ids = list(has.index)
    for a in ids:
        if len(planted) >= 2 * n_swaps or a in used:
            continue
        partner = next((b for b in ids if b not in used and b != a and has[b] != has[a]), None)
        if partner is None:
            break
        planted[a], planted[partner] = partner, a
        used |= {a, partner}
    out = proteins.copy()
    moved = (out["function"] == function) & out["assembly_id"].isin(planted)
    out.loc[moved, "assembly_id"] = out.loc[moved, "assembly_id"].map(planted)
    return out, set(planted)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data-root", default="data")
    p.add_argument("--virus", default="flu_a")
    p.add_argument("--data-version", default="simulated_v1")
    p.add_argument("--schema", default="HA-NA")
    p.add_argument("--embedder", default="kmer_nt6")
    p.add_argument("--swaps", type=int, default=10, help="pairs of isolates swapped")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    root = f"{args.data_root}/processed/{args.virus}/{args.data_version}"
    pairs = pd.read_parquet(f"{root}/segment_pairs.parquet")
    proteins = pd.read_parquet(f"{root}/protein_final.parquet")
    virus = load_registry().get(args.virus)
    a, b = args.schema.split("-", 1)
    rng = np.random.default_rng(args.seed)

    with open_store(args.data_root, args.virus, args.data_version, args.embedder) as store:
        outcome = run_training(pairs, store, [[a, b]], TrainConfig())
        test_isolates = set(outcome.test_pairs["assembly_a"]) | set(
            outcome.test_pairs["assembly_b"]
        )
        test_proteins = proteins[proteins["assembly_id"].isin(test_isolates)]
        planted_proteins, planted = plant_swaps(test_proteins, test_isolates, a, args.swaps, rng)
        meta = {"threshold": outcome.result.threshold, "schema_pairs": [[a, b]]}
        scorer = PairScorer(outcome.result.model, meta, embedder=None)
        within = isolate_pairs(planted_proteins, virus, [[a, b]])
        ids = sorted(set(within["brc_a"]) | set(within["brc_b"]))
        vectors = store.gather(ids)
        row_of = {pid: i for i, pid in enumerate(ids)}
        scores = scorer.score(within, vectors, row_of, {})
        # 1-NN baseline on the same pairs: margin to the training positives/negatives
        sets, _ = gather_splits(pairs[pairs["schema_pair"] == args.schema], store, 8.0)
        tr_a, tr_b, tr_y = sets["train"].arrays()
        va_a, va_b, va_y = sets["val"].arrays()
        train_x = np.concatenate([tr_a, tr_b], axis=1)
        nn_val = nearest_neighbour_margin(train_x, tr_y, np.concatenate([va_a, va_b], axis=1))
        nn_threshold = select_threshold(va_y, (nn_val + 2) / 4, "f1")
        q = np.concatenate(
            [vectors[[row_of[x] for x in within["brc_a"]]],
             vectors[[row_of[x] for x in within["brc_b"]]]], axis=1
        )  # fmt: skip
        nn_scores = (nearest_neighbour_margin(train_x, tr_y, q) + 2) / 4

    rows = []
    for name, values, threshold in (
        ("mlp", scores["score"].to_numpy(), scorer.threshold),
        ("1nn", nn_scores, nn_threshold),
    ):
        s = scores.assign(score=values)
        summary = isolate_summary(s, threshold)
        is_planted = summary["assembly_id"].isin(planted)
        flagged = summary["n_below_threshold"] > 0
        rows.append({
            "scorer": name,
            "test_isolates": len(summary),
            "planted": int(is_planted.sum()),
            "planted_flagged": int((is_planted & flagged).sum()),
            "untouched_flagged": int((~is_planted & flagged).sum()),
            "false_flag_rate": round(float(flagged[~is_planted].mean()), 3),
            "median_rank_of_planted": float(np.median(np.flatnonzero(is_planted))),
        })  # fmt: skip
    table = pd.DataFrame(rows)
    print(f"{args.virus} {args.data_version} {args.schema} {args.embedder}: "
          f"test AUC {outcome.metrics['mlp']['auc_roc']:.3f}")  # fmt: skip
    print(markdown_table(table))


if __name__ == "__main__":
    main()
