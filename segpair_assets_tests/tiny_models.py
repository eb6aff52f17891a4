"""Tiny models of the real architectures, saved locally and loaded through the same path
users take (`from_pretrained` on a directory). Random weights: right shapes, real code."""

from __future__ import annotations

import itertools
from pathlib import Path

ESM_VOCAB = [
    "<cls>",
    "<pad>",
    "<eos>",
    "<unk>",
    *"LAGVSERTIDPKQNFYMHWCXBUZO.-",
    "<null_1>",
    "<mask>",
]


def _save_esm(path: Path, tokenizer, vocab_size: int, layers: int, hidden: int, **config) -> Path:
    """A randomly initialised ESM masked-LM checkpoint (rotary unless `config` says
    otherwise, 4 heads) and its tokenizer."""
    from transformers import EsmConfig, EsmForMaskedLM

    cfg = EsmConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=2 * hidden,
        **{"position_embedding_type": "rotary", **config},
    )
    EsmForMaskedLM(cfg).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def build_tiny_esm2(
    path: Path, layers: int = 2, hidden: int = 32, seed: int = 0, esm1b_style: bool = False
) -> Path:
    """`esm1b_style`: learned absolute positions and a layer norm on the embeddings (as
    ESM-1b and the first Nucleotide Transformers), instead of ESM-2's rotary."""
    import torch
    from transformers import EsmTokenizer

    torch.manual_seed(seed)
    path.mkdir(parents=True, exist_ok=True)
    vocab = path / "vocab.txt"
    vocab.write_text("\n".join(ESM_VOCAB) + "\n")
    tokenizer = EsmTokenizer(str(vocab))
    style = {"position_embedding_type": "absolute", "emb_layer_norm_before": True}
    # Saved as the masked-LM checkpoint that ESM-2 releases are; EsmModel loads from it.
    return _save_esm(
        path, tokenizer, len(ESM_VOCAB), layers, hidden, max_position_embeddings=1026,
        pad_token_id=1, mask_token_id=32, token_dropout=True,
        **(style if esm1b_style else {"emb_layer_norm_before": False}),
    )  # fmt: skip


def build_tiny_nucleotide_transformer(path: Path, layers: int = 2, hidden: int = 32) -> Path:
    import torch
    from transformers import EsmTokenizer

    torch.manual_seed(0)
    path.mkdir(parents=True, exist_ok=True)
    kmers = ["".join(p) for p in itertools.product("ATCG", repeat=6)]
    tokens = [
        "<unk>",
        "<pad>",
        "<mask>",
        "<cls>",
        "<eos>",
        "<bos>",
        *kmers,
        "A",
        "T",
        "C",
        "G",
        "N",
    ]
    vocab = path / "vocab.txt"
    vocab.write_text("\n".join(tokens) + "\n")
    tokenizer = EsmTokenizer(
        str(vocab), unk_token="<unk>", cls_token="<cls>", pad_token="<pad>",
        mask_token="<mask>", eos_token="<eos>",
    )  # fmt: skip
    return _save_esm(
        path, tokenizer, len(tokens), layers, hidden, max_position_embeddings=1002,
        pad_token_id=1, mask_token_id=2, token_dropout=False,
    )  # fmt: skip
