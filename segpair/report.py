"""Small summaries of tables for people: Markdown tables and per-protein statistics."""

from __future__ import annotations

import base64

import pandas as pd


def markdown_table(df: pd.DataFrame, max_rows: int = 20, max_cell: int = 40) -> str:
    """A Markdown table of the first `max_rows` rows, long cells shortened with an ellipsis."""

    def cell(v: object) -> str:
        text = "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)
        text = text.replace("|", "\\|").replace("\n", " ")
        return text if len(text) <= max_cell else text[: max_cell - 1] + "…"

    shown = df.head(max_rows)
    lines = [
        "| " + " | ".join(map(str, shown.columns)) + " |",
        "|" + "---|" * len(shown.columns),
    ]
    lines += [
        "| " + " | ".join(cell(v) for v in row) + " |" for row in shown.itertuples(index=False)
    ]
    if len(df) > max_rows:
        lines.append(f"\n_{len(df) - max_rows} more rows not shown_")
    return "\n".join(lines)


def protein_length_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per segment and protein: count, distinct sequences and length quantiles."""
    g = df.groupby(["segment", "function"], sort=False)["length"]
    out = pd.DataFrame(
        {
            "proteins": g.size(),
            "distinct_sequences": df.groupby(["segment", "function"], sort=False)[
                "seq_hash"
            ].nunique(),
            "min": g.min(),
            "p05": g.quantile(0.05).round(0),
            "median": g.median().round(0),
            "p95": g.quantile(0.95).round(0),
            "max": g.max(),
        }
    )
    return out.reset_index()


def png_markdown(png: bytes, alt: str) -> str:
    """A PNG inline in Markdown (a data URI), so the Dagster UI shows the plot in metadata."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"
