"""Token-budget batching over length-sorted sequences (as fair-esm's `toks_per_batch`).

Sorting by length keeps padding small; a budget of tokens (longest sequence x batch
size) rather than a fixed count keeps memory flat across short and long proteins. Packed
batches (no padding, `segpair.embeddings.packed`) count their real tokens instead.
"""

from __future__ import annotations

from collections.abc import Sequence


def token_budget_batches(
    lengths: Sequence[int], toks_per_batch: int, extra_tokens: int = 2, packed: bool = False
) -> list[list[int]]:
    """Indices into `lengths`, grouped so each batch's padded size (`packed`: its sum of
    tokens) fits the budget.

    Each sequence costs `length + extra_tokens` (special tokens). A sequence longer
    than the budget gets a batch of its own rather than being dropped.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    longest = total = 0
    for i in order:
        size = lengths[i] + extra_tokens
        cost = total + size if packed else max(longest, size) * (len(current) + 1)
        if current and cost > toks_per_batch:
            batches.append(current)
            current, longest, total = [], 0, 0
        current.append(i)
        longest, total = max(longest, size), total + size
    if current:
        batches.append(current)
    return batches
