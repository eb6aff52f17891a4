"""Jobs users launch."""

from __future__ import annotations

import dagster as dg

segpair_main_job = dg.define_asset_job(
    name="segpair_main_job",
    selection=dg.AssetSelection.all(),
    description="Materialize every segpair asset (and its checks) for one virus x data_version.",
)
