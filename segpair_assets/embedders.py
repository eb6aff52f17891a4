"""The embedders segpair offers: one resource and one `master_embeddings_{name}` asset each.

k-mer embedders need no weights and run in the main job. Language models load weights
from a hub id or a local directory; set SEGPAIR_ESM2_MODEL, SEGPAIR_FASTESM2_MODEL or
SEGPAIR_NT_MODEL (or the resource's `model` in the launchpad) to point at yours. They
run in `segpair_language_model_job`, where weights are available.
"""

from __future__ import annotations

import os

from resources.embedders import KmerEmbedderResource, LanguageModelEmbedderResource

DEFAULT_EMBEDDER = "kmer_aa3"  # runs on every input (protein-level), no weights

KMER_EMBEDDERS = {
    "kmer_aa3": ("amino-acid 3-mer counts, L2-normalised (8000 dims)", "protein", 3),
    "kmer_nt6": ("nucleotide 6-mer counts of the coding sequence, L2-normalised (4096 dims)",
                 "nucleotide", 6),
}  # fmt: skip

LANGUAGE_MODELS = {
    "esm2": (
        "ESM-2 protein language model, mean-pooled last layer",
        "esm2",
        "SEGPAIR_ESM2_MODEL",
        "facebook/esm2_t33_650M_UR50D",
        False,
        1022,
    ),
    "fastesm2": (
        "FastESM2 (ESM-2 with SDPA, remote code), mean-pooled last layer",
        "fastesm2",
        "SEGPAIR_FASTESM2_MODEL",
        "Synthyra/FastESM2_650",
        True,
        1022,
    ),
    "nucleotide_transformer": (
        "Nucleotide Transformer on the coding sequence, masked mean of the last layer",
        "nucleotide_transformer",
        "SEGPAIR_NT_MODEL",
        "InstaDeepAI/nucleotide-transformer-v2-50m-multi-species",
        True,
        1000,
    ),
}


EMBEDDER_NAMES = [*KMER_EMBEDDERS, *LANGUAGE_MODELS]
# Assets that need model weights carry this tag: the main job leaves them out.
NEEDS_WEIGHTS_TAG = "segpair/needs_weights"


def needs_weights_tags(embedder: str) -> dict[str, str]:
    return {NEEDS_WEIGHTS_TAG: str(embedder not in KMER_EMBEDDERS).lower()}


def embedder_descriptions() -> dict[str, str]:
    return {
        **{name: spec[0] for name, spec in KMER_EMBEDDERS.items()},
        **{name: spec[0] for name, spec in LANGUAGE_MODELS.items()},
    }


def embedder_resources() -> dict[str, object]:
    """Resource key `embedder_{name}` -> its resource, with models from the environment."""
    out: dict[str, object] = {
        f"embedder_{name}": KmerEmbedderResource(alphabet=alphabet, k=k)
        for name, (_d, alphabet, k) in KMER_EMBEDDERS.items()
    }
    for name, (_d, family, env, default, remote, max_len) in LANGUAGE_MODELS.items():
        out[f"embedder_{name}"] = LanguageModelEmbedderResource(
            family=family,
            model=os.environ.get(env, default),
            trust_remote_code=remote,
            max_length=max_len,
        )
    return out
