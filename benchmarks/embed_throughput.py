"""Embedding throughput: segpair's ESM-2 embedder against a naive Hugging Face loop.

Both run the same randomly initialised ESM-2 architecture (random weights cost the same
time as trained ones) on the same sequences in one process:

- naive: fixed batches of `--naive-batch` sequences in input order, padded to the
  batch's longest, fp32, mean over the attention mask;
- fair-esm-style: what `esm/scripts/extract.py` does, ported to the same HF model:
  length-sorted batches under a token budget (`get_batch_indices`), fp32, the whole
  hidden-state tensor copied to the host, then a Python loop slicing and averaging
  each sequence (no other changes);
- segpair: `LanguageModelEmbedder` (length-sorted token-budget batches, SDPA, residue-only
  pooling, bf16 on GPU / fp32 on CPU unless --precision says otherwise).

Sequences follow influenza A protein lengths (PB2 759 ... PB1-F2 90, +-3%), shuffled.
Prints tokens/s for each, the ratios, and on CUDA the peak memory and the share of the
GPU's bf16 peak (measured here with a large bf16 matmul unless --peak-tflops is given)
that the model FLOPs reach (2 x parameters x tokens + 4 x layers x hidden x L^2 per
sequence for attention). `--check-precision K` compares segpair's batched vectors with
fp32 one-sequence-at-a-time vectors of the same model on K sequences (cosine per protein,
min and median).

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

from segpair.embeddings.batching import token_budget_batches
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


def fair_esm_style_loop(model_dir: Path, seqs: list[str], toks_per_batch: int, device):
    """esm/scripts/extract.py's loop: sorted token-budget batches, fp32, per-sequence
    Python pooling on the host."""
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = EsmModel.from_pretrained(model_dir, add_pooling_layer=False).to(device).eval()
    # FastaBatchedDataset.get_batch_indices is the rule segpair's batching follows too:
    # sorted by length, a batch grows while (longest + 2) x count fits the budget
    batches = token_budget_batches([min(len(s), 1022) for s in seqs], toks_per_batch)
    out: dict[int, torch.Tensor] = {}
    sync(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        for idx in batches:
            enc = tok([seqs[i][:1022] for i in idx], padding=True, return_tensors="pt")
            h = model(**enc.to(device)).last_hidden_state.to("cpu")
            for j, i in enumerate(idx):
                out[i] = h[j, 1 : min(len(seqs[i]), 1022) + 1].mean(0).clone()
    sync(device)
    return time.perf_counter() - t0, torch.stack([out[i] for i in range(len(seqs))]).numpy()


def measured_bf16_peak_tflops(device: torch.device, n: int = 8192, reps: int = 50) -> float:
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(5):
        a @ b
    sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e12


def model_flops(params: int, layers: int, hidden: int, seqs: list[str]) -> float:
    lengths = np.array([min(len(s), 1022) + 2 for s in seqs], dtype=np.float64)
    return 2 * params * lengths.sum() + 4 * layers * hidden * (lengths**2).sum()


def fp32_one_at_a_time(model_dir: Path, seqs: list[str], device) -> np.ndarray:
    ref = LanguageModelEmbedder("esm2", "esm2", str(model_dir), device=str(device),
                                precision="fp32")  # fmt: skip
    return np.stack([ref.embed([s]).vectors[0] for s in seqs])


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
    p.add_argument("--fair-toks-per-batch", type=int, default=0,
                   help="fair-esm-style budget; 0: the same as segpair's")  # fmt: skip
    p.add_argument("--check-precision", type=int, default=0, metavar="K")
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
        fair_budget = args.fair_toks_per_batch or ours.toks_per_batch
        fair_esm_style_loop(model_dir, seqs[:4], fair_budget, device)  # warm-up
        t_fair, fair_vecs = fair_esm_style_loop(model_dir, seqs, fair_budget, device)
        cosines = None
        if args.check_precision:
            k = args.check_precision
            ref = fp32_one_at_a_time(model_dir, seqs[:k], device)
            got = result.vectors[:k]
            cosines = (ref * got).sum(1) / (
                np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1)
            )
        layers, hidden = ours._model.config.num_hidden_layers, ours._model.config.hidden_size

    print(f"arch={args.arch} params={params / 1e6:.1f}M device={device} "
          f"precision={ours.dtype} sequences={len(seqs)} tokens={tokens} "
          f"threads={torch.get_num_threads()}")  # fmt: skip
    print(f"naive HF loop (batch {args.naive_batch}, unsorted, fp32): {t_naive:8.2f} s "
          f"{tokens / t_naive:10.0f} tokens/s")  # fmt: skip
    print(f"fair-esm-style (budget {fair_budget}, sorted, fp32): {t_fair:8.2f} s "
          f"{tokens / t_fair:10.0f} tokens/s")  # fmt: skip
    print(f"segpair (token budget {ours.toks_per_batch}, sorted):     {t_ours:8.2f} s "
          f"{tokens / t_ours:10.0f} tokens/s  failed={len(result.failed)} "
          f"truncated={result.truncated}")  # fmt: skip
    print(f"speed-up vs naive: {t_naive / t_ours:.2f}x; vs fair-esm-style: {t_fair / t_ours:.2f}x")
    if device.type == "cuda":
        print(f"peak GPU memory (segpair): {peak_ours:.1f} GiB")
        peak = args.peak_tflops or measured_bf16_peak_tflops(device)
        flops = model_flops(params, layers, hidden, seqs)
        print(
            f"model FLOP utilisation: {flops / t_ours / (peak * 1e12):.1%} of "
            f"{peak:.0f} TFLOP/s bf16 ({'given' if args.peak_tflops else 'measured'})"
        )
    if cosines is not None:
        print(
            f"cosine, segpair ({ours.dtype}, batched) vs fp32 one at a time, "
            f"{len(cosines)} proteins: min {cosines.min():.5f} median {np.median(cosines):.5f}"
        )
    # all three loops embed the same sequences: the baselines did the same work
    assert naive_vecs.shape[0] == fair_vecs.shape[0] == len(seqs)


if __name__ == "__main__":
    main()
