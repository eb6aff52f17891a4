"""Materialization metadata that reads in the Dagster UI without opening a dialog.

What the UI (1.13) shows inline: numbers, text, links, tables (`TableMetadataValue`,
whatever their size) and Markdown under 1,000 characters; longer Markdown (a table of
many rows, a plot as a data URI) hides behind "[Show Markdown]". So tables go as
`table(...)`, plots as Markdown images linked to the MLflow server (`images(...)`), and
figures rounded to 4 significant digits.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING

import dagster as dg
import numpy as np
import pandas as pd

from segpair.training.artifacts import significant

if TYPE_CHECKING:
    from resources.mlflow_tracking import TrackedRun

MARKDOWN_INLINE_LIMIT = 1000  # characters: the Dagster UI shows shorter Markdown inline


def _column_type(values: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(values):
        return "bool"
    if pd.api.types.is_integer_dtype(values):
        return "int"
    return "float" if pd.api.types.is_float_dtype(values) else "string"


def _cell(value, digits: int):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if np.isnan(value) else significant(value, digits)
    return value if value is None or isinstance(value, int | bool) else str(value)


def table(df: pd.DataFrame, digits: int = 4) -> dg.TableMetadataValue:
    """A DataFrame as a Dagster table (shown inline), floats to `digits` significant digits."""
    schema = dg.TableSchema(columns=[dg.TableColumn(str(c), _column_type(df[c])) for c in df])
    records = [
        dg.TableRecord({str(k): _cell(v, digits) for k, v in row.items()})
        for row in df.to_dict("records")
    ]
    return dg.MetadataValue.table(records, schema=schema)


def rounded(values: Mapping[str, object], digits: int = 4) -> dict[str, object]:
    """Floats to `digits` significant digits; other values as given."""
    return {k: _cell(v, digits) if isinstance(v, float | np.floating) else v
            for k, v in values.items()}  # fmt: skip


def images(urls: Mapping[str, str]) -> dg.MarkdownMetadataValue:
    """Plots as Markdown images ({alt: url}), one per line: short enough to show inline."""
    return dg.MetadataValue.md("\n\n".join(f"![{alt}]({url})" for alt, url in urls.items()))


def mlflow_links(run: TrackedRun) -> dict:
    """The MLflow run behind a materialization: its page, its experiment's, its id."""
    return {
        "mlflow_run": dg.MetadataValue.url(run.url),
        "mlflow_experiment": dg.MetadataValue.url(run.experiment_url),
        "mlflow_run_id": run.run_id,
    }


def versioned_output(value, metadata: dict, version: dg.DataVersion) -> dg.Output:
    """An asset's output with the data version of its content (what staleness compares)."""
    with warnings.catch_warnings():  # data_version on Output is "beta" in Dagster 1.13
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.Output(value, metadata=metadata, data_version=version)
