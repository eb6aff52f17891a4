"""Packed (unpadded) forward passes for ESM-style encoders: ESM-2 and the Nucleotide
Transformer, with the loaded Hugging Face module's own weights.

A batch's sequences are concatenated into one row of T tokens with per-sequence
boundaries (`cu_seqlens`, as in FlashAttention's varlen API). Every position-wise part
of a layer (layer norms, the fused Q/K/V projection, the attention output, the MLP,
including the Nucleotide Transformer v2's gated MLP: the module's own `intermediate` is
called) runs once over the T real tokens; only attention is per sequence, through
PyTorch's own kernels, so no FLOP is spent on padding:

- `varlen`: `torch.nn.attention.varlen.varlen_attn` (CUDA, bf16/fp16; torch >= 2.9);
- `nested`: SDPA on a jagged nested tensor (CUDA; torch >= 2.5);
- `per_sequence`: SDPA on each sequence's slice (CPU and CUDA, any torch >= 2.5). On a
  CPU this is PyTorch's flash kernel without padding; SDPA on nested tensors falls back
  to its math path there (3-6x slower, measured), and flex_attention needs a compile.

`EsmLayout.unsupported_reason` says when a loaded model is not laid out as transformers'
ESM classes (remote code with other module names, decoders, unknown position
embeddings); callers then keep the padded Hugging Face forward. Remote-code copies of
the ESM layout (FastESM2's, the Nucleotide Transformer v2's) pass the layout check and
run packed only if the probe agrees (not verified here: no hub access). What this
module computes is checked against that forward (`segpair_assets_tests/unit/test_packed.py`,
and a probe at load time).
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F  # noqa: N812

AttentionKernel = Literal["varlen", "nested", "per_sequence"]
# ESM's token dropout: embeddings were trained with 15% x 80% of tokens masked out, and
# inference rescales them by the masked share actually observed (as transformers does).
_MASK_RATIO_TRAIN = 0.15 * 0.8


@dataclass
class PackedBatch:
    """Sequences back to back: `input_ids` (T,), `cu_seqlens` (B + 1,) int32 boundaries,
    each token's sequence (`seq_index`) and position within it, and which tokens are
    residues (not special tokens)."""

    input_ids: torch.Tensor
    cu_seqlens: torch.Tensor
    seq_index: torch.Tensor
    positions: torch.Tensor
    residue_mask: torch.Tensor
    lengths: list[int]

    @property
    def max_len(self) -> int:
        return max(self.lengths)

    @property
    def bounds(self) -> list[int]:
        """`cu_seqlens` on the host (no device synchronisation to read it)."""
        return [0, *itertools.accumulate(self.lengths)]

    @property
    def n_tokens(self) -> int:
        return int(self.input_ids.numel())

    @classmethod
    def of(cls, token_ids: Sequence[Sequence[int]], special: Sequence[Sequence[int]]):
        """From per-sequence token ids and special-token masks (a tokenizer's output
        without padding)."""
        lengths = [len(t) for t in token_ids]
        flat = [i for t in token_ids for i in t]
        lens = torch.tensor(lengths, dtype=torch.int64)
        cu = torch.zeros(len(lengths) + 1, dtype=torch.int32)
        cu[1:] = torch.cumsum(lens, 0)
        seq_index = torch.repeat_interleave(torch.arange(len(lengths)), lens)
        positions = torch.arange(len(flat)) - cu[:-1].long()[seq_index]
        residue = torch.tensor([s == 0 for m in special for s in m], dtype=torch.bool)
        return cls(torch.tensor(flat), cu, seq_index, positions, residue, lengths)

    def to(self, device: torch.device, non_blocking: bool = False) -> PackedBatch:
        move = {
            k: getattr(self, k).to(device, non_blocking=non_blocking)
            for k in ("input_ids", "cu_seqlens", "seq_index", "positions", "residue_mask")
        }
        return PackedBatch(**move, lengths=self.lengths)


class EsmLayout:
    """The parts of a loaded ESM-style model that the packed forward runs: embeddings,
    encoder layers, the final layer norm, rotary frequencies. Works on `EsmModel` and on
    masked-LM wrappers (`.esm`), whose LM head is skipped."""

    def __init__(self, model: torch.nn.Module):
        reason = self.unsupported_reason(model)
        if reason:
            raise ValueError(f"packed forward unsupported: {reason}")
        base = getattr(model, "esm", model)
        self.config = base.config
        self.embeddings = base.embeddings
        self.layers = list(base.encoder.layer)
        self.final_norm = base.encoder.emb_layer_norm_after
        self.heads = int(self.config.num_attention_heads)
        self.head_dim = int(self.config.hidden_size) // self.heads
        self.rotary = self.config.position_embedding_type == "rotary"
        inv_freq = _inv_freq(base) if self.rotary else None
        self.inv_freq = None if inv_freq is None else inv_freq.detach().float()
        # Q, K and V as one projection (one matrix product instead of three), ESM's query
        # scaling folded into the Q rows; made once, from the module's own weights.
        self.qkv = [_fused_qkv(layer.attention.self, self.head_dim) for layer in self.layers]
        self.plain_layers = [_is_plain_esm_layer(layer) for layer in self.layers]
        self.after_attention_weights = [
            _after_attention_weights(layer) if plain else None
            for layer, plain in zip(self.layers, self.plain_layers, strict=True)
        ]
        self.uncompile()
        self._rotary_table: tuple[torch.Tensor, torch.Tensor] | None = None

    @staticmethod
    def unsupported_reason(model: torch.nn.Module) -> str | None:
        """Why this model cannot run packed (None: it can)."""
        base = getattr(model, "esm", model)
        config = getattr(base, "config", None)
        encoder = getattr(base, "encoder", None)
        if config is None or encoder is None or not hasattr(base, "embeddings"):
            return f"{type(model).__name__} has no ESM embeddings/encoder"
        if getattr(config, "is_decoder", False):
            return "decoder models attend causally"
        kind = getattr(config, "position_embedding_type", None)
        if kind not in ("rotary", "absolute"):
            return f"position embeddings {kind!r} (rotary or absolute supported)"
        if kind == "rotary" and _inv_freq(base) is None:
            return "rotary frequencies not found where transformers' ESM keeps them"
        if not hasattr(encoder, "emb_layer_norm_after") or not hasattr(encoder, "layer"):
            return "encoder without ESM's layer list and final layer norm"
        for layer in encoder.layer:
            attn = getattr(layer, "attention", None)
            sub = getattr(attn, "self", None)
            parts = [getattr(sub, n, None) for n in ("query", "key", "value")]
            if (
                any(not isinstance(p, torch.nn.Linear) for p in parts)
                or not all(hasattr(attn, n) for n in ("LayerNorm", "output"))
                or not all(hasattr(layer, n) for n in ("LayerNorm", "intermediate", "output"))
            ):
                return f"{type(layer).__name__} is not laid out as transformers' EsmLayer"
        return None

    # ------------------------------------------------------------ forward

    def embed_tokens(self, batch: PackedBatch, dtype: torch.dtype) -> torch.Tensor:
        """hidden_states[0] of the Hugging Face forward, packed: (T, D)."""
        emb = self.embeddings
        x = emb.word_embeddings(batch.input_ids)
        if getattr(emb, "token_dropout", False):
            is_mask = batch.input_ids == emb.mask_token_id
            lengths = torch.diff(batch.cu_seqlens).float()
            masked = torch.zeros_like(lengths).index_add_(0, batch.seq_index, is_mask.float())
            scale = (1 - _MASK_RATIO_TRAIN) / (1 - masked / lengths)
            x = (x.masked_fill(is_mask.unsqueeze(-1), 0.0) * scale[batch.seq_index, None]).to(
                x.dtype
            )
        if self.config.position_embedding_type == "absolute":
            # transformers numbers positions from padding_idx + 1
            x = x + emb.position_embeddings(batch.positions + emb.padding_idx + 1)
        if getattr(emb, "layer_norm", None) is not None:
            x = emb.layer_norm(x)
        return x.to(dtype)

    def hidden_state(
        self,
        batch: PackedBatch,
        layer: int,
        kernel: AttentionKernel = "per_sequence",
        dtype: torch.dtype = torch.float32,
        keep_layer_input: bool = False,
    ):
        """`hidden_states[layer]` of the Hugging Face forward (0 = embeddings, the last
        index after the final layer norm), packed (T, D). Layers above it are not run.
        With `keep_layer_input`, also that layer's input (for attention pooling)."""
        x = self.embed_tokens(batch, dtype)
        layer_input = x
        rope = self.rotary_for(batch.positions, batch.max_len) if self.rotary else None
        for i in range(layer):
            layer_input = x
            x = self.run_layer(i, x, batch, rope, kernel)
        if layer == len(self.layers):
            x = self.final_norm(x)
        return (x, layer_input) if keep_layer_input else x

    def run_layer(self, i: int, x, batch: PackedBatch, rope, kernel: AttentionKernel):
        layer = self.layers[i]
        attn = layer.attention
        q, k, v = self.project_qkv(i, attn.LayerNorm(x), rope)
        o = attend(q, k, v, batch, kernel).reshape(x.shape)
        if not self.plain_layers[i]:
            # the model's own modules: e.g. the Nucleotide Transformer v2's gated MLP
            x = attn.output(o, x)
            return layer.output(layer.intermediate(layer.LayerNorm(x)), x)
        return self._after_attention(o, x, *self.after_attention_weights[i])

    def project_qkv(self, i: int, h: torch.Tensor, rope) -> tuple[torch.Tensor, ...]:
        weight, bias = self.qkv[i]
        if rope is None:
            qkv = F.linear(h, weight, bias).view(h.shape[0], 3, self.heads, self.head_dim)
            return qkv.unbind(1)
        return self._project_rotary(h, weight, bias, *rope, self.heads, self.head_dim)

    def compile(self) -> None:
        """torch.compile the position-wise parts of every layer (attention stays eager:
        per-sequence loops and nested tensors do not trace). Shapes are dynamic: one
        compilation serves every batch size."""
        import torch._dynamo  # noqa: F401  (ImportError where torch lacks the compiler)

        self._project_rotary = torch.compile(_project_rotary, dynamic=True)
        self._after_attention = torch.compile(_after_attention, dynamic=True)

    def uncompile(self) -> None:
        self._project_rotary, self._after_attention = _project_rotary, _after_attention

    def rotary_for(self, positions: torch.Tensor, max_len: int):
        """cos and sin per token, (T, 1, 1, head_dim), in float32 as transformers applies
        them; the table is built once per device, up to the longest sequence seen."""
        need = max_len
        table = self._rotary_table
        if table is None or table[0].shape[0] < need or table[0].device != positions.device:
            size = max(need, 1026)
            t = torch.arange(size, device=positions.device, dtype=torch.float32)
            freqs = torch.outer(t, self.inv_freq.to(positions.device))
            emb = torch.cat((freqs, freqs), dim=-1)
            self._rotary_table = table = (emb.cos(), emb.sin())
        cos, sin = table
        return cos[positions][:, None, None], sin[positions][:, None, None]

    # ------------------------------------------------------------ attention pooling

    def received_attention(self, layer: int, x_in: torch.Tensor, residues: torch.Tensor):
        """Attention each token of one sequence receives in `layer` (1-based, as hidden
        state indices count), averaged over heads and over the residue queries; zero on
        special tokens, summing to 1 over residues. `x_in` is the layer's input (L, D),
        `residues` the (L,) residue mask."""
        if layer < 1:
            raise ValueError(
                "attention pooling needs a transformer layer's attention; layer 0 is the "
                "embeddings: choose layer >= 1, 'last' or 'second_last'"
            )
        attn = self.layers[layer - 1].attention
        positions = torch.arange(x_in.shape[0], device=x_in.device)
        rope = self.rotary_for(positions, x_in.shape[0]) if self.rotary else None
        q, k, _v = self.project_qkv(layer - 1, attn.LayerNorm(x_in), rope)
        scores = torch.einsum("qhd,khd->hqk", q.float(), k.float())  # query pre-scaled
        probs = scores.softmax(-1)[:, residues].mean((0, 1))
        probs = probs * residues
        return probs / probs.sum().clamp(min=torch.finfo(probs.dtype).tiny)


