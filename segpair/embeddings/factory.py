"""Rebuild an embedder from the description stored with its vectors (cache attrs, checkpoints).

Scoring new proteins must embed them exactly as the model's training data was embedded.
The description an embedder gives (`describe()`) is stored in the cache attrs and in the
checkpoint; this module turns it back into an embedder. Whether the result really is the
same is decided by comparing signatures, not trusted here.
"""

from __future__ import annotations

from segpair.embeddings.base import Embedder
from segpair.embeddings.kmer import ALPHABETS, KmerEmbedder
from segpair.embeddings.language_models import LanguageModelEmbedder

# Cache attrs that describe the file, not the embedder.
_FILE_ATTRS = {"embedder", "signature", "storage_precision", "library_versions", "created_at",
               "content_id", "n_rows"}  # fmt: skip
# Families whose hub code is remote (FastESM2, the Nucleotide Transformer v2).
_REMOTE_CODE_FAMILIES = {"fastesm2", "nucleotide_transformer"}
_PRECISION_OF_DTYPE = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def description_from_attrs(attrs: dict) -> dict:
    return {k: v for k, v in attrs.items() if k not in _FILE_ATTRS}


def embedder_from_description(
    name: str,
    description: dict,
    model: str | None = None,
    device: str = "auto",
    toks_per_batch: int | None = None,
) -> Embedder:
    """The embedder a description names. `model` replaces the stored hub id or path (weights
    moved to another folder); the precision stays the stored one, so vectors match."""
    family = description.get("family")
    if family == "kmer":
        alphabet = next(
            (kind for kind, letters in ALPHABETS.items() if letters == description["alphabet"]),
            None,
        )
        if alphabet is None:
            raise ValueError(f"unknown k-mer alphabet {description['alphabet']!r} in {name}")
        return KmerEmbedder(name, alphabet, int(description["k"]), description["normalize"])
    if family in ("esm2", "fastesm2", "nucleotide_transformer"):
        layer = description.get("layer", "last")
        if isinstance(layer, str) and layer.lstrip("-").isdigit():
            layer = int(layer)
        return LanguageModelEmbedder(
            name,
            family,
            model or description["model_name"],
            pooling=description.get("pooling", "mean"),
            layer=layer,
            max_length=int(description.get("max_length", 1022)),
            device=device,
            precision=_PRECISION_OF_DTYPE.get(description.get("precision"), "auto"),
            toks_per_batch=toks_per_batch,
            trust_remote_code=family in _REMOTE_CODE_FAMILIES,
            revision=description.get("revision"),
        )
    if family == "merged":
        if model is not None:
            raise ValueError(
                f"{name} merges several embedders, so one weights location cannot say whose "
                "weights moved: put each language model's weights where its cache's "
                "description says (model_name), or re-materialize the merged cache"
            )
        # imported here: merged embedders rebuild their sources through this function
        from segpair.embeddings.merged import merged_embedder_from_description

        return merged_embedder_from_description(
            name, description,
            lambda source, desc: embedder_from_description(source, desc, None, device,
                                                           toks_per_batch),
        )  # fmt: skip
    raise ValueError(
        f"cannot rebuild embedder {name!r}: unknown family {family!r} in its description "
        f"{description}"
    )
