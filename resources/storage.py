"""Where segpair's files live: one data root with raw/, processed/, embeddings/, ..."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

DATA_ROOT_ENV_VAR = "SEGPAIR_DATA_ROOT"


def default_data_root() -> str:
    """$SEGPAIR_DATA_ROOT, else ./data of the directory Dagster was started from."""
    return os.environ.get(DATA_ROOT_ENV_VAR) or str(Path.cwd() / "data")


class SegpairStorage(dg.ConfigurableResource):
    """The data root. Raw data versions are folders `raw/{virus}/{data_version}/`."""

    data_root: str

    @property
    def root(self) -> Path:
        return Path(self.data_root).expanduser().resolve()

    def raw_dir(self, virus: str, data_version: str) -> Path:
        return self.root / "raw" / virus / data_version

    def processed_dir(self, virus: str, data_version: str) -> Path:
        return self.root / "processed" / virus / data_version
