"""Figures of the analyses: embedding maps coloured by a metadata column, per-segment
conservation, per-schema-pair similarity. PNG bytes, matplotlib's Agg backend."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

UNKNOWN = "unknown"
_OTHER_COLOUR, _UNKNOWN_COLOUR = "#9e9e9e", "#d9d9d9"


def _png(fig) -> bytes:
    """At most 5 inches at 90 dpi (450 pixels), as segpair.training.plots: the width of the
    metadata column the Dagster UI shows images in."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def legend_labels(values: pd.Series, max_entries: int) -> tuple[pd.Series, list[str]]:
    """Each value as its legend entry: the `max_entries` most frequent categories by name,
    the rest pooled as "other (k more)", missing or empty values as "unknown". Returns the
    labels and the legend order (most frequent first, pooled entries last)."""
    text = values.astype("string").fillna("").str.strip()
    text = text.mask(text == "", UNKNOWN)
    counts = text[text != UNKNOWN].value_counts()
    kept = list(counts.index[:max_entries])
    labels = text.where(text.isin([*kept, UNKNOWN]), f"other ({len(counts) - len(kept)} more)")
    pooled = [lab for lab in labels.unique() if lab.startswith("other (")]
    order = kept + pooled + ([UNKNOWN] if (labels == UNKNOWN).any() else [])
    return labels.astype(str), order


def _colours(order: list[str]) -> dict[str, str]:
    """tab10 (tab20 for more categories) without its greys, which mean other and unknown."""
    named = [lab for lab in order if lab != UNKNOWN and not lab.startswith("other (")]
    palette = plt.get_cmap("tab10" if len(named) <= 9 else "tab20")
    hues = [matplotlib.colors.to_hex(palette(i)) for i in range(palette.N)]
    hues = [h for h in hues if h not in ("#7f7f7f", "#c7c7c7")]
    colours = {lab: hues[i % len(hues)] for i, lab in enumerate(named)}
    pooled = {lab: _OTHER_COLOUR for lab in order if lab.startswith("other (")}
    return {**colours, **pooled, UNKNOWN: _UNKNOWN_COLOUR}


def map_png(
    frame: pd.DataFrame,
    panels: dict[str, str],
    column: str,
    title: str,
    max_legend_entries: int = 12,
) -> bytes:
    """One scatter panel per method, stacked (`panels`: method -> panel title, reading the
    columns `{method}_x`, `{method}_y`), points coloured by `column`, one legend below.
    Frequent categories are drawn last, so a few large ones do not hide the rest."""
    labels, order = legend_labels(frame[column], max_legend_entries)
    colours = _colours(order)
    n_rows = 1 + (len(order) - 1) // 3
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(4.8, 3.4 * len(panels) + 0.25 * n_rows),
        layout="constrained",
        squeeze=False,
    )
    for ax, (method, panel_title) in zip(axes[:, 0], panels.items(), strict=True):
        x, y = frame[f"{method}_x"].to_numpy(), frame[f"{method}_y"].to_numpy()
        for label in reversed(order):
            at = (labels == label).to_numpy() & np.isfinite(x)
            ax.scatter(
                x[at],
                y[at],
                s=5,
                alpha=0.7,
                color=colours[label],
                linewidths=0,
                label=f"{label} ({int(at.sum())})",
            )
        ax.set(title=panel_title, xticks=[], yticks=[])
    handles, texts = axes[0, 0].get_legend_handles_labels()
    fig.legend(
        handles[::-1],
        texts[::-1],
        loc="outside lower center",
        ncol=3,
        fontsize=7,
        markerscale=2,
        title=column,
        title_fontsize=8,
        frameon=False,
    )
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def conservation_png(identities: pd.DataFrame, table: pd.DataFrame, title: str) -> bytes:
    """Top: sampled pairwise identity between isolates' proteins, one box per function.
    Bottom: distinct sequences per 100 isolates (protein, and coding DNA where present)."""
    functions = list(table["function"])
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(4.8, 6.4), layout="constrained")
    data = [identities.loc[identities["function"] == f, "identity"].to_numpy() for f in functions]
    shown = [d if len(d) else np.array([np.nan]) for d in data]
    ax1.boxplot(shown, tick_labels=functions, showfliers=False, widths=0.6, whis=(5, 95))
    jitter = np.random.default_rng(0)  # the points show what a box hides (two modes in HA)
    for i, d in enumerate(data, start=1):
        ax1.scatter(i + jitter.uniform(-0.2, 0.2, len(d)), d, s=4, alpha=0.4, color="tab:blue")
    ax1.set(
        ylabel="pairwise identity", title="identity between isolates' proteins (whiskers 5-95%)"
    )
    ax1.tick_params(axis="x", labelrotation=45)
    at = np.arange(len(functions))
    protein = table["distinct_proteins_per_100_isolates"].to_numpy(dtype=float)
    cds = table["distinct_cds_per_100_isolates"].to_numpy(dtype=float)
    width = 0.4 if np.isfinite(cds).any() else 0.8
    ax2.bar(at - (width / 2 if width < 0.8 else 0), protein, width, label="protein")
    if np.isfinite(cds).any():
        ax2.bar(at + width / 2, np.nan_to_num(cds), width, label="coding DNA")
        ax2.legend(fontsize=8)
    ax2.set_xticks(at, functions, rotation=45)
    ax2.set(ylabel="distinct sequences per 100 isolates", ylim=(0, 105))
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def schema_pair_png(per_pair: pd.DataFrame, title: str) -> bytes:
    """Cohen's d (positive vs negative pairs' cosine similarity) per schema pair, with the
    histogram overlap written beside each bar."""
    rows = per_pair.dropna(subset=["cohens_d"]).sort_values("cohens_d")
    fig, ax = plt.subplots(figsize=(4.8, 1.0 + 0.22 * max(len(rows), 1)), layout="constrained")
    at = np.arange(len(rows))
    ax.barh(at, rows["cohens_d"], color="tab:blue")
    for i, (d, overlap) in enumerate(zip(rows["cohens_d"], rows["histogram_overlap"], strict=True)):
        ax.text(d, i, f" {overlap:.0%}", va="center", ha="left" if d >= 0 else "right", fontsize=6)
    ax.axvline(0.5, color="k", ls=":", lw=0.8)
    ax.margins(x=0.15)  # room for the overlap labels at both ends
    ax.set_yticks(at, rows["schema_pair"], fontsize=7)
    ax.set(xlabel="Cohen's d (label: histogram overlap; dotted: d = 0.5)", title=title)
    return _png(fig)