def _inv_freq(base: torch.nn.Module) -> torch.Tensor | None:
    """Rotary inverse frequencies: one model-level module in transformers >= 5, one per
    layer before (and in remote-code copies of that version)."""
    rot = getattr(base, "rotary_embeddings", None)
    if rot is not None and getattr(rot, "inv_freq", None) is not None:
        return rot.inv_freq
    layers = getattr(getattr(base, "encoder", None), "layer", None) or []
    for layer in layers[:1]:
        self_attention = getattr(getattr(layer, "attention", None), "self", None)
        rot = getattr(self_attention, "rotary_embeddings", None)
        if rot is not None and getattr(rot, "inv_freq", None) is not None:
            return rot.inv_freq
    return None


def _is_plain_esm_layer(layer) -> bool:
    """Whether the layer's output and MLP modules are exactly transformers' ESM classes
    (dense + residual, dense + erf GELU), which the packed forward then runs as functions;
    any other class (remote code) is called as the module it is."""
    try:
        from transformers.models.esm import modeling_esm as esm
    except ImportError:
        return False
    return (
        type(layer.attention.output) is esm.EsmSelfOutput
        and type(layer.intermediate) is esm.EsmIntermediate
        and type(layer.output) is esm.EsmOutput
    )


def _fused_qkv(self_attention, head_dim: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    q, k, v = self_attention.query, self_attention.key, self_attention.value
    scale = head_dim**-0.5
    weight = torch.cat([q.weight * scale, k.weight, v.weight]).detach()
    if q.bias is None:
        return weight, None
    return weight, torch.cat([q.bias * scale, k.bias, v.bias]).detach()


def _project_rotary(h, weight, bias, cos, sin, heads: int, head_dim: int):
    """Q, K, V from one projection, rotary embedding (ESM's rotate-half form) on Q and K,
    computed in float32 as transformers does."""
    qkv = F.linear(h, weight, bias).view(h.shape[0], 3, heads, head_dim)
    qk = qkv[:, :2].float()
    half = head_dim // 2
    rotated = torch.cat((-qk[..., half:], qk[..., :half]), dim=-1)
    qk = (qk * cos + rotated * sin).to(h.dtype)
    return qk[:, 0], qk[:, 1], qkv[:, 2]


def _after_attention(o, x, out_w, out_b, ln_w, ln_b, eps: float, w1, b1, w2, b2):
    """The rest of a transformers `EsmLayer` after attention: output projection and
    residual, layer norm, dense + GELU, dense and residual. ESM's erf GELU is F.gelu's
    exact form (one kernel instead of five passes)."""
    x = F.linear(o, out_w, out_b) + x
    h = F.gelu(F.linear(F.layer_norm(x, x.shape[-1:], ln_w, ln_b, eps), w1, b1))
    return F.linear(h, w2, b2) + x


def _after_attention_weights(layer) -> tuple:
    norm = layer.LayerNorm
    return (
        layer.attention.output.dense.weight, layer.attention.output.dense.bias,
        norm.weight, norm.bias, norm.eps,
        layer.intermediate.dense.weight, layer.intermediate.dense.bias,
        layer.output.dense.weight, layer.output.dense.bias,
    )  # fmt: skip


def attend(q, k, v, batch: PackedBatch, kernel: AttentionKernel) -> torch.Tensor:
    """Self-attention within each sequence of a packed batch: (T, H, d) in and out; the
    query already carries the 1/sqrt(d) scale."""
    if kernel in ("varlen", "nested"):  # Q, K, V are views into one projection
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    if kernel == "varlen":
        from torch.nn.attention.varlen import varlen_attn

        cu, longest = batch.cu_seqlens, batch.max_len
        if "scale" in inspect.signature(varlen_attn).parameters:
            return varlen_attn(q, k, v, cu, cu, longest, longest, scale=1.0)
        # torch 2.9-2.10: no scale argument, the kernel applies 1/sqrt(d) itself
        return varlen_attn(q * q.shape[-1] ** 0.5, k, v, cu, cu, longest, longest)
    if kernel == "nested":
        offsets = batch.cu_seqlens.long()
        nq, nk, nv = (
            torch.nested.nested_tensor_from_jagged(t, offsets).transpose(1, 2) for t in (q, k, v)
        )
        out = F.scaled_dot_product_attention(nq, nk, nv, scale=1.0)
        return out.transpose(1, 2).values()
    out = torch.empty_like(q)
    bounds = batch.bounds
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        qs, ks, vs = (t[start:end].transpose(0, 1).unsqueeze(0) for t in (q, k, v))
        out[start:end] = F.scaled_dot_product_attention(qs, ks, vs, scale=1.0)[0].transpose(0, 1)
    return out


def available_kernels(device: torch.device, dtype: torch.dtype) -> list[AttentionKernel]:
    """Attention kernels to try on this device, fastest first; each is verified against
    the padded forward before use."""
    if device.type != "cuda":
        return ["per_sequence"]
    kernels: list[AttentionKernel] = []
    if dtype in (torch.bfloat16, torch.float16):
        try:
            from torch.nn.attention.varlen import varlen_attn  # noqa: F401  (torch >= 2.9)

            kernels.append("varlen")
        except ImportError:
            pass
    if hasattr(torch.nested, "nested_tensor_from_jagged"):
        kernels.append("nested")
    return [*kernels, "per_sequence"]


def pool_packed(
    hidden: torch.Tensor, batch: PackedBatch, pooling: str, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """One vector per sequence from packed hidden states (T, D), over residue tokens only:
    mean, max, the CLS (first) token, or attention (`weights` per token, summing to 1 over
    each sequence's residues)."""
    h = hidden.float()
    n = len(batch.lengths)
    idx = batch.seq_index
    if pooling == "cls":
        return h[batch.cu_seqlens[:-1].long()]
    res = batch.residue_mask
    if pooling == "max":
        out = torch.full((n, h.shape[1]), float("-inf"), device=h.device)
        src = h.masked_fill(~res.unsqueeze(-1), float("-inf"))
        return out.scatter_reduce(0, idx[:, None].expand_as(h), src, reduce="amax")
    if pooling == "attention":
        if weights is None:
            raise ValueError("attention pooling needs per-token weights")
        w = weights.float() * res
        return torch.zeros(n, h.shape[1], device=h.device).index_add_(0, idx, h * w[:, None])
    counts = torch.zeros(n, device=h.device).index_add_(0, idx, res.float()).clamp(min=1)
    sums = torch.zeros(n, h.shape[1], device=h.device).index_add_(0, idx, h * res[:, None])
    return sums / counts[:, None]
