"""The embedders segpair offers, in one place: what each is, what it needs, and what
everything built from it is called.

Adding an embedder is one `EmbedderSpec` in `CATALOG` plus its featurizer class (any
class with the `Embedder` protocol of `segpair.embeddings.base`). The Dagster code
location builds one master cache, one classifier, one diagnostics and one scoring asset
per entry from the names derived here, so no other module spells them.

A merged entry (`merged_spec`) has no featurizer: its cache puts other entries' cached
vectors side by side (`segpair.embeddings.merged`), and everything after the cache treats
it like any other embedder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from segpair.embeddings.base import Embedder
from segpair.embeddings.features import BlockNorm, FeatureSource
from segpair.embeddings.kmer import KmerEmbedder
from segpair.embeddings.language_models import LanguageModelEmbedder
from segpair.embeddings.merged import merged_input_kind


@dataclass(frozen=True)
class EmbedderSpec:
    """One embedder. `params` are the featurizer's own constructor arguments; a spec with a
    `default_model` needs weights (a hub id or a local directory) and runs as a language
    model: sharded, on the GPU queue, outside the main job. A merged spec (`sources`, see
    `merged_spec`) has no featurizer; `in_main_job=False` keeps a weight-free entry out
    of the main job (it runs in segpair_opt_in_job)."""

    name: str
    description: str
    input_kind: str  # "protein", "nucleotide", or joined for a merged entry
    featurizer: Callable[..., Embedder] | None = None
    params: Mapping[str, object] = field(default_factory=dict)
    default_model: str | None = None
    # Where users point at their weights without touching the launchpad.
    model_env_var: str | None = None
    # A merged entry: these catalog entries' caches side by side, each of this dimension.
    sources: tuple[FeatureSource, ...] = ()
    # The sources that need weights (a merged entry has none of its own).
    sources_needing_weights: tuple[str, ...] = ()
    in_main_job: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    @property
    def needs_weights(self) -> bool:
        return self.default_model is not None or bool(self.sources_needing_weights)

    @property
    def is_merged(self) -> bool:
        return bool(self.sources)

    @property
    def block_norm(self) -> BlockNorm:
        return self.params.get("block_norm", "l2")

    @property
    def cache_asset(self) -> str:
        return f"master_embeddings_{self.name}"

    @property
    def classifier_asset(self) -> str:
        return f"pair_classifier_{self.name}"

    @property
    def scores_asset(self) -> str:
        return f"isolate_pair_scores_{self.name}"

    @property
    def diagnostics_asset(self) -> str:
        return f"embedding_diagnostics_{self.name}"

    @property
    def evaluation_asset(self) -> str:
        return f"cross_version_evaluation_{self.name}"

    @property
    def map_asset(self) -> str:
        return f"embedding_map_{self.name}"

    @property
    def vector_table_asset(self) -> str:
        return f"vector_table_{self.name}"

    def build(self, model: str | None = None, **options) -> Embedder:
        """The featurizer. Language models take `model` (default: the catalog's) and the
        device options (`device`, `precision`, `toks_per_batch`); `options` override
        `params` (e.g. pooling, layer, revision)."""
        if self.is_merged:
            raise TypeError(
                f"{self.name} merges the caches of {[s.embedder for s in self.sources]}: it has "
                "no featurizer of its own. Its cache is built from theirs "
                "(segpair.embeddings.merged.prepare_merged_cache); new proteins are embedded by "
                "the MergedEmbedder rebuilt from a model's description (segpair score)"
            )
        kwargs = {**self.params, **{k: v for k, v in options.items() if v is not None}}
        if self.needs_weights:
            return self.featurizer(self.name, model=model or self.default_model, **kwargs)
        return self.featurizer(self.name, **kwargs)


class EmbedderCatalog:
    """The specs by name, in a stable order (k-mers first: they run everywhere)."""

    def __init__(self, specs: Iterable[EmbedderSpec], default: str):
        self._specs = {s.name: s for s in specs}
        if default not in self._specs or self._specs[default].needs_weights:
            raise ValueError(f"default embedder {default!r} must be a weight-free catalog entry")
        self.default = default
        for spec in self._specs.values():
            for src in spec.sources:
                if src.embedder not in self._specs or self._specs[src.embedder].is_merged:
                    raise ValueError(
                        f"merged embedder {spec.name!r}: source {src.embedder!r} must be an "
                        f"unmerged entry of the catalog ({self.names})"
                    )

    def __iter__(self):
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, name: str) -> bool:
        return name in self._specs

    @property
    def names(self) -> list[str]:
        return list(self._specs)

    def get(self, name: str) -> EmbedderSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise KeyError(f"unknown embedder {name!r}; the catalog has {self.names}") from None

    def weight_free(self) -> list[EmbedderSpec]:
        return [s for s in self if not s.needs_weights]

    def language_models(self) -> list[EmbedderSpec]:
        """The entries with weights of their own (a merged one reads its sources' caches)."""
        return [s for s in self if s.default_model is not None]

    def in_main_job(self) -> list[EmbedderSpec]:
        return [s for s in self if not s.needs_weights and s.in_main_job]

    def with_spec(self, spec: EmbedderSpec) -> EmbedderCatalog:
        """A copy with one more (or a replaced) entry: how a plugin or a test adds one."""
        return EmbedderCatalog([*[s for s in self if s.name != spec.name], spec], self.default)


def merged_spec(
    name: str,
    description: str,
    sources: Sequence[tuple[EmbedderSpec, int]],
    block_norm: BlockNorm = "l2",
    in_main_job: bool = True,
) -> EmbedderSpec:
    """A catalog entry whose vectors are the `sources`' cached vectors side by side, in
    order; each source must hold the dimension given with it (FeatureDimensionError
    otherwise), and each block is normalised by `block_norm` (features.py says why)."""
    return EmbedderSpec(
        name,
        description,
        merged_input_kind([spec.input_kind for spec, _ in sources]),
        params={"block_norm": block_norm},
        sources=tuple(FeatureSource(spec.name, dim) for spec, dim in sources),
        sources_needing_weights=tuple(spec.name for spec, _ in sources if spec.needs_weights),
        in_main_job=in_main_job,
    )


KMER_AA3 = EmbedderSpec(
    "kmer_aa3",
    "amino-acid 3-mer counts, L2-normalised (8000 dims)",
    "protein",
    KmerEmbedder,
    {"alphabet": "protein", "k": 3},
)
KMER_NT6 = EmbedderSpec(
    "kmer_nt6",
    "nucleotide 6-mer counts of the coding sequence, L2-normalised (4096 dims)",
    "nucleotide",
    KmerEmbedder,
    {"alphabet": "nucleotide", "k": 6},
)
ESM2 = EmbedderSpec(
    "esm2",
    "ESM-2 protein language model, mean-pooled last layer",
    "protein",
    LanguageModelEmbedder,
    {"family": "esm2", "max_length": 1022, "trust_remote_code": False},
    default_model="facebook/esm2_t33_650M_UR50D",
    model_env_var="SEGPAIR_ESM2_MODEL",
)
FASTESM2 = EmbedderSpec(
    "fastesm2",
    "FastESM2 (ESM-2 with SDPA, remote code), mean-pooled last layer",
    "protein",
    LanguageModelEmbedder,
    {"family": "fastesm2", "max_length": 1022, "trust_remote_code": True},
    default_model="Synthyra/FastESM2_650",
    model_env_var="SEGPAIR_FASTESM2_MODEL",
)
NUCLEOTIDE_TRANSFORMER = EmbedderSpec(
    "nucleotide_transformer",
    "Nucleotide Transformer on the coding sequence, masked mean of the last layer",
    "nucleotide",
    LanguageModelEmbedder,
    # max_length in 6-mer tokens
    {"family": "nucleotide_transformer", "max_length": 1000, "trust_remote_code": True},
    default_model="InstaDeepAI/nucleotide-transformer-v2-50m-multi-species",
    model_env_var="SEGPAIR_NT_MODEL",
)

CATALOG = EmbedderCatalog(
    [
        KMER_AA3,
        KMER_NT6,
        ESM2,
        FASTESM2,
        NUCLEOTIDE_TRANSFORMER,
        # Out of the main job: its classifier, diagnostics and scoring would add about a
        # minute per virus to the demo (BENCHMARKS.md); segpair_opt_in_job runs it.
        merged_spec(
            "kmer_nt6_aa3",
            "nucleotide 6-mers and amino-acid 3-mers side by side, each block L2-normalised "
            "(4096 + 8000 dims)",
            [(KMER_NT6, 4096), (KMER_AA3, 8000)],
            in_main_job=False,
        ),
        # The default models' dimensions; seed 004's DNA model had 768.
        merged_spec(
            "nt_esm2",
            "Nucleotide Transformer and ESM-2 side by side, each block L2-normalised "
            "(512 + 1280 dims with the default models)",
            [(NUCLEOTIDE_TRANSFORMER, 512), (ESM2, 1280)],
        ),
    ],
    # runs on every input (protein-level), no weights
    default="kmer_aa3",
)
