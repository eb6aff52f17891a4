"""Token-budget batching over length-sorted sequences (as fair-esm's `toks_per_batch`).

Sorting by length keeps padding small; a budget of tokens (longest sequence x batch
size) rather than a fixed count keeps memory flat across short and long proteins.
"""

from __future__ import annotations

from collections.abc import Sequence


def token_budget_batches(
    lengths: Sequence[int], toks_per_batch: int, extra_tokens: int = 2
) -> list[list[int]]:
    """Indices into `lengths`, grouped so each batch's padded size fits the budget.

    Each sequence costs `length + extra_tokens` (special tokens). A sequence longer
    than the budget gets a batch of its own rather than being dropped.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        size = lengths[i] + extra_tokens
        if current and max(longest, size) * (len(current) + 1) > toks_per_batch:
            batches.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, size)
    if current:
        batches.append(current)
    return batches
