"""Protein and DNA language models through `transformers`: ESM-2, FastESM2, Nucleotide
Transformer.

One path for all three, as users load them: a hub id or a local directory,
`AutoTokenizer` + the model class for the family, SDPA attention where the model
supports it. Sequences are length-sorted into token-budget batches
(`toks_per_batch`: by default 1024 tokens on CPU, where small batches stay in cache,
and 16384 on GPU); vectors come back in input order. Pooling over residue tokens
only (padding and special tokens masked): mean, max, the CLS token, or attention (each
residue weighted by the attention it receives in the pooled layer, averaged over heads
and residue queries). Layer: 'last', 'second_last', or an index into the hidden states
(0 = embeddings).

Engine (`packing`): where the model is laid out as transformers' ESM classes (ESM-2, the
Nucleotide Transformer), batches run packed, without padding (`segpair.embeddings.packed`),
once a probe at load time agrees with the padded Hugging Face forward; otherwise (FastESM2's
own code, a failed probe, `packing='padded'`) the padded forward runs. `runtime()` says
which, and why. On a CPU, batches run on `cpu_workers` threads of one torch thread each
(measured faster than one batch at a time on all cores, BENCHMARKS.md).

Nucleotide input is upper-cased and must be A, C, G, T or N: a sequence with any other
letter is reported failed and counted (`EmbedOutput.outside_alphabet`), never tokenized
into unknown tokens.

On CUDA out-of-memory a batch is halved and retried; a single sequence that still
does not fit is reported as failed with the reason, never dropped silently.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from segpair.embeddings.base import EmbedOutput, InputKind, row_cosines
from segpair.embeddings.batching import token_budget_batches
from segpair.embeddings.device import (
    Precision,
    default_cpu_workers,
    default_toks_per_batch,
    resolve_device,
    resolve_dtype,
)

Family = Literal["esm2", "fastesm2", "nucleotide_transformer"]
Pooling = Literal["mean", "max", "cls", "attention"]
Packing = Literal["auto", "packed", "padded"]
NT_KMER = 6  # Nucleotide Transformer tokens are 6-mers
NUCLEOTIDES = "ACGTN"
_OUTSIDE_NUCLEOTIDES = re.compile(f"[^{NUCLEOTIDES}]")
# Short inputs the load-time probe embeds both ways (packed and padded) to compare.
_PROBE = {
    "protein": ["MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ", "MSLLTEVETPIRNEWGCRCNDSSD", "MKV"],
    "nucleotide": ["ATGAAAGCAAGCCTACTGGTCCTGTTATGTGCACTTGCAGCT", "ATGCGTACGTTAGCNNGGCTAA"],
}


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


def _timing_batch(input_kind: str, toks_per_batch: int) -> list[str]:
    """Random sequences of influenza protein lengths (coding lengths for nucleotides)
    filling one token budget: what the load-time engine timing runs."""
    rng = np.random.default_rng(0)
    letters, per_residue = (list("ACGT"), 3) if input_kind == "nucleotide" else (
        list("ACDEFGHIKLMNPQRSTVWY"), 1)  # fmt: skip
    tokens_per_char = 1 / NT_KMER if input_kind == "nucleotide" else 1
    texts, used = [], 0
    for length in itertools.cycle([759, 90, 498, 252, 566, 121, 716, 230]):
        chars = length * per_residue
        cost = int(chars * tokens_per_char) + 2
        if texts and used + cost > toks_per_batch:
            return texts
        texts.append("".join(rng.choice(letters, size=chars)))
        used += cost
    raise AssertionError("unreachable")


@dataclass
class Engine:
    """How batches run: packed with an attention kernel, or the padded HF forward."""

    packed: bool
    kernel: str | None = None
    compiled: bool = False
    note: str = ""

    def describe(self) -> str:
        if not self.packed:
            return f"padded ({self.note})" if self.note else "padded"
        return f"packed, {self.kernel} attention" + (", compiled" if self.compiled else "")


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
        packing: Packing = "auto",
        compile_encoder: bool = False,
        cpu_workers: int | None = None,
    ):
        self.name, self.family, self.model_id = name, family, model
        self.pooling, self.layer, self.max_length = pooling, layer, max_length
        self.device_name, self.precision = device, precision
        self.toks_per_batch, self.trust_remote_code, self.revision = (
            toks_per_batch,
            trust_remote_code,
            revision,
        )
        self.packing, self.compile_encoder, self.cpu_workers = packing, compile_encoder, cpu_workers
        self.input_kind: InputKind = (
            "nucleotide" if family == "nucleotide_transformer" else "protein"
        )
        self._model = None
        self._tokenizer = None
        self._layout = None
        self.engine = Engine(packed=False, note="not loaded")

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
        if self.cpu_workers is None:
            self.cpu_workers = default_cpu_workers(self.device)
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
        self._choose_engine()

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

    def _choose_engine(self) -> None:
        """Packed where the layout allows and the probe agrees with the padded forward."""
        from segpair.embeddings.packed import EsmLayout, available_kernels

        reason = EsmLayout.unsupported_reason(self._model)
        if reason is None:
            self._layout = EsmLayout(self._model)
        if self.pooling == "attention" and self._layout is None:
            raise ValueError(
                f"pooling='attention' weights residues by the model's own attention, which "
                f"segpair reads from ESM-style layers; {self.model_id}: {reason}. "
                "Use pooling mean, max or cls for this model"
            )
        if self.pooling == "attention" and self._layer_index() == 0:
            raise ValueError(
                "pooling='attention' needs a transformer layer's attention; layer 0 is the "
                "embeddings: choose layer >= 1, 'last' or 'second_last'"
            )
        if self.packing == "padded":
            self.engine = Engine(packed=False, note="packing='padded'")
            return
        if reason is not None:
            self._refuse_or_pad(f"layout: {reason}")
            return
        tried = []
        for kernel in available_kernels(self.device, self.dtype):
            agreement = self._probe(kernel, compiled=False)
            if isinstance(agreement, str):
                tried.append(f"{kernel}: {agreement}")
                continue
            self.engine = Engine(packed=True, kernel=kernel)
            if self.device.type == "cuda" and self.packing == "auto":
                self.engine = self._faster_engine(self.engine)
            if self.engine.packed and self.compile_encoder:
                self._try_compile(kernel)
            return
        self._refuse_or_pad("; ".join(tried))

    def _refuse_or_pad(self, why: str) -> None:
        if self.packing == "packed":
            raise ValueError(
                f"packing='packed' asked for, but {self.model_id} cannot run packed ({why}); "
                "use packing 'auto' (falls back to padded) or 'padded'"
            )
        self.engine = Engine(packed=False, note=why)

    def _probe(self, kernel: str, compiled: bool) -> float | str:
        """Lowest cosine between packed and padded vectors of a few short inputs, or why
        the packed run failed or disagreed (fp32 must agree to 1e-4, bf16/fp16 to 1e-3)."""
        import torch

        texts = _PROBE[self.input_kind]
        try:
            want, _ = self._embed_padded(texts)
            got, _ = self._embed_packed(texts, Engine(True, kernel, compiled))
        except (RuntimeError, NotImplementedError, TypeError, ValueError, ImportError) as exc:
            return f"{type(exc).__name__}: {exc}"[:200]
        lowest = float(row_cosines(want, got).min())
        bound = 0.9999 if self.dtype == torch.float32 else 0.999
        return lowest if lowest >= bound else f"cosine {lowest:.6f} < {bound} against padded"

    def _faster_engine(self, packed: Engine) -> Engine:
        """The faster of `packed` and the padded forward on one token-budget batch of
        influenza-like lengths, each timed after a warm-up run (on a GPU, where packing
        is not measured in this project's benchmarks; on a CPU it was, BENCHMARKS.md)."""
        import time

        import torch

        texts = [self._prepare(t)[0] for t in _timing_batch(self.input_kind, self.toks_per_batch)]
        seconds = {}
        for engine in (packed, Engine(packed=False)):
            for _ in range(2):  # the first run warms kernels and the allocator up
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                t0 = time.perf_counter()
                self._embed_packed(texts, engine) if engine.packed else self._embed_padded(texts)
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                seconds[engine.packed] = time.perf_counter() - t0
        timing = f"timed at load: packed {seconds[True] * 1e3:.0f} ms, padded " \
                 f"{seconds[False] * 1e3:.0f} ms per {len(texts)}-sequence batch"  # fmt: skip
        if seconds[False] < seconds[True]:
            return Engine(packed=False, note=f"padded faster here; {timing}")
        return Engine(packed=True, kernel=packed.kernel, note=timing)

    def _try_compile(self, kernel: str) -> None:
        """torch.compile the packed layers; a failed compile, or vectors that disagree with
        the padded forward, keep the eager packed engine."""
        try:
            self._layout.compile()
        except (RuntimeError, ImportError, AttributeError) as exc:
            self.engine.note = f"compile failed, eager: {type(exc).__name__}: {exc}"[:200]
            return
        agreement = self._probe(kernel, compiled=True)
        if isinstance(agreement, str):
            self._layout.uncompile()
            self.engine.note = f"compiled run rejected, eager: {agreement}"
            return
        self.engine.compiled = True

    def runtime(self) -> dict:
        """How this embedder runs here (not part of its signature: packed and padded agree
        to cosine >= 0.9999 in fp32)."""
        self.load()
        return {
            "engine": self.engine.describe(),
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "toks_per_batch": self.toks_per_batch,
            "cpu_workers": self.cpu_workers if self.device.type == "cpu" else None,
        }

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
            return seq[:limit].upper(), len(seq) > limit
        return seq[: self.max_length], len(seq) > self.max_length

    def _layer_index(self) -> int:
        """The hidden-state index pooled: 0 = embeddings ... num_layers = last."""
        n = int(self._model.config.num_hidden_layers)
        if self.layer == "last":
            return n
        if self.layer == "second_last":
            return n - 1
        index = int(self.layer)
        if not -(n + 1) <= index <= n:
            raise ValueError(
                f"layer {index} out of range: {self.model_id} has {n + 1} hidden states "
                "(0 = embeddings); use an index in that range, 'last' or 'second_last'"
            )
        return index % (n + 1)

    def _to_device(self, tensor):
        # Page-locked host memory lets the copies run asynchronously on CUDA.
        pin = self.device.type == "cuda"
        return (tensor.pin_memory() if pin else tensor).to(self.device, non_blocking=pin)

    def _embed_batch(self, texts: list[str]):
        if self.engine.packed:
            return self._embed_packed(texts, self.engine)
        return self._embed_padded(texts)

    def _embed_packed(self, texts: list[str], engine: Engine):
        import torch

        from segpair.embeddings.packed import PackedBatch, pool_packed

        enc = self._tokenizer(texts, return_special_tokens_mask=True)
        batch = PackedBatch.of(enc["input_ids"], enc["special_tokens_mask"])
        n_tokens = batch.n_tokens
        moved = batch.to(self.device, non_blocking=self.device.type == "cuda")
        layer = self._layer_index()
        with torch.inference_mode():
            hidden, layer_input = self._layout.hidden_state(
                moved, layer, engine.kernel, self.dtype, keep_layer_input=True
            )
            weights = None
            if self.pooling == "attention":
                bounds = batch.bounds
                residues = moved.residue_mask
                weights = torch.cat([
                    self._layout.received_attention(layer, layer_input[s:e], residues[s:e])
                    for s, e in zip(bounds[:-1], bounds[1:], strict=True)
                ])  # fmt: skip
            pooled = pool_packed(hidden, moved, self.pooling, weights)
        return pooled.cpu().numpy(), n_tokens

    def _embed_padded(self, texts: list[str]):
        import torch

        enc = self._tokenizer(
            texts, padding=True, return_tensors="pt", return_special_tokens_mask=True
        )
        residue_mask = (enc["attention_mask"] == 1) & (enc["special_tokens_mask"] == 0)
        n_tokens = int(enc["attention_mask"].sum())  # on the host: no device sync
        inputs = {k: self._to_device(v) for k, v in enc.items() if k != "special_tokens_mask"}
        residue_mask = self._to_device(residue_mask)
        with torch.inference_mode():
            hidden, layer_input = self._hidden(inputs)
            pooled = self._pool(hidden, residue_mask, inputs["attention_mask"], layer_input)
        return pooled.cpu().numpy(), n_tokens

    def _hidden(self, enc) -> tuple[object, object]:
        """The pooled layer's hidden states and, for attention pooling, that layer's input."""
        layer = self._layer_index()
        n = int(self._model.config.num_hidden_layers)
        attention = self.pooling == "attention"
        out = self._model(
            input_ids=enc["input_ids"],
            attention_mask=enc["attention_mask"],
            output_hidden_states=layer != n or attention or self.family == "nucleotide_transformer",
        )
        states = getattr(out, "hidden_states", None)
        hidden = out.last_hidden_state if layer == n and states is None else states[layer]
        return hidden, (states[layer - 1] if attention and layer >= 1 else None)

    def _pool(self, hidden, residue_mask, attention_mask, layer_input=None):
        import torch

        h = hidden.float()
        if self.pooling == "cls":
            return h[:, 0]
        if self.pooling == "attention":
            rows = []
            for i, length in enumerate(attention_mask.sum(1).tolist()):
                w = self._layout.received_attention(
                    self._layer_index(), layer_input[i, :length], residue_mask[i, :length]
                )
                rows.append((h[i, :length] * w.float()[:, None]).sum(0))
            return torch.stack(rows)
        mask = residue_mask.unsqueeze(-1)
        if self.pooling == "mean":
            return (h * mask).sum(1) / mask.sum(1).clamp(min=1)
        return h.masked_fill(~mask.bool(), torch.finfo(h.dtype).min).max(1).values

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

    def _outside_alphabet(self, texts: list[str]) -> dict[int, str]:
        """Nucleotide inputs with letters the model's vocabulary lacks, and why."""
        if self.input_kind != "nucleotide":
            return {}
        found = {}
        for i, text in enumerate(texts):
            bad = _OUTSIDE_NUCLEOTIDES.search(text)
            if bad:
                letters = "".join(sorted(set(_OUTSIDE_NUCLEOTIDES.findall(text))))
                found[i] = (
                    f"letters outside {NUCLEOTIDES} ({letters!r}, first at position "
                    f"{bad.start() + 1}): the Nucleotide Transformer reads A, C, G, T, N; "
                    "replace ambiguity codes by N or drop the record"
                )
        return found

    def _run_batches(self, batches: list[list[int]], texts, out, failed) -> int:
        """Every batch; on a CPU spread over `cpu_workers` threads sharing the torch
        threads (one each by default): independent batches side by side instead of one
        batch split across cores, so no operation waits for another core."""
        workers = min(self.cpu_workers or 1, len(batches))
        if self.device.type != "cpu" or workers <= 1:
            return sum(self._run(b, texts, out, failed) for b in batches)
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(max(1, threads // workers))
        try:
            # batches come largest first; each worker takes the next one when it is done
            with ThreadPoolExecutor(workers, thread_name_prefix="embed") as pool:
                return sum(pool.map(lambda b: self._run(b, texts, out, failed), batches))
        finally:
            torch.set_num_threads(threads)

    def embed(self, sequences: list[str]) -> EmbedOutput:
        self.load()
        prepared = [self._prepare(s) for s in sequences]
        texts = [p[0] for p in prepared]
        failed = {i: f"no {self.input_kind} sequence" for i, t in enumerate(texts) if not t}
        outside = {i: r for i, r in self._outside_alphabet(texts).items() if i not in failed}
        failed.update(outside)
        todo = [i for i in range(len(texts)) if i not in failed]
        tok_len = [
            len(texts[i]) // (NT_KMER if self.input_kind == "nucleotide" else 1) for i in todo
        ]
        out = np.full((len(texts), self.dim), np.nan, dtype=np.float32)
        batches = token_budget_batches(tok_len, self.toks_per_batch, packed=self.engine.packed)
        batches.sort(key=lambda b: -sum(tok_len[j] for j in b))
        tokens = self._run_batches([[todo[j] for j in b] for b in batches], texts, out, failed)
        ok = [i for i in range(len(texts)) if i not in failed]
        return EmbedOutput(
            out[ok],
            ok,
            failed,
            truncated=sum(t for _, t in prepared),
            tokens=tokens,
            outside_alphabet=len(outside),
        )
