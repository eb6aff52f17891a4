#!/usr/bin/env bash
# The GPU figures of issue 18 in one command, on a machine with a CUDA build of torch:
#   bash benchmarks/gpu_embedding.sh            (PYTHON=... to use another interpreter)
# 1. ESM-2 650M architecture (random weights), bf16, 2,000 influenza-length proteins of
#    which 5% longer than 1,022 residues: naive HF loop, fair-esm-style loop, segpair
#    padded, segpair packed (and compiled): tokens/s, MFU on real tokens, peak memory,
#    cosines against fp32 one sequence at a time.
# 2. With several GPUs: the sharded cache build, one shard per GPU, against one GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
"$PYTHON" benchmarks/embed_throughput.py --gpu --repeats 2
gpus="$("$PYTHON" -c 'import torch; print(torch.cuda.device_count())')"
if [ "$gpus" -gt 1 ]; then
    "$PYTHON" benchmarks/sharded_embedding.py --device cuda --arch 650m --isolates 500 \
        --shards "$gpus"
else
    echo "one GPU: the sharded build across GPUs is not measured"
fi
