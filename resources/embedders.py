"""Compute device and embedder resources. Models load lazily, at the first embedding."""

from __future__ import annotations

from typing import Literal

import dagster as dg
from pydantic import Field

from segpair.embeddings.base import Embedder
from segpair.embeddings.catalog import CATALOG, EmbedderSpec
from segpair.embeddings.device import resolve_device


class ComputeDevice(dg.ConfigurableResource):
    """Where language models and classifier training run: 'auto' takes CUDA when a GPU is
    visible, else the CPU. Precision 'auto' is bf16 on GPUs (fp16 where bf16 is
    unsupported) and fp32 on CPU; training always runs in fp32."""

    device: str = Field(default="auto", description="auto, cpu, cuda or cuda:N")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    toks_per_batch: int | None = Field(
        default=None,
        description="token budget per batch of length-sorted sequences; unset: 1024 on CPU, "
        "16384 on GPU",
    )
    cpu_workers: int | None = Field(
        default=None,
        ge=1,
        description="on a CPU, batches embedded side by side, each on one torch thread; "
        "unset: one per torch thread (measured fastest, BENCHMARKS.md)",
    )

    def torch_device(self) -> str:
        """The device 'auto' resolves to here, as torch names it ('cpu', 'cuda')."""
        return str(resolve_device(self.device))


class LanguageModelOptions(dg.Config):
    """One language model's settings; unset fields keep the catalog's values."""

    model: str | None = Field(
        default=None,
        description="hub id (e.g. facebook/esm2_t33_650M_UR50D) or local directory; unset: "
        "the catalog's default hub id",
    )
    pooling: Literal["mean", "max", "cls", "attention"] = Field(
        default="mean",
        description="over residue tokens: mean, max, the CLS token, or attention (each "
        "residue weighted by the attention it receives in the pooled layer)",
    )
    layer: str = Field(default="last", description="last, second_last, or a layer index")
    max_length: int | None = Field(
        default=None, description="residues (ESM) or 6-mer tokens (Nucleotide Transformer)"
    )
    trust_remote_code: bool | None = None
    revision: str | None = None
    packing: Literal["auto", "packed", "padded"] = Field(
        default="auto",
        description="auto: unpadded (packed) batches where the model is laid out as "
        "transformers' ESM classes and a load-time probe agrees with the padded forward, "
        "else padded; packed: required; padded: the Hugging Face forward",
    )
    compile_encoder: bool = Field(
        default=False,
        description="torch.compile the packed layers (falls back to eager if the compile "
        "fails); measured no faster on CPU, see BENCHMARKS.md before turning it on",
    )


class Embedders(dg.ConfigurableResource):
    """Every embedder of the catalog (`segpair.embeddings.catalog`). Weight-free featurizers
    are built as the catalog defines them; language models take their weights from
    `language_models[name].model`."""

    language_models: dict[str, LanguageModelOptions] = Field(
        default_factory=dict,
        description="Per language model (esm2, fastesm2, nucleotide_transformer): weights "
        "(hub id or local directory), pooling, layer, max_length, revision.",
    )

    def build(
        self, spec: EmbedderSpec, device: ComputeDevice, device_name: str | None = None
    ) -> Embedder:
        """The embedder of `spec`; `device_name` overrides the device resource's (a shard's
        own GPU)."""
        if not spec.needs_weights:
            return spec.build()
        options = self.language_models.get(spec.name) or LanguageModelOptions()
        layer: str | int = options.layer
        if isinstance(layer, str) and layer.lstrip("-").isdigit():
            layer = int(layer)
        return spec.build(
            model=options.model,
            pooling=options.pooling,
            layer=layer,
            max_length=options.max_length,
            trust_remote_code=options.trust_remote_code,
            revision=options.revision,
            packing=options.packing,
            compile_encoder=options.compile_encoder,
            device=device_name or device.device,
            precision=device.precision,
            toks_per_batch=device.toks_per_batch,
            cpu_workers=device.cpu_workers,
        )

    def model_of(self, spec: EmbedderSpec) -> str | None:
        options = self.language_models.get(spec.name)
        return (options.model if options else None) or spec.default_model


def embedders_for(models: dict[str, str], catalog=CATALOG) -> Embedders:
    """The resource with each named language model's weights (`name -> hub id or dir`)."""
    unknown = sorted(set(models) - {s.name for s in catalog.language_models()})
    if unknown:
        raise ValueError(f"{unknown} are not language models of the catalog")
    return Embedders(
        language_models={name: LanguageModelOptions(model=m) for name, m in models.items()}
    )
