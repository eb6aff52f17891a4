"""The master seed: one number from which every process's seed derives (seed 001)."""

import dagster as dg
from pydantic import Field

from segpair.provenance import DEFAULT_MASTER_SEED, process_seed


class Reproducibility(dg.ConfigurableResource):
    """Seeds of a run. A process (`dataset`, `training`, `evaluation`) whose asset config
    leaves `seed` unset takes the seed derived from `master_seed`; every materialization
    records the master seed and the seeds it used."""

    master_seed: int = Field(
        default=DEFAULT_MASTER_SEED,
        description="Seed from which the pair build's, training's and evaluation's seeds "
        "derive unless their asset config sets one (SEGPAIR_MASTER_SEED).",
    )

    def seed(self, process: str, override: int | None = None) -> int:
        return process_seed(self.master_seed, process, override)
