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


def architecture(model: nn.Module) -> dict:
    """What a checkpoint records to rebuild `model` before loading its weights."""
    from segpair.training.neighbours import NeighbourPairClassifier

    if isinstance(model, NeighbourPairClassifier):
        ev, proj = model.evidence, model.projection
        return {"model": "neighbour_mlp", "bank_sizes": [len(ev.pos_iso), len(ev.neg_iso_a)],
                "projection_dim": proj.k if proj is not None else 0,
                "neighbour_tau": ev.tau}  # fmt: skip
    return {"model": "interaction_mlp"}


def build_model(meta: dict) -> nn.Module:
    """An untrained model of the architecture a checkpoint's metadata describes."""
    from segpair.training.neighbours import (
        NeighbourEvidence,
        NeighbourPairClassifier,
        SlotProjection,
    )

    if meta.get("model", "interaction_mlp") == "interaction_mlp":
        return PairClassifier(
            meta["dim"], meta["interactions"], meta["hidden"], meta["dropout"],
            meta["slot_transform"],
        )  # fmt: skip
    n_pos, n_neg = meta["bank_sizes"]
    evidence = NeighbourEvidence(meta["dim"], n_pos, n_neg, meta["neighbour_tau"])
    k = meta["projection_dim"]
    projection = SlotProjection(meta["dim"], k) if k else None
    return NeighbourPairClassifier(evidence, projection, meta["hidden"], meta["dropout"])
