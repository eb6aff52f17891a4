"""Compute device and embedder resources. Models load lazily, at the first embedding."""

from __future__ import annotations

from typing import Literal

import dagster as dg
from pydantic import Field

from segpair.embeddings.kmer import KmerEmbedder
from segpair.embeddings.language_models import LanguageModelEmbedder


class ComputeDevice(dg.ConfigurableResource):
    """Where language models run: 'auto' takes CUDA when a GPU is visible, else the CPU.
    Precision 'auto' is bf16 on GPUs (fp16 where bf16 is unsupported) and fp32 on CPU."""

    device: str = Field(default="auto", description="auto, cpu, cuda or cuda:N")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    toks_per_batch: int | None = Field(
        default=None,
        description="token budget per batch of length-sorted sequences; unset: 1024 on CPU, "
        "16384 on GPU",
    )


class KmerEmbedderResource(dg.ConfigurableResource):
    """k-mer count vectors (no weights needed)."""

    alphabet: Literal["protein", "nucleotide"] = "protein"
    k: int = Field(default=3, ge=1)
    normalize: Literal["l2", "none"] = "l2"

    def build(
        self, name: str, device: ComputeDevice, device_name: str | None = None
    ) -> KmerEmbedder:
        return KmerEmbedder(name, self.alphabet, self.k, self.normalize)


class LanguageModelEmbedderResource(dg.ConfigurableResource):
    """A protein or DNA language model from a hub id or a local directory."""

    family: Literal["esm2", "fastesm2", "nucleotide_transformer"]
    model: str = Field(description="hub id (e.g. facebook/esm2_t33_650M_UR50D) or local path")
    pooling: Literal["mean", "max", "cls"] = "mean"
    layer: str = Field(default="last", description="last, second_last, or a layer index")
    max_length: int = Field(
        default=1022, description="residues (ESM) or 6-mer tokens (Nucleotide Transformer)"
    )
    trust_remote_code: bool = False
    revision: str | None = None

    def build(
        self, name: str, device: ComputeDevice, device_name: str | None = None
    ) -> LanguageModelEmbedder:
        """`device_name` overrides the device resource's (a shard's own GPU)."""
        layer: str | int = int(self.layer) if self.layer.lstrip("-").isdigit() else self.layer
        return LanguageModelEmbedder(
            name,
            self.family,
            self.model,
            pooling=self.pooling,
            layer=layer,
            max_length=self.max_length,
            device=device_name or device.device,
            precision=device.precision,
            toks_per_batch=device.toks_per_batch,
            trust_remote_code=self.trust_remote_code,
            revision=self.revision,
        )
