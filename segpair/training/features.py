"""Pair features from two frozen embeddings: per-slot transform, then interactions.

Interactions (any combination, in this order): `concat` = [a, b], `diff` = |a - b|,
`prod` = a * b, `unit_diff` = |a/|a| - b/|b||. The per-slot transform runs first:
`none`, `l2` (unit norm), or `slot_norm` (a learnable LayerNorm per slot, in the model).
"""

from __future__ import annotations

from typing import Literal

import torch

Interaction = Literal["concat", "diff", "prod", "unit_diff"]
SlotTransform = Literal["none", "l2", "slot_norm"]
INTERACTIONS: tuple[Interaction, ...] = ("concat", "diff", "prod", "unit_diff")


def feature_dim(dim: int, interactions: list[Interaction]) -> int:
    return sum(2 * dim if i == "concat" else dim for i in interactions)


def validate_interactions(interactions: list[str]) -> list[Interaction]:
    unknown = [i for i in interactions if i not in INTERACTIONS]
    if unknown or not interactions:
        raise ValueError(
            f"interactions must be a non-empty subset of {INTERACTIONS}, not {interactions}"
        )
    return list(interactions)


def interaction_features(a: torch.Tensor, b: torch.Tensor, interactions: list[Interaction]):
    validate_interactions(interactions)
    parts = []
    for name in INTERACTIONS:  # fixed order, whatever order the config lists them in
        if name not in interactions:
            continue
        if name == "concat":
            parts += [a, b]
        elif name == "diff":
            parts.append((a - b).abs())
        elif name == "prod":
            parts.append(a * b)
        else:
            ua = torch.nn.functional.normalize(a, dim=-1)
            ub = torch.nn.functional.normalize(b, dim=-1)
            parts.append((ua - ub).abs())
    return torch.cat(parts, dim=-1)
