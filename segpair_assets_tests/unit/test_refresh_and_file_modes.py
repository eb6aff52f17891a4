"""Which language models the refresh runs, and the mode of atomically written files."""

from __future__ import annotations

import os
import stat

from segpair.atomic import write_text_atomic
from segpair.embeddings.catalog import CATALOG
from segpair_assets.definitions import refreshed_models
from segpair_assets.settings import Settings


def test_the_refresh_runs_configured_models_and_merged_ones_whose_sources_all_are():
    assert refreshed_models(Settings(), CATALOG) == []
    assert refreshed_models(Settings(models={"esm2": "/w"}), CATALOG) == ["esm2"]
    both = Settings(models={"esm2": "/w", "nucleotide_transformer": "/n"})
    assert sorted(refreshed_models(both, CATALOG)) == ["esm2", "nt_esm2", "nucleotide_transformer"]


def test_atomic_writes_get_the_umask_mode_not_a_private_one(tmp_path):
    before = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "shared.txt", "x")
    finally:
        os.umask(before)
    assert stat.S_IMODE((tmp_path / "shared.txt").stat().st_mode) == 0o644
