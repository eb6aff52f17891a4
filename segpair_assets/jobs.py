"""Jobs users launch."""

from __future__ import annotations

import dagster as dg

from segpair_assets.assets.embeddings import NEEDS_WEIGHTS_TAG

_needs_weights = dg.AssetSelection.tag(NEEDS_WEIGHTS_TAG, "true")

segpair_main_job = dg.define_asset_job(
    name="segpair_main_job",
    selection=dg.AssetSelection.all() - _needs_weights,
    description="Materialize every segpair asset that runs anywhere (no model weights needed), "
    "with its checks, for one virus x data_version.",
)

segpair_language_model_job = dg.define_asset_job(
    name="segpair_language_model_job",
    selection=_needs_weights | _needs_weights.upstream(),
    description="Materialize the language-model embedding caches (ESM-2, FastESM2, "
    "Nucleotide Transformer) and what they need; run where the weights and a GPU are.",
)
