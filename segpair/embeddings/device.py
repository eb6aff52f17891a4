"""Choosing the compute device and precision for language-model embedders."""

from __future__ import annotations

from typing import Literal

Precision = Literal["auto", "fp32", "bf16", "fp16"]


def resolve_device(device: str = "auto"):
    """'auto' is CUDA when a GPU is visible, else CPU; 'cpu', 'cuda', 'cuda:1' as given."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {device!r} asked for, but torch sees no CUDA GPU "
            f"(torch {torch.__version__}); install a CUDA build of torch or use device='cpu'"
        )
    return dev


def resolve_dtype(device, precision: Precision = "auto"):
    """'auto' is bf16 on GPUs that support it (fp16 otherwise) and fp32 on CPU."""
    import torch

    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def default_toks_per_batch(device) -> int:
    """Token budget per batch: small on CPU (cache-friendly; 1024 measured fastest on
    2 cores, BENCHMARKS.md), large on GPU to fill the device."""
    return 16384 if device.type == "cuda" else 1024


MAX_CPU_WORKERS = 8  # beyond this, Python threads would queue on the interpreter lock


def default_cpu_workers(device) -> int:
    """Batches embedded side by side on a CPU: one per torch thread, each on one thread
    (measured faster than one batch at a time on all cores, BENCHMARKS.md), at most
    MAX_CPU_WORKERS (more cores are shared among them); one on a GPU."""
    if device.type != "cpu":
        return 1
    import torch

    return max(1, min(torch.get_num_threads(), MAX_CPU_WORKERS))


def device_for_shard(device: str, shard: int) -> str:
    """The device of embedding shard `shard`. On a machine with several visible GPUs,
    'auto' and 'cuda' spread shards round-robin (shard i on GPU i mod count); a worker
    restricted to one GPU (CUDA_VISIBLE_DEVICES) always gets that one. An explicit
    'cuda:N' or 'cpu' is kept."""
    if device not in ("auto", "cuda"):
        return device
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count <= 1:
        return device
    return f"cuda:{shard % count}"
