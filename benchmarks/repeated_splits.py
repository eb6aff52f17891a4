"""Does the default pair model beat its baselines? Test AUC over repeated isolate-disjoint
splits, by regime, with 95% t-intervals over seeds.

Per seed, segment_pairs is rebuilt (PairConfig(seed=s, hard_negative_share, isolate split
80/10/10)) from the data version's protein_final, so every seed has other train, val and test
isolates. Then, for each embedder and schema pair, `run_training(..., TrainConfig(seed=s))`
trains the default model (`mlp`, TrainConfig's default model) and fits the baselines (logreg,
1nn, knn, gbt) on the same pairs; all are scored on the same test pairs. Regimes of the test
pairs: all; random (positives + random negatives); hard (positives + negatives drawn from
isolates of the same subtype, host and year); unseen / one_seen / both_seen (how many of the
pair's two sequences occur in the training split: 0, 1, 2).

Reported per schema pair, embedder, scorer and regime: mean test AUC [95% t-interval over
seeds]; and, per regime, the model minus its best baseline (the baseline with the highest mean
test AUC in that regime, chosen on test, so the comparison is conservative): mean paired
difference [t-interval over seeds]. A temporal regime (train and validate on isolates of years
<= Y, test on later ones) is measured when the years allow; otherwise the script says why not.

    .venv/bin/python benchmarks/repeated_splits.py --data-root data --virus flu_a \
        --data-version ncbi_influenza_a_2010s --embedders kmer_nt6 kmer_aa3 \
        --schema HA-NA PB2-PB1 --seeds 5 --hard-negative-share 0.5 --out results.csv
    .venv/bin/python benchmarks/repeated_splits.py ... --all-schema-pairs --embedders kmer_nt6 \
        --seeds 3 --heatmap all_pairs.png
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats
from sklearn.metrics import roc_auc_score

from segpair.embeddings.pipeline import open_store
from segpair.errors import InputDataError
from segpair.pairs.cooccurrence import build_cooccurrence
from segpair.pairs.segment_pairs import MATCH_KEYS, PairConfig, build_segment_pairs
from segpair.registry import load_registry
from segpair.report import markdown_table
from segpair.training.evaluate import MIN_STRATUM, MODEL
from segpair.training.pipeline import run_training
from segpair.training.train import TrainConfig

REGIMES = ("all", "random", "hard", "unseen", "one_seen", "both_seen")
KEYS = ["split_kind", "schema", "embedder"]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default="data")
    p.add_argument("--virus", default="flu_a")
    p.add_argument("--data-version", required=True)
    p.add_argument("--embedders", nargs="+", default=["kmer_nt6", "kmer_aa3"])
    p.add_argument("--schema", nargs="+", default=["HA-NA", "PB2-PB1"])
    p.add_argument(
        "--all-schema-pairs",
        action="store_true",
        help="every pair of the virus's primary proteins (ignores --schema)",
    )
    p.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1")
    p.add_argument("--hard-negative-share", type=float, default=0.5)
    p.add_argument("--neg-to-pos-ratio", type=float, default=PairConfig().neg_to_pos_ratio)
    p.add_argument(
        "--temporal-min-isolates",
        type=int,
        default=50,
        help="isolates needed on each side of a temporal cut to measure it",
    )
    p.add_argument("--heatmap", type=Path, help="PNG: model AUC minus best baseline (all)")
    p.add_argument("--out", type=Path, help="CSV of the raw per-seed rows")
    p.add_argument("--markdown", type=Path, help="also write the printed tables here")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    return p.parse_args()


def schema_pairs(args, pairs_of_functions: list[str]) -> list[tuple[str, str]]:
    if args.all_schema_pairs:
        f = pairs_of_functions
        return [(a, b) for i, a in enumerate(f) for b in f[i + 1 :]]
    return [tuple(s.split("-", 1)) for s in args.schema]


def pair_config(args, seed: int, schemas, **ratios) -> PairConfig:
    return PairConfig(
        schema_pairs=schemas,
        seed=seed,
        split_mode="isolate",
        hard_negative_share=args.hard_negative_share,
        neg_to_pos_ratio=args.neg_to_pos_ratio,
        **(ratios or {"train_ratio": 0.8, "val_ratio": 0.1, "test_ratio": 0.1}),
    )


def regime_masks(test: pd.DataFrame) -> dict[str, np.ndarray]:
    pos = test["label"].to_numpy() == 1
    neg_type = test["neg_type"].astype(str).to_numpy()
    seen = test["seen_sequences"].to_numpy()
    masks = {
        "all": np.ones(len(test), bool),
        "random": pos | (neg_type == "random"),
        "hard": pos | (neg_type == "hard"),
    }
    for k, name in enumerate(("unseen", "one_seen", "both_seen")):
        masks[name] = seen == k
    return masks


def auc_or_nan(y: np.ndarray, s: np.ndarray) -> float:
    if len(y) < MIN_STRATUM or len(np.unique(y)) < 2:
        return np.nan
    return float(roc_auc_score(y, s))


def outcome_rows(outcome, base: dict) -> list[dict]:
    """One row per scorer and regime of one trained (seed, schema pair, embedder)."""
    y = outcome.test_pairs["label"].to_numpy().astype(int)
    rows = []
    for regime, m in regime_masks(outcome.test_pairs).items():
        for scorer, s in outcome.scores.items():
            rows.append(
                {
                    **base,
                    "scorer": scorer,
                    "regime": regime,
                    "n": int(m.sum()),
                    "n_pos": int(y[m].sum()),
                    "auc": auc_or_nan(y[m], s[m]),
                }
            )
    return rows


def train_all(pairs, stores: dict, schemas, seed: int, base: dict) -> list[dict]:
    """Every (embedder, schema pair) of one pairs table, each trained with the defaults."""
    rows = []
    for emb, store in stores.items():
        for a, b in schemas:
            t0 = time.perf_counter()
            try:
                out = run_training(pairs, store, [[a, b]], TrainConfig(seed=seed))
            except InputDataError as e:
                print(f"skip seed {seed} {a}-{b} {emb}: {e}", flush=True)
                continue
            info = {
                **base,
                "seed": seed,
                "schema": f"{a}-{b}",
                "embedder": emb,
                "n_train": out.sizes["n_train"],
                "best_step": out.result.best_step,
                "seconds": round(time.perf_counter() - t0, 2),
            }
            rows += outcome_rows(out, info)
            all_auc = {k: round(m["auc_roc"], 3) for k, m in out.metrics.items()}
            print(
                f"seed {seed} {base['split_kind']} {a}-{b} {emb} {info['seconds']}s "
                f"AUC(all) {all_auc}",
                flush=True,
            )
    return rows


def isolate_years(pf: pd.DataFrame) -> pd.Series:
    year = pd.to_numeric(pf.groupby("assembly_id")["year"].first(), errors="coerce")
    return year.dropna().astype(int)


def temporal_cut(pf: pd.DataFrame, min_isolates: int) -> tuple[int | None, str]:
    """(Y, why) for a split train/val <= Y < test, or (None, why it cannot be measured)."""
    years, n_all = isolate_years(pf), pf["assembly_id"].nunique()
    if years.empty:
        return None, f"temporal regime not measured: none of the {n_all} isolates has a year"
    top, share = years.value_counts().idxmax(), years.value_counts(normalize=True).max()
    cuts = [
        (int(y), int((years <= y).sum()), int((years > y).sum()))
        for y in sorted(years.unique())[:-1]
    ]
    spread = (
        f"{len(years)} of {n_all} isolates have a year, {share:.0%} of them {top} "
        f"(range {years.min()}-{years.max()})"
    )
    ok = [c for c in cuts if min(c[1], c[2]) >= min_isolates]
    if not ok:
        best = max(cuts, key=lambda c: min(c[1], c[2]), default=None)
        detail = (
            f"; the best cut (train <= {best[0]}) leaves {best[1]} isolates to train and "
            f"{best[2]} to test"
            if best
            else "; all in one year"
        )
        return None, (
            f"temporal regime not measured: {spread}{detail}, and each side needs "
            f">= {min_isolates} isolates"
        )
    y, n_tr, n_te = min(ok, key=lambda c: abs(c[2] / (c[1] + c[2]) - 0.2))
    return y, f"temporal regime: {spread}; train/val on <= {y} ({n_tr}), test > {y} ({n_te})"


def temporal_pairs(pf, cooc, spec, args, seed: int, schemas, year: int) -> pd.DataFrame:
    """Train/val pairs from isolates of years <= `year`, test pairs from later ones; test
    pairs whose pair key occurs in train or val are dropped (as segment_pairs does)."""
    iso_year = isolate_years(pf)
    late = pf["assembly_id"].map(iso_year) > year
    early = pf["assembly_id"].map(iso_year) <= year
    cfg = pair_config(args, seed, schemas, train_ratio=0.9, val_ratio=0.1, test_ratio=0.0)
    fit, _, _ = build_segment_pairs(pf[early], cooc, spec, cfg)
    cfg = dataclasses.replace(cfg, train_ratio=0.0, val_ratio=0.0, test_ratio=1.0)
    test, _, _ = build_segment_pairs(pf[late], cooc, spec, cfg)
    test = test[~test["pair_key"].isin(set(fit["pair_key"].astype(str)))]
    return pd.concat([fit, test], ignore_index=True)


def usable_hard_share(pf: pd.DataFrame, share: float) -> float:
    """`share`, or 0 when no isolate has subtype, host and year: hard negatives cannot be
    matched then (build_segment_pairs fails in _partner_in_group on such data)."""
    missing = pf.groupby("assembly_id")[list(MATCH_KEYS)].first().isna().any(axis=1)
    if share > 0 and missing.all():
        print(
            f"no isolate has all of {MATCH_KEYS}: hard negatives cannot be drawn, "
            "using hard_negative_share 0 (regime 'hard' is empty)"
        )
        return 0.0
    if share > 0 and missing.any():
        print(
            f"warning: {int(missing.sum())} isolates lack one of {MATCH_KEYS}; their "
            "'hard' negatives are not metadata-matched"
        )
    return share


def t_interval(values) -> tuple[float, float, float, int]:
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return np.nan, np.nan, np.nan, 0
    if len(v) < 2:
        return float(v[0]), np.nan, np.nan, 1
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half), len(v)


def fmt_ci(mean: float, lo: float, hi: float, sign: bool = False) -> str:
    if np.isnan(mean):
        return "n/a"
    f = "{:+.3f}" if sign else "{:.3f}"
    m = f.format(mean)
    return m if np.isnan(lo) else f"{m} [{f.format(lo)}, {f.format(hi)}]"


def auc_table(raw: pd.DataFrame) -> pd.DataFrame:
    """Mean test AUC [t-CI] per (split kind, schema, embedder, scorer), one column per regime;
    the n row gives mean test pairs per seed."""
    out = []
    for key, g in raw.groupby([*KEYS, "scorer"], sort=False):
        row = dict(zip([*KEYS, "scorer"], key, strict=True))
        for regime in REGIMES:
            row[regime] = fmt_ci(*t_interval(g.loc[g["regime"] == regime, "auc"])[:3])
        out.append(row)
    for key, g in raw[raw["scorer"] == MODEL].groupby(KEYS, sort=False):
        n = g.groupby("regime")["n"].mean()
        out.append(
            {
                **dict(zip(KEYS, key, strict=True)),
                "scorer": "(test pairs/seed)",
                **{r: f"{n.get(r, 0):.0f}" for r in REGIMES},
            }
        )
    table = pd.DataFrame(out)
    return table.sort_values(KEYS, kind="stable").reset_index(drop=True)


def paired_differences(raw: pd.DataFrame) -> pd.DataFrame:
    """Per (split kind, schema, embedder, regime): the model minus the baseline with the
    highest mean test AUC in that regime, paired by seed."""
    wide = raw.pivot_table(
        index=[*KEYS, "regime", "seed"], columns="scorer", values="auc", dropna=False
    )
    baselines = [c for c in wide.columns if c != MODEL]
    rows = []
    for key, g in wide.groupby(level=[0, 1, 2, 3], sort=False):
        means = g[baselines].mean()
        if means.isna().all() or g[MODEL].isna().all():
            continue
        best = means.idxmax()
        d = (g[MODEL] - g[best]).dropna()
        mean, lo, hi, n = t_interval(d)
        rows.append(
            {
                **dict(zip([*KEYS, "regime"], key, strict=True)),
                "best_baseline": best,
                "model": g[MODEL].mean(),
                "baseline": means[best],
                "diff": mean,
                "lo": lo,
                "hi": hi,
                "seeds": n,
                "model_wins": int((d > 0).sum()),
            }
        )
    order = {r: i for i, r in enumerate(REGIMES)}
    out = pd.DataFrame(rows)
    return out.sort_values(
        [*KEYS, "regime"], key=lambda c: c.map(order) if c.name == "regime" else c
    )


def verdict(r) -> str:
    if np.isnan(r["lo"]):
        return "too few seeds"
    if r["lo"] > 0:
        return "model better"
    return "baseline better" if r["hi"] < 0 else "CI includes 0"


def diff_table(diffs: pd.DataFrame) -> pd.DataFrame:
    t = diffs.copy()
    t["model AUC"] = t["model"].map("{:.3f}".format)
    t["baseline AUC"] = t["baseline"].map("{:.3f}".format)
    t["model - baseline [95% CI]"] = [
        fmt_ci(m, lo, hi, True) for m, lo, hi in zip(t["diff"], t["lo"], t["hi"], strict=True)
    ]
    t["wins"] = t["model_wins"].astype(str) + "/" + t["seeds"].astype(str)
    t["verdict"] = t.apply(verdict, axis=1)
    cols = [
        *KEYS,
        "regime",
        "best_baseline",
        "model AUC",
        "baseline AUC",
        "model - baseline [95% CI]",
        "wins",
        "verdict",
    ]
    return t[cols]


def diff_grid(diffs: pd.DataFrame, functions: list[str], all_pairs: bool):
    """Matrices of (model - best baseline) on regime all: {title: (matrix, CI excludes 0,
    row labels, column labels)}."""
    d = diffs[(diffs["regime"] == "all") & (diffs["split_kind"] == "isolate")]
    if not all_pairs:
        rows, cols = list(dict.fromkeys(d["schema"])), list(dict.fromkeys(d["embedder"]))
        mat, sig = np.full((len(rows), len(cols)), np.nan), np.zeros((len(rows), len(cols)), bool)
        for r in d.itertuples():
            i, j = rows.index(r.schema), cols.index(r.embedder)
            mat[i, j], sig[i, j] = r.diff, r.lo > 0 or r.hi < 0
        return {"schema pair x embedder": (mat, sig, rows, cols)}
    grids = {}
    for emb, g in d.groupby("embedder", sort=False):
        n = len(functions)
        mat, sig = np.full((n, n), np.nan), np.zeros((n, n), bool)
        for r in g.itertuples():
            a, b = r.schema.split("-", 1)
            for i, j in (
                (functions.index(a), functions.index(b)),
                (functions.index(b), functions.index(a)),
            ):
                mat[i, j], sig[i, j] = r.diff, r.lo > 0 or r.hi < 0
        grids[emb] = (mat, sig, functions, functions)
    return grids


def draw_heatmap(grids: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(grids), figsize=(1 + 5.5 * len(grids), 5), squeeze=False)
    vmax = max(np.nanmax(np.abs(m)) for m, *_ in grids.values()) or 0.01
    for ax, (title, (mat, sig, rows, cols)) in zip(axes[0], grids.items(), strict=True):
        im = ax.imshow(mat, cmap="RdBu", vmin=-vmax, vmax=vmax)
        ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
        ax.set_yticks(range(len(rows)), rows)
        for i, j in zip(*np.nonzero(~np.isnan(mat)), strict=True):
            ax.text(
                j,
                i,
                f"{mat[i, j]:+.3f}" + ("" if sig[i, j] else "\n(ns)"),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if abs(mat[i, j]) > 0.6 * vmax else "black",
            )
        ax.set_title(title)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(
        "test AUC: default model minus best baseline (mean over seeds; ns: 95% CI includes 0)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    print(f"heatmap: {path}")


def run_seeds(args, pf, cooc, spec, stores, schemas, cut) -> list[dict]:
    rows = []
    for seed in range(args.seeds):
        pairs, pstats, _ = build_segment_pairs(pf, cooc, spec, pair_config(args, seed, schemas))
        if pstats.shortfalls:
            print(f"seed {seed} shortfalls: {pstats.shortfalls}")
        rows += train_all(pairs, stores, schemas, seed, {"split_kind": "isolate"})
        if cut is not None:
            tp = temporal_pairs(pf, cooc, spec, args, seed, schemas, cut)
            rows += train_all(tp, stores, schemas, seed, {"split_kind": f"temporal>{cut}"})
    return rows


def report(raw: pd.DataFrame, diffs: pd.DataFrame, header: list[str]) -> str:
    n = len(raw)
    lines = [
        *header,
        "",
        "### Mean test AUC [95% t-CI over seeds]",
        "",
        markdown_table(auc_table(raw), max_rows=n, max_cell=60),
        "",
        "### Default model minus best baseline, paired by seed [95% t-CI]",
        "",
        markdown_table(diff_table(diffs), max_rows=n, max_cell=60),
    ]
    main = diffs[diffs["regime"].isin(["all", "hard"])]
    if len(main):
        lines += [
            "",
            "mean model - best baseline over cells: "
            + ", ".join(
                f"{k} {g['diff'].mean():+.3f} (CI above 0 in {int((g['lo'] > 0).sum())}/{len(g)}, "
                f"below 0 in {int((g['hi'] < 0).sum())})"
                for k, g in main.groupby("regime")
            ),
        ]
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    spec = load_registry().get(args.virus)
    base = Path(args.data_root) / "processed" / args.virus / args.data_version
    pf = pd.read_parquet(base / "protein_final.parquet")
    cooc, _ = build_cooccurrence(pf)
    args.hard_negative_share = usable_hard_share(pf, args.hard_negative_share)
    functions = [f for f in spec.protein_names(primary_only=True) if f in set(pf["function"])]
    schemas = schema_pairs(args, functions)
    cut, why = temporal_cut(pf, args.temporal_min_isolates)
    print(why)
    with contextlib.ExitStack() as stack:
        stores = {
            e: stack.enter_context(open_store(args.data_root, args.virus, args.data_version, e))
            for e in args.embedders
        }
        raw = pd.DataFrame(run_seeds(args, pf, cooc, spec, stores, schemas, cut))
    if args.out:
        raw.to_csv(args.out, index=False)
    diffs = paired_differences(raw)
    header = [
        f"{args.virus} {args.data_version}: {args.seeds} seeds, "
        f"{len(schemas)} schema pairs, embedders {args.embedders}, hard_negative_share "
        f"{args.hard_negative_share}, neg_to_pos_ratio {args.neg_to_pos_ratio}; "
        f"{time.perf_counter() - t0:.0f} s",
        "",
        why,
    ]
    text = report(raw, diffs, header)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    if args.heatmap:
        draw_heatmap(diff_grid(diffs, functions, args.all_schema_pairs), args.heatmap)


if __name__ == "__main__":
    main()
