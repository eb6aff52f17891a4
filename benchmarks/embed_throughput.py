"""Embedding throughput: segpair's ESM-2 engine against a naive Hugging Face loop and the
fair-esm `extract.py` recipe, all in one run on the same sequences and model.

Every loop runs the same randomly initialised ESM-2 architecture (random weights cost the
same time as trained ones) at segpair's precision for the device (fp32 on CPU, bf16 on
GPU; `--precision` to choose):

- naive: fixed batches of `--naive-batch` sequences in input order, padded to the
  batch's longest, mean over the attention mask;
- fair-esm-style: what `esm/scripts/extract.py` does, ported to the same HF model:
  length-sorted batches under a token budget (`get_batch_indices`), the whole
  hidden-state tensor copied to the host, then a Python loop slicing and averaging
  each sequence (no other changes);
- segpair padded: `LanguageModelEmbedder(packing="padded")`, the HF forward on
  length-sorted token-budget batches (SDPA, residue-only pooling on the device);
- segpair packed: the default engine (`packing="auto"`): unpadded batches, attention per
  sequence (segpair/embeddings/packed.py), on a CPU spread over `cpu_workers` threads;
  on a CPU also with one worker (the baselines' threading), to separate the two gains;
- with `--compile`: segpair packed with torch.compile (compile time printed apart).

Sequences follow influenza A protein lengths (PB2 759 ... PB1-F2 90, +-3%), shuffled;
`--long-fraction` of them are 1,100-2,200 long (cut to 1,022). Each loop runs
`--repeats` times, interleaved with the others (the machine's load then affects all
alike); the table gives the median. Printed per loop: seconds, tokens/s, the ratios to
naive and to fair-esm-style; on CUDA also peak memory and model FLOP utilisation (real
tokens only: 2 x parameters x tokens + 4 x layers x hidden x L^2 per sequence, against
`--peak-tflops`, by default the H100/H200 dense bf16 spec of 989 TFLOP/s when the GPU is
one, else a large bf16 matmul measured here). Cosines: segpair's vectors against fp32
one-sequence-at-a-time vectors of the same model on `--check-precision` proteins (the
precision check), packed against padded, and the bf16 path's (`--also-bf16` on CPU).

    .venv/bin/python benchmarks/embed_throughput.py --arch small --n 384 --repeats 3
    python benchmarks/embed_throughput.py --gpu     # the GPU run: 650M, 2,000 + 5% long, bf16
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer, EsmConfig, EsmForMaskedLM, EsmModel, EsmTokenizer
from transformers.utils import logging as hf_logging

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
SPEC_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0}  # dense, SXM


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


def naive_loop(model_dir: Path, batch: int, device, dtype):
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = EsmModel.from_pretrained(model_dir, add_pooling_layer=False, dtype=dtype)
    model = model.to(device).eval()

    def run(seqs: list[str]) -> np.ndarray:
        out = []
        with torch.no_grad():
            for i in range(0, len(seqs), batch):
                enc = tok(seqs[i : i + batch], padding=True, truncation=True, max_length=1024,
                          return_tensors="pt").to(device)  # fmt: skip
                h = model(**enc).last_hidden_state
                m = enc["attention_mask"].unsqueeze(-1)
                out.append(((h * m).sum(1) / m.sum(1)).float().cpu())
        return torch.cat(out).numpy()

    return run


def fair_esm_style_loop(model_dir: Path, toks_per_batch: int, device, dtype):
    """esm/scripts/extract.py's loop: sorted token-budget batches, per-sequence Python
    pooling on the host."""
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = EsmModel.from_pretrained(model_dir, add_pooling_layer=False, dtype=dtype)
    model = model.to(device).eval()

    def run(seqs: list[str]) -> np.ndarray:
        # FastaBatchedDataset.get_batch_indices is the rule segpair's batching follows
        # too: sorted by length, a batch grows while (longest + 2) x count fits the budget
        batches = token_budget_batches([min(len(s), 1022) for s in seqs], toks_per_batch)
        out: dict[int, torch.Tensor] = {}
        with torch.no_grad():
            for idx in batches:
                enc = tok([seqs[i][:1022] for i in idx], padding=True, return_tensors="pt")
                h = model(**enc.to(device)).last_hidden_state.to("cpu")
                for j, i in enumerate(idx):
                    out[i] = h[j, 1 : min(len(seqs[i]), 1022) + 1].float().mean(0).clone()
        return torch.stack([out[i] for i in range(len(seqs))]).numpy()

    return run


def segpair_loop(model_dir: Path, seqs: list[str], **options):
    """The embed function, the embedder, and its set-up seconds (load, probe, warm-up,
    which includes the compilation of a compiled engine)."""
    embedder = LanguageModelEmbedder("esm2", "esm2", str(model_dir), **options)
    t0 = time.perf_counter()
    embedder.load()
    embedder.embed(seqs[:4])
    setup = time.perf_counter() - t0

    def run(batch: list[str]) -> np.ndarray:
        result = embedder.embed(batch)
        assert not result.failed, result.failed
        return result.vectors

    return run, embedder, setup


@dataclass
class Loop:
    name: str
    run: Callable[[list[str]], np.ndarray]
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    peak_gib: float = 0.0
    vectors: np.ndarray | None = None

    def time_once(self, seqs: list[str], device: torch.device) -> None:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        self.vectors = self.run(seqs)
        sync(device)
        self.seconds.append(time.perf_counter() - t0)
        self.cpu_seconds.append(time.process_time() - c0)
        if device.type == "cuda":
            self.peak_gib = max(self.peak_gib, torch.cuda.max_memory_allocated() / 2**30)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


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


def peak_tflops(device: torch.device, given: float) -> tuple[float, str]:
    if given:
        return given, "given"
    name = torch.cuda.get_device_name(device)
    for key, spec in SPEC_BF16_TFLOPS.items():
        if key in name:
            return spec, f"{key} dense bf16 spec"
    return measured_bf16_peak_tflops(device), "measured bf16 matmul"


def model_flops(params: int, layers: int, hidden: int, seqs: list[str]) -> float:
    lengths = np.array([min(len(s), 1022) + 2 for s in seqs], dtype=np.float64)
    return 2 * params * lengths.sum() + 4 * layers * hidden * (lengths**2).sum()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def fp32_one_at_a_time(model_dir: Path, seqs: list[str], device) -> np.ndarray:
    ref = LanguageModelEmbedder("esm2", "esm2", str(model_dir), device=str(device),
                                precision="fp32", packing="padded")  # fmt: skip
    return np.stack([ref.embed([s]).vectors[0] for s in seqs])


def cpu_has_bf16_units() -> bool:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return any(f in flags for f in ("avx512_bf16", "amx_bf16"))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--gpu", action="store_true",
                   help="the GPU run: --arch 650m --n 2000 --long-fraction 0.05 --device cuda "
                        "--check-precision 64 --compile (other flags still apply)")  # fmt: skip
    p.add_argument("--arch", choices=list(ARCHS), default="small")
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--naive-batch", type=int, default=8)
    p.add_argument("--toks-per-batch", type=int, default=0, help="0: segpair's default")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto", help="every loop's precision")
    p.add_argument("--long-fraction", type=float, default=0.0)
    p.add_argument("--peak-tflops", type=float, default=0.0, help="GPU bf16 peak, for MFU")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--fair-toks-per-batch", type=int, default=0,
                   help="fair-esm-style budget; 0: the same as segpair's")  # fmt: skip
    p.add_argument("--check-precision", type=int, default=0, metavar="K")
    p.add_argument("--compile", action="store_true", help="also segpair packed, compiled")
    p.add_argument("--also-bf16", action="store_true", help="CPU: also segpair packed in bf16")
    args = p.parse_args()
    if args.gpu:
        args.arch, args.n, args.long_fraction, args.device = "650m", 2000, 0.05, "cuda"
        args.check_precision = args.check_precision or 64
        args.compile = True
    return args


def main() -> None:
    args = parse_args()
    hf_logging.set_verbosity_error()  # the encoder-only loads list the unused LM head
    if args.threads:
        torch.set_num_threads(args.threads)
    seqs = make_sequences(args.n, 0, args.long_fraction)
    tokens = sum(min(len(s), 1022) + 2 for s in seqs)
    common = {"device": args.device, "precision": args.precision,
              "toks_per_batch": args.toks_per_batch or None}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_model(args.arch, Path(tmp))
        packed_run, ours, setup = segpair_loop(model_dir, seqs, **common)
        device, dtype = ours.device, ours.dtype
        padded_run, padded, _ = segpair_loop(model_dir, seqs, packing="padded", **common)
        fair_budget = args.fair_toks_per_batch or ours.toks_per_batch
        loops = [
            Loop("naive HF loop", naive_loop(model_dir, args.naive_batch, device, dtype)),
            Loop("fair-esm-style", fair_esm_style_loop(model_dir, fair_budget, device, dtype)),
            Loop("segpair padded", padded_run),
            Loop(f"segpair packed ({ours.runtime()['engine']})", packed_run),
        ]  # fmt: skip
        setups = {}
        if device.type == "cpu" and ours.cpu_workers > 1:
            one, _e, _s = segpair_loop(model_dir, seqs, cpu_workers=1, **common)
            loops.append(Loop("segpair packed, 1 worker", one))
        if args.compile:
            compiled, emb, setups["compiled"] = segpair_loop(
                model_dir, seqs, compile_encoder=True, **common
            )
            loops.append(Loop(f"segpair packed, compile ({emb.runtime()['engine']})", compiled))
        if args.also_bf16 and device.type == "cpu":
            bf16_run, bf16, _s = segpair_loop(model_dir, seqs, device="cpu", precision="bf16")
            loops.append(Loop("segpair packed, bf16", bf16_run))
        for loop in loops:  # warm-up (kernel selection, allocator)
            loop.run(seqs[:4])
        for _ in range(args.repeats):
            for loop in loops:
                loop.time_once(seqs, device)
        reference = None
        if args.check_precision:
            k = args.check_precision
            reference = fp32_one_at_a_time(model_dir, seqs[:k], device)
        cfg = ours._model.config
        params = sum(p.numel() for p in ours._model.parameters())
        report(args, loops, seqs, tokens, ours, params, cfg, reference, setup, setups)


def report(args, loops, seqs, tokens, ours, params, cfg, reference, setup, setups) -> None:
    device = ours.device
    naive, fair = loops[0].median, loops[1].median
    print(f"arch={args.arch} params={params / 1e6:.1f}M device={device} "
          f"({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}) "
          f"precision={ours.dtype} sequences={len(seqs)} tokens={tokens} "
          f"threads={torch.get_num_threads()} torch={torch.__version__} "
          f"repeats={args.repeats} (median shown)")  # fmt: skip
    if device.type == "cpu":
        print(f"cpu bf16 units (avx512_bf16/amx): {'yes' if cpu_has_bf16_units() else 'no'}; "
              f"segpair cpu_workers={ours.cpu_workers}")  # fmt: skip
    print(f"token budget: segpair {ours.toks_per_batch}, fair-esm-style "
          f"{args.fair_toks_per_batch or ours.toks_per_batch}; naive batch {args.naive_batch}; "
          f"segpair load + probe + warm-up {setup:.1f} s")  # fmt: skip
    if device.type == "cuda":
        peak, how = peak_tflops(device, args.peak_tflops)
        flops = model_flops(params, cfg.num_hidden_layers, cfg.hidden_size, seqs)
    width = max(len(loop.name) for loop in loops)
    for loop in loops:
        t = loop.median
        line = (f"{loop.name:<{width}}  {t:8.2f} s {tokens / t:10.0f} tokens/s  "
                f"x{naive / t:5.2f} naive  x{fair / t:5.2f} fair-esm-style")  # fmt: skip
        if device.type == "cuda":
            line += f"  peak {loop.peak_gib:5.1f} GiB  MFU {flops / t / (peak * 1e12):6.1%}"
        if device.type == "cpu":  # all threads' CPU time: work plus any waiting at barriers
            line += f"  cpu {statistics.median(loop.cpu_seconds):7.1f} s"
        if len(loop.seconds) > 1:
            line += "  runs " + "/".join(f"{s:.1f}" for s in loop.seconds)
        print(line)
    if device.type == "cuda":
        print(f"MFU against {peak:.0f} TFLOP/s ({how}); model FLOPs {flops / 1e12:.1f} T")
    if "compiled" in setups:
        print(f"compiled engine: load + probe + compile + warm-up {setups['compiled']:.1f} s")
    packed, padded = loops[3].vectors, loops[2].vectors
    print(f"cosine packed vs padded (all {len(seqs)}): min {cosines(packed, padded).min():.6f}")
    if reference is not None:
        k = len(reference)
        for loop in loops[2:]:
            c = cosines(reference, loop.vectors[:k])
            print(f"cosine vs fp32 one at a time, {loop.name} ({k} proteins): "
                  f"min {c.min():.6f} median {np.median(c):.6f}")  # fmt: skip
    # every loop embedded every sequence: the baselines did the same work
    assert all(loop.vectors.shape[0] == len(seqs) for loop in loops)


if __name__ == "__main__":
    main()
