"""Asset checks: the invariants each asset promises, visible in the Dagster UI."""

import dagster as dg
import pandas as pd

from segpair.validation import check_protein_final
from segpair_assets.assets.preprocessing import protein_final
from segpair_assets.partitions import partitioned_asset_check


@partitioned_asset_check(
    asset=protein_final,
    blocking=True,
    description="Unique brc_fea_id, non-empty sequences, only the 20 standard residues and X, "
    "length equal to the sequence length, every column present.",
)
def protein_final_is_valid(protein_final: pd.DataFrame) -> dg.AssetCheckResult:
    outcomes = check_protein_final(protein_final)
    return dg.AssetCheckResult(
        passed=all(o.passed for o in outcomes.values()),
        metadata={
            name: dg.MetadataValue.text(
                "pass" if o.passed else f"FAIL: {o.description}; e.g. {o.failing_examples}"
            )
            for name, o in outcomes.items()
        },
    )
