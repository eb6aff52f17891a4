"""Protein and DNA language models through `transformers`: ESM-2, FastESM2, Nucleotide
Transformer.

One path for all three, as users load them: a hub id or a local directory,
`AutoTokenizer` + the model class for the family, SDPA attention where the model
supports it. Sequences are length-sorted into token-budget batches
(`toks_per_batch`: by default 1024 tokens on CPU, where small batches stay in cache,
and 16384 on GPU); vectors come back in input order. Pooling over residue tokens
only (padding and special tokens masked): mean, max, or the CLS token. Layer:
'last', 'second_last', or an index into the hidden states (0 = embeddings).

On CUDA out-of-memory a batch is halved and retried; a single sequence that still
does not fit is reported as failed with the reason, never dropped silently.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import numpy as np

from segpair.embeddings.base import EmbedOutput, InputKind
from segpair.embeddings.batching import token_budget_batches
from segpair.embeddings.device import (
    Precision,
    default_toks_per_batch,
    resolve_device,
    resolve_dtype,
)

Family = Literal["esm2", "fastesm2", "nucleotide_transformer"]
Pooling = Literal["mean", "max", "cls"]
NT_KMER = 6  # Nucleotide Transformer tokens are 6-mers


def _weights_identity(model: str) -> str:
    """For a local directory, a hash of its config and weight file sizes; else the hub id."""
    path = Path(model).expanduser()
    if not path.is_dir():
        return model
    h = hashlib.sha256()
    for f in sorted(path.iterdir()):
        if f.name == "config.json":
            h.update(f.read_bytes())
        elif f.suffix in (".safetensors", ".bin", ".pt"):
            h.update(f"{f.name}:{f.stat().st_size}".encode())
    return f"local:{h.hexdigest()[:16]}"


class LanguageModelEmbedder:
    def __init__(
        self,
        name: str,
        family: Family,
        model: str,
        pooling: Pooling = "mean",
        layer: str | int = "last",
        max_length: int = 1022,
        device: str = "auto",
        precision: Precision = "auto",
        toks_per_batch: int | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
    ):
        self.name, self.family, self.model_id = name, family, model
        self.pooling, self.layer, self.max_length = pooling, layer, max_length
        self.device_name, self.precision = device, precision
        self.toks_per_batch, self.trust_remote_code, self.revision = (
            toks_per_batch,
            trust_remote_code,
            revision,
        )
        self.input_kind: InputKind = (
            "nucleotide" if family == "nucleotide_transformer" else "protein"
        )
        self._model = None
        self._tokenizer = None

    # ------------------------------------------------------------ loading

    def load(self) -> None:
        if self._model is not None:
            return
        import torch  # noqa: F401  (fail early with torch's own message if missing)
        from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

        self.device = resolve_device(self.device_name)
        self.dtype = resolve_dtype(self.device, self.precision)
        if self.toks_per_batch is None:
            self.toks_per_batch = default_toks_per_batch(self.device)
        common = {"trust_remote_code": self.trust_remote_code, "revision": self.revision}
        from transformers.utils import logging as hf_logging

        # ESM-2 releases are masked-LM checkpoints: loading the encoder alone reports the
        # unused LM head as "unexpected" keys, which is expected here.
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            self._load(common, AutoModel, AutoModelForMaskedLM, AutoTokenizer)
        finally:
            hf_logging.set_verbosity(verbosity)

    def _load(self, common, AutoModel, AutoModelForMaskedLM, AutoTokenizer) -> None:  # noqa: N803
        self._tokenizer = AutoTokenizer.from_pretrained(self.model_id, **common)
        kwargs = {**common, "dtype": self.dtype}
        if self.family == "nucleotide_transformer":
            cls = AutoModelForMaskedLM
        else:
            cls = AutoModel
            if self.family == "esm2":
                kwargs["add_pooling_layer"] = False  # the pooler is untrained; we pool ourselves
        try:
            model = cls.from_pretrained(self.model_id, attn_implementation="sdpa", **kwargs)
            self.attn_implementation = "sdpa"
        except (ValueError, TypeError, ImportError):
            # Remote-code models that do not accept the argument use their own attention.
            model = cls.from_pretrained(self.model_id, **kwargs)
            self.attn_implementation = getattr(model.config, "_attn_implementation", "default")
        self._model = model.to(self.device).eval()

    @property
    def dim(self) -> int:
        self.load()
        return int(self._model.config.hidden_size)

    def describe(self) -> dict:
        self.load()
        cfg = self._model.config
        return {
            "family": self.family,
            "model_name": self.model_id,
            "weights": _weights_identity(self.model_id),
            "revision": self.revision or getattr(cfg, "_commit_hash", None),
            "pooling": self.pooling,
            "layer": self.layer,
            "max_length": self.max_length,
            "precision": str(self.dtype).removeprefix("torch."),
            "dim": int(cfg.hidden_size),
            "num_layers": int(cfg.num_hidden_layers),
        }

    # ------------------------------------------------------------ embedding

    def _prepare(self, seq: str) -> tuple[str, bool]:
        """(model input text, whether it was truncated)."""
        if self.input_kind == "nucleotide":
            limit = self.max_length * NT_KMER
            return seq[:limit], len(seq) > limit
        return seq[: self.max_length], len(seq) > self.max_length

    def _hidden(self, enc) -> object:
        out = self._model(
            input_ids=enc["input_ids"],
            attention_mask=enc["attention_mask"],
            output_hidden_states=self.layer != "last" or self.family == "nucleotide_transformer",
        )
        if self.layer == "last":
            if self.family == "nucleotide_transformer":
                return out.hidden_states[-1]
            return out.last_hidden_state
        if self.layer == "second_last":
            return out.hidden_states[-2]
        return out.hidden_states[int(self.layer)]

    def _pool(self, hidden, residue_mask):
        import torch

        h = hidden.float()
        if self.pooling == "cls":
            return h[:, 0]
        mask = residue_mask.unsqueeze(-1)
        if self.pooling == "mean":
            return (h * mask).sum(1) / mask.sum(1).clamp(min=1)
        return h.masked_fill(~mask.bool(), torch.finfo(h.dtype).min).max(1).values

    def _embed_batch(self, texts: list[str]):
        import torch

        enc = self._tokenizer(
            texts, padding=True, return_tensors="pt", return_special_tokens_mask=True
        )
        residue_mask = (enc["attention_mask"] == 1) & (enc["special_tokens_mask"] == 0)
        n_tokens = int(enc["attention_mask"].sum())  # on the host: no device sync
        # Page-locked host memory lets the copies run asynchronously on CUDA.
        pin = self.device.type == "cuda"
        enc = {
            k: (v.pin_memory() if pin else v).to(self.device, non_blocking=pin)
            for k, v in enc.items()
            if k != "special_tokens_mask"
        }
        residue_mask = (residue_mask.pin_memory() if pin else residue_mask).to(
            self.device, non_blocking=pin
        )
        with torch.inference_mode():
            pooled = self._pool(self._hidden(enc), residue_mask)
        return pooled.cpu().numpy(), n_tokens

    def _run(self, idx: list[int], texts: list[str], out: np.ndarray, failed: dict) -> int:
        import torch

        try:
            vecs, tokens = self._embed_batch([texts[i] for i in idx])
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            if len(idx) == 1:
                failed[idx[0]] = f"CUDA out of memory at {len(texts[idx[0]])} residues"
                return 0
            half = len(idx) // 2
            return self._run(idx[:half], texts, out, failed) + self._run(
                idx[half:], texts, out, failed
            )
        except (ValueError, RuntimeError, IndexError) as exc:
            if len(idx) == 1:
                failed[idx[0]] = f"{type(exc).__name__}: {exc}"[:300]
                return 0
            return sum(self._run([i], texts, out, failed) for i in idx)
        out[idx] = vecs
        return tokens

    def embed(self, sequences: list[str]) -> EmbedOutput:
        self.load()
        prepared = [self._prepare(s) for s in sequences]
        texts = [p[0] for p in prepared]
        failed = {i: f"no {self.input_kind} sequence" for i, t in enumerate(texts) if not t}
        todo = [i for i in range(len(texts)) if i not in failed]
        tok_len = [
            len(texts[i]) // (NT_KMER if self.input_kind == "nucleotide" else 1) for i in todo
        ]
        out = np.full((len(texts), self.dim), np.nan, dtype=np.float32)
        tokens = 0
        for batch in token_budget_batches(tok_len, self.toks_per_batch):
            tokens += self._run([todo[j] for j in batch], texts, out, failed)
        ok = [i for i in range(len(texts)) if i not in failed]
        return EmbedOutput(
            out[ok], ok, failed, truncated=sum(t for _, t in prepared), tokens=tokens
        )
