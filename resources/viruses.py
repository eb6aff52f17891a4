"""The virus registry as a resource: assets look up a virus's segments and proteins here."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from segpair.registry import VirusRegistry, VirusSpec, load_registry


class VirusRegistryResource(dg.ConfigurableResource):
    """segpair/viruses.toml, or the registry file SEGPAIR_VIRUS_REGISTRY names."""

    path: str | None = Field(default=None, description="registry TOML; unset: the packaged one")

    def registry(self) -> VirusRegistry:
        return load_registry(self.path)

    def get(self, virus: str) -> VirusSpec:
        return self.registry().get(virus)
