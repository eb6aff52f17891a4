"""The virus registry: segments, proteins and simulation presets, read from TOML.

The registry is data. `viruses.toml` beside this module is the default; a TOML file of
the same shape adds or replaces viruses (the Dagster code location and the CLI take
its path from SEGPAIR_VIRUS_REGISTRY, see `segpair_assets.settings`). A virus's
`simulation` section is optional: without it the virus has no demo data version and
takes real data only. A malformed registry is a `RegistryError`: one line naming the
file, the virus and the field, and pointing to the documented default.
"""

from __future__ import annotations

import functools
import os
import re
import reprlib
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from segpair.errors import InputDataError

DEFAULT_REGISTRY_PATH = Path(__file__).with_name("viruses.toml")
_SEE_EXAMPLE = f"see the documented entries in {DEFAULT_REGISTRY_PATH}"


class RegistryError(InputDataError):
    """A registry file that cannot be read: names the file, the virus and the field."""


class _Entry(BaseModel):
    """A registry table: unknown keys (a typo such as `segmnts`) are refused."""

    model_config = ConfigDict(extra="forbid")


class ProteinSpec(_Entry):
    name: str
    expected_length: int = Field(gt=0)
    primary: bool = True
    product_patterns: list[str] = Field(default_factory=list)

    def matches(self, text: str) -> bool:
        return any(re.search(p, text, flags=re.IGNORECASE) for p in self.product_patterns)


class SegmentSpec(_Entry):
    name: str
    number: str
    relative_rate: float = 1.0
    founder_divergence: float = 0.05
    ambisense: bool = False
    proteins: list[ProteinSpec]

    @property
    def primary_proteins(self) -> list[ProteinSpec]:
        return [p for p in self.proteins if p.primary]


class LineageSpec(_Entry):
    name: str
    labels: dict[str, str]
    host: str
    share: float = Field(gt=0)


class SimulationPreset(_Entry):
    lineages: list[LineageSpec]
    reassortment_rate: float = 0.05
    missing_segment_rate: float = 0.0
    subtype_segments: list[str] = Field(default_factory=list)


class VirusSpec(_Entry):
    name: str
    display_name: str
    organism_patterns: list[str] = Field(default_factory=list)
    # the SIMULATED data version written on first use; only with a simulation section
    demo_data_version: str | None = None
    training_schema_pairs: list[list[str]] = Field(default_factory=list)
    # Run-config preset of this virus's job: asset name -> config fields ("pair_classifier"
    # applies to every pair_classifier_* asset). Merged over what the registry implies.
    run_config: dict[str, dict] = Field(default_factory=dict)
    # None: no simulator preset, so no demo data; the virus takes real data only
    simulation: SimulationPreset | None = None
    segments: list[SegmentSpec]

    @model_validator(mode="after")
    def _names_unique(self) -> VirusSpec:
        seg_names = [s.name for s in self.segments]
        prot_names = [p.name for s in self.segments for p in s.proteins]
        for kind, names in (("segment", seg_names), ("protein", prot_names)):
            dupes = {n for n in names if names.count(n) > 1}
            if dupes:
                raise ValueError(f"duplicate {kind} names {sorted(dupes)}")
        return self._demo_checked(seg_names)

    def _demo_checked(self, seg_names: list[str]) -> VirusSpec:
        if self.simulation is None:
            if self.demo_data_version is not None:
                raise ValueError(
                    "demo_data_version is set but there is no simulation section to write "
                    f"it from; remove it or add [{self.name}.simulation]"
                )
            return self
        self.demo_data_version = self.demo_data_version or "simulated_v1"
        for seg in self.simulation.subtype_segments:
            if seg not in seg_names:
                raise ValueError(f"subtype segment {seg!r} is not a segment")
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


# registry tables inside a virus: (what one item is called, its model)
_TABLES: dict[str, tuple[str | None, type[BaseModel]]] = {
    "segments": ("segment", SegmentSpec),
    "proteins": ("protein", ProteinSpec),
    "simulation": (None, SimulationPreset),
    "lineages": ("lineage", LineageSpec),
}


