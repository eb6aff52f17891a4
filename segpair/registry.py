"""The virus registry: segments, proteins and simulation presets, read from TOML.

The registry is data. `viruses.toml` beside this module is the default; a TOML file of
the same shape adds or replaces viruses (the Dagster code location and the CLI take
its path from SEGPAIR_VIRUS_REGISTRY, see `segpair_assets.settings`).
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from pathlib import Path

from pydantic import BaseModel, Field, model_validator

DEFAULT_REGISTRY_PATH = Path(__file__).with_name("viruses.toml")


class ProteinSpec(BaseModel):
    name: str
    expected_length: int = Field(gt=0)
    primary: bool = True
    product_patterns: list[str] = Field(default_factory=list)

    def matches(self, text: str) -> bool:
        return any(re.search(p, text, flags=re.IGNORECASE) for p in self.product_patterns)


class SegmentSpec(BaseModel):
    name: str
    number: str
    relative_rate: float = 1.0
    founder_divergence: float = 0.05
    ambisense: bool = False
    proteins: list[ProteinSpec]

    @property
    def primary_proteins(self) -> list[ProteinSpec]:
        return [p for p in self.proteins if p.primary]


class LineageSpec(BaseModel):
    name: str
    labels: dict[str, str]
    host: str
    share: float = Field(gt=0)


class SimulationPreset(BaseModel):
    lineages: list[LineageSpec]
    reassortment_rate: float = 0.05
    missing_segment_rate: float = 0.0
    subtype_segments: list[str] = Field(default_factory=list)


class VirusSpec(BaseModel):
    name: str
    display_name: str
    organism_patterns: list[str] = Field(default_factory=list)
    demo_data_version: str = "simulated_v1"
    training_schema_pairs: list[list[str]] = Field(default_factory=list)
    # Run-config preset of this virus's job: asset name -> config fields ("pair_classifier"
    # applies to every pair_classifier_* asset). Merged over what the registry implies.
    run_config: dict[str, dict] = Field(default_factory=dict)
    simulation: SimulationPreset
    segments: list[SegmentSpec]

    @model_validator(mode="after")
    def _names_unique(self) -> VirusSpec:
        seg_names = [s.name for s in self.segments]
        prot_names = [p.name for s in self.segments for p in s.proteins]
        for kind, names in (("segment", seg_names), ("protein", prot_names)):
            dupes = {n for n in names if names.count(n) > 1}
            if dupes:
                raise ValueError(f"virus {self.name!r}: duplicate {kind} names {sorted(dupes)}")
        for seg in self.simulation.subtype_segments:
            if seg not in seg_names:
                raise ValueError(f"virus {self.name!r}: subtype segment {seg!r} is not a segment")
        return self

    @property
    def segment_names(self) -> list[str]:
        return [s.name for s in self.segments]

    def segment(self, name: str) -> SegmentSpec:
        for seg in self.segments:
            if seg.name == name:
                return seg
        raise KeyError(f"virus {self.name!r} has no segment {name!r}; known: {self.segment_names}")

    def protein_names(self, primary_only: bool = False) -> list[str]:
        return [p.name for s in self.segments for p in s.proteins if p.primary or not primary_only]

    def segment_of_protein(self, protein: str) -> str:
        for seg in self.segments:
            if any(p.name == protein for p in seg.proteins):
                return seg.name
        raise KeyError(f"virus {self.name!r} has no protein {protein!r}")

    def resolve_segment(self, token: str) -> str | None:
        """Segment name for a header token: a number ('4'), a name ('HA', 'S'), any case."""
        t = token.strip().upper()
        for seg in self.segments:
            if t in (seg.name.upper(), seg.number.upper()):
                return seg.name
        return None

    def match_product(self, text: str) -> tuple[str, str] | None:
        """(segment, protein) whose product patterns match an annotation, or None.

        Non-primary proteins are tried first because their names contain the
        primary ones ('PB1-F2 protein' must not be read as PB1).
        """
        ordered = [(s, p) for s in self.segments for p in s.proteins if not p.primary]
        ordered += [(s, p) for s in self.segments for p in s.proteins if p.primary]
        for seg, prot in ordered:
            if prot.matches(text):
                return seg.name, prot.name
        return None


class VirusRegistry(BaseModel):
    viruses: dict[str, VirusSpec]

    def get(self, name: str) -> VirusSpec:
        if name not in self.viruses:
            raise KeyError(
                f"unknown virus {name!r}; the registry knows {sorted(self.viruses)}. "
                f"Add an entry to {DEFAULT_REGISTRY_PATH.name} or to the registry file that "
                "SEGPAIR_VIRUS_REGISTRY names."
            )
        return self.viruses[name]

    @property
    def names(self) -> list[str]:
        return list(self.viruses)


def parse_registry(text: str) -> VirusRegistry:
    raw = tomllib.loads(text)
    return VirusRegistry(viruses={k: VirusSpec(name=k, **v) for k, v in raw.items()})


@functools.cache
def _load(path: str) -> VirusRegistry:
    return parse_registry(Path(path).read_text())


def load_registry(path: str | os.PathLike | None = None) -> VirusRegistry:
    """The registry at `path`, else the packaged default."""
    chosen = path or DEFAULT_REGISTRY_PATH
    return _load(str(Path(chosen).resolve()))
