"""The pair classifier: per-slot transform, interaction features, an MLP, one logit."""

from __future__ import annotations

import torch
from torch import nn

from segpair.training.features import Interaction, SlotTransform, feature_dim, interaction_features


class PairClassifier(nn.Module):
    def __init__(
        self,
        dim: int,
        interactions: list[Interaction],
        hidden: list[int],
        dropout: float = 0.1,
        slot_transform: SlotTransform = "none",
    ):
        super().__init__()
        self.dim, self.interactions, self.slot_transform = dim, list(interactions), slot_transform
        self.norm_a = nn.LayerNorm(dim) if slot_transform == "slot_norm" else nn.Identity()
        self.norm_b = nn.LayerNorm(dim) if slot_transform == "slot_norm" else nn.Identity()
        layers: list[nn.Module] = []
        width = feature_dim(dim, self.interactions)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.slot_transform == "l2":
            a, b = nn.functional.normalize(a, dim=-1), nn.functional.normalize(b, dim=-1)
        a, b = self.norm_a(a), self.norm_b(b)
        return self.mlp(interaction_features(a, b, self.interactions)).squeeze(-1)