def _walk(loc: tuple, raw: dict) -> tuple[str, list[str], type[BaseModel]]:
    """A pydantic error location as `segments[2].proteins`, the named items it passes
    (segment '3'), and the model of the table it ends in."""
    parts: list[str] = []
    named: list[str] = []
    model: type[BaseModel] = VirusSpec
    node, kind = raw, None
    for key in loc:
        if isinstance(node, dict):
            node = node.get(key)
        else:
            ok = isinstance(node, list) and isinstance(key, int) and key < len(node)
            node = node[key] if ok else None
        if isinstance(key, int) and parts:
            parts[-1] += f"[{key}]"
            if kind and isinstance(node, dict) and "name" in node:
                named.append(f"{kind} {node['name']!r}")
        else:
            parts.append(str(key))
            kind, model = _TABLES.get(str(key), (None, model))
    return ".".join(parts), named, model


def _describe(error: dict, raw: dict) -> str:
    path, named, _ = _walk(error["loc"], raw)
    field = f"`{path}`" + (f" ({', '.join(named)})" if named else "")
    if error["type"] == "missing":
        return f"{field} is missing"
    if error["type"] == "extra_forbidden":
        model = _walk(error["loc"][:-1], raw)[2]
        allowed = [f for f in model.model_fields if not (model is VirusSpec and f == "name")]
        return f"{field} is an unknown field (allowed: {', '.join(allowed)})"
    msg = error["msg"].removeprefix("Value error, ")
    if not path:
        return msg
    return f"{field}: {msg} (got {reprlib.repr(error['input'])})"


def _virus_spec(name: str, raw: object, source: str) -> VirusSpec:
    where = f"{source}, virus {name!r}"
    if not isinstance(raw, dict):
        raise RegistryError(
            where, f"is {raw!r}, not a table", f"give each virus a [{name}] table; {_SEE_EXAMPLE}"
        )
    if "name" in raw:
        raise RegistryError(
            where,
            "`name` is not a field: a virus is named by its table",
            f"remove `name`, or rename the table [{name}]",
        )
    try:
        return VirusSpec.model_validate({**raw, "name": name})
    except ValidationError as exc:
        errors = exc.errors()
        problems = "; ".join(_describe(e, raw) for e in errors).replace("\n", " ")
        fields = sorted({f"`{_walk(e['loc'], raw)[0]}`" for e in errors if e["loc"]})
        what = f"correct {', '.join(fields)}" if fields else "correct the entry"
        raise RegistryError(where, problems, f"{what}; {_SEE_EXAMPLE}") from None


def _toml_error(text: str, source: str, exc: tomllib.TOMLDecodeError) -> RegistryError:
    """The TOML syntax error with its line, the virus table it is in and the key there."""
    at = re.search(r"at line (\d+)", str(exc))
    lineno = int(at.group(1)) if at else 0
    lines = text.splitlines()[:lineno]
    headers = [re.match(r'\s*\[\[?\s*"?([\w-]+)', line) for line in lines]
    virus = next((m.group(1) for m in reversed(headers) if m), None)
    key = re.match(r"\s*([\w-]+)\s*=", lines[-1]) if lines else None
    return RegistryError(
        f"{source}:{lineno}, " + (f"virus {virus!r}" if virus else "before any [virus] table"),
        "not valid TOML" + (f" at `{key.group(1)}`" if key else "") + f": {exc}",
        f"fix the TOML syntax there (quotes, brackets, commas); {_SEE_EXAMPLE}",
    )


def parse_registry(text: str, source: str = "<registry text>") -> VirusRegistry:
    """The registry in a TOML text; `source` names it in errors (its file path)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(text, source, exc) from None
    return VirusRegistry(viruses={k: _virus_spec(k, v, source) for k, v in raw.items()})


@functools.cache
def _load(path: str) -> VirusRegistry:
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(
            path,
            f"cannot read the virus registry ({exc.__class__.__name__}: {exc})",
            "point SEGPAIR_VIRUS_REGISTRY at a registry TOML file, or unset it for the "
            f"packaged {DEFAULT_REGISTRY_PATH}",
        ) from None
    return parse_registry(text, source=path)


def load_registry(path: str | os.PathLike | None = None) -> VirusRegistry:
    """The registry at `path`, else the packaged default. A malformed file is a
    `RegistryError` naming the file, the virus and the field."""
    chosen = path or DEFAULT_REGISTRY_PATH
    return _load(str(Path(chosen).resolve()))
