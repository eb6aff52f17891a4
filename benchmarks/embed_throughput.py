"""Embedding throughput: segpair's ESM-2 embedder against a naive Hugging Face loop.

Both run the same randomly initialised ESM-2 architecture (random weights cost the same
time as trained ones) on the same sequences in one process:

- naive: fixed batches of `--naive-batch` sequences in input order, padded to the
  batch's longest, fp32, mean over the attention mask;
- segpair: `LanguageModelEmbedder` (length-sorted token-budget batches, SDPA, residue-only
  pooling, bf16 on GPU / fp32 on CPU unless --precision says otherwise).

Sequences follow influenza A protein lengths (PB2 759 ... PB1-F2 90, +-3%), shuffled.
Prints tokens/s for each, the ratio, and on CUDA the peak memory and the share of the
GPU's peak bf16 FLOP/s (model FLOPs ~ 2 x parameters x tokens + attention).

    .venv/bin/python benchmarks/embed_throughput.py --arch small --n 256
    python benchmarks/embed_throughput.py --arch 650m --n 2000 --device cuda --peak-tflops 989
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer, EsmConfig, EsmForMaskedLM, EsmModel, EsmTokenizer

from segpair.embeddings.language_models import LanguageModelEmbedder

ARCHS = {  # (layers, hidden, heads) of the released ESM-2 checkpoints
    "tiny": (2, 64, 4),
    "small": (6, 320, 20),  # esm2_t6_8M_UR50D
    "35m": (12, 480, 20),  # esm2_t12_35M_UR50D
    "650m": (33, 1280, 20),  # esm2_t33_650M_UR50D
}
# Influenza A proteins as a BV-BRC export lists them: the eight primary ones and the
# short ones (PB1-F2, M2, NEP, PA-X) that protein-level inputs carry.
FLU_LENGTHS = [759, 757, 90, 716, 252, 566, 498, 469, 97, 252, 121, 230]
VOCAB = ["<cls>", "<pad>", "<eos>", "<unk>", *"LAGVSERTIDPKQNFYMHWCXBUZO.-", "<null_1>", "<mask>"]


def make_sequences(n: int, seed: int, long_fraction: float) -> list[str]:
    rng = np.random.default_rng(seed)
    aas = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
    lengths = rng.choice(FLU_LENGTHS, size=n) * rng.uniform(0.97, 1.03, size=n)
    n_long = int(round(long_fraction * n))
    lengths[:n_long] = rng.integers(1100, 2200, size=n_long)  # > 1022: truncated
    rng.shuffle(lengths)
    return ["M" + "".join(rng.choice(aas, size=int(L) - 1)) for L in lengths]


def build_model(arch: str, folder: Path) -> Path:
    layers, hidden, heads = ARCHS[arch]
    torch.manual_seed(0)
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    config = EsmConfig(
        vocab_size=len(VOCAB), hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, intermediate_size=4 * hidden, max_position_embeddings=1026,
        position_embedding_type="rotary", pad_token_id=1, mask_token_id=32, token_dropout=True,
    )  # fmt: skip
    EsmForMaskedLM(config).save_pretrained(folder)
    EsmTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)
    return folder


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def naive_loop(model_dir: Path, seqs: list[str], batch: int, device: torch.device):
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = EsmModel.from_pretrained(model_dir, add_pooling_layer=False).to(device).eval()
    out = []
    sync(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(seqs), batch):
            enc = tok(seqs[i : i + batch], padding=True, truncation=True, max_length=1024,
                      return_tensors="pt").to(device)  # fmt: skip
            h = model(**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1)
            out.append(((h * m).sum(1) / m.sum(1)).cpu())
    sync(device)
    return time.perf_counter() - t0, torch.cat(out).numpy()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--arch", choices=list(ARCHS), default="small")
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--naive-batch", type=int, default=8)
    p.add_argument("--toks-per-batch", type=int, default=0, help="0: segpair's default")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto")
    p.add_argument("--long-fraction", type=float, default=0.0)
    p.add_argument("--peak-tflops", type=float, default=0.0, help="GPU bf16 peak, for MFU")
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    seqs = make_sequences(args.n, 0, args.long_fraction)
    tokens = sum(min(len(s), 1022) + 2 for s in seqs)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_model(args.arch, Path(tmp))
        ours = LanguageModelEmbedder("esm2", "esm2", str(model_dir), device=args.device,
                                     precision=args.precision,
                                     toks_per_batch=args.toks_per_batch or None)  # fmt: skip
        ours.load()
        device = ours.device
        params = sum(p.numel() for p in ours._model.parameters())
        ours.embed(seqs[:4])  # warm-up (kernel selection, allocator)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        sync(device)
        t0 = time.perf_counter()
        result = ours.embed(seqs)
        sync(device)
        t_ours = time.perf_counter() - t0
        peak_ours = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else 0
        naive_loop(model_dir, seqs[:4], args.naive_batch, device)  # warm-up
        t_naive, naive_vecs = naive_loop(model_dir, seqs, args.naive_batch, device)

    print(f"arch={args.arch} params={params / 1e6:.1f}M device={device} "
          f"precision={ours.dtype} sequences={len(seqs)} tokens={tokens} "
          f"threads={torch.get_num_threads()}")  # fmt: skip
    print(f"naive HF loop (batch {args.naive_batch}, unsorted, fp32): {t_naive:8.2f} s "
          f"{tokens / t_naive:10.0f} tokens/s")  # fmt: skip
    print(f"segpair (token budget {ours.toks_per_batch}, sorted):     {t_ours:8.2f} s "
          f"{tokens / t_ours:10.0f} tokens/s  failed={len(result.failed)} "
          f"truncated={result.truncated}")  # fmt: skip
    print(f"speed-up vs naive: {t_naive / t_ours:.2f}x")
    if device.type == "cuda":
        print(f"peak GPU memory (segpair): {peak_ours:.1f} GiB")
        if args.peak_tflops:
            flops = 2 * params * tokens
            print(f"model FLOP utilisation: {flops / t_ours / (args.peak_tflops * 1e12):.1%} "
                  f"of {args.peak_tflops} TFLOP/s")  # fmt: skip
    assert naive_vecs.shape[0] == len(seqs)


if __name__ == "__main__":
    main()
