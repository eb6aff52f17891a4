"""Figures people look at: ROC and PR curves, confusion matrix, similarity histograms."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402


def _png(fig) -> bytes:
    """At 90 dpi every figure is at most 5 inches (450 pixels) wide: the Dagster UI shows
    the plots inline in a metadata column about that wide on a laptop screen."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def roc_pr_png(y: np.ndarray, curves: dict[str, np.ndarray], title: str) -> bytes:
    """ROC and precision-recall curves of several scorers (model and baselines) on one label set."""
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(4.8, 7.4), layout="constrained")
    for name, scores in curves.items():
        fpr, tpr, _ = roc_curve(y, scores)
        prec, rec, _ = precision_recall_curve(y, scores)
        ax1.plot(fpr, tpr, label=name)
        ax2.plot(rec, prec, label=name)
    ax1.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax1.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC: {title}")
    ax2.set(xlabel="recall", ylabel="precision", title=f"precision-recall: {title}")
    ax1.legend(loc="lower right")
    ax2.legend(loc="lower left")
    return _png(fig)


def confusion_png(tp: int, fp: int, tn: int, fn: int, title: str) -> bytes:
    fig, ax = plt.subplots(figsize=(3.6, 3.2))
    m = np.array([[tn, fp], [fn, tp]])
    ax.imshow(m, cmap="Blues")
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, str(v), ha="center", va="center", color="black")
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["pred 0", "pred 1"],
           yticklabels=["true 0", "true 1"], title=title)  # fmt: skip
    return _png(fig)


def learning_curve_png(history: list[dict[str, float]], title: str) -> bytes:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    steps = [h.get("step", i + 1) for i, h in enumerate(history)]
    for key in ("train_loss", "val_loss"):
        ax.plot(steps, [h[key] for h in history], label=key)
    ax.axhline(np.log(2), color="k", ls=":", lw=0.8, label="ln 2")
    ax.set(xlabel="optimizer step", ylabel="BCE loss", title=title)
    ax.legend()
    return _png(fig)


def similarity_png(positive: np.ndarray, negative: np.ndarray, title: str) -> bytes:
    """Histograms of cosine similarity for positive and negative pairs."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    lo, hi = min(positive.min(), negative.min()), max(positive.max(), negative.max())
    bins = np.linspace(lo, hi, 50)
    ax.hist(negative, bins=bins, alpha=0.55, density=True, label="negative pairs")
    ax.hist(positive, bins=bins, alpha=0.55, density=True, label="positive pairs")
    ax.set(xlabel="cosine similarity", ylabel="density", title=title)
    ax.legend()
    return _png(fig)


def score_histogram_png(groups: dict[str, np.ndarray], threshold: float, title: str) -> bytes:
    """Histograms of pair scores per group (e.g. pairs seen in training vs new), threshold
    marked: within-isolate pairs far below it are the suspects."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    bins = np.linspace(0, 1, 41)
    for name, values in groups.items():
        if len(values):
            ax.hist(values, bins=bins, alpha=0.55, label=f"{name} (n={len(values)})")
    ax.axvline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:.2f}")
    ax.set_xlabel("score (probability of one isolate)")
    ax.set_ylabel("pairs")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _png(fig)


def auc_heatmap_png(table, title: str) -> bytes:
    """Schema pairs x scorers, cells = test AUC, annotated."""
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * table.shape[1], 1.0 + 0.35 * table.shape[0]))
    im = ax.imshow(table.to_numpy(), cmap="viridis", vmin=0.5, vmax=1.0, aspect="auto")
    ax.set_xticks(range(table.shape[1]), table.columns)
    ax.set_yticks(range(table.shape[0]), table.index)
    for (i, j), v in np.ndenumerate(table.to_numpy()):
        ax.text(j, i, f"{v:.3f}", ha="center", va="center", fontsize=7,
                color="white" if v < 0.8 else "black")  # fmt: skip
    fig.colorbar(im, ax=ax, label="test AUC")
    ax.set_title(title)
    return _png(fig)
