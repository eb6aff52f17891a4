"""Neighbour evidence: what the labelled training pairs say about a new pair (a, b).

Near-identical sequences dominate real genome collections, which is why a 1-nearest-
neighbour lookup is a strong baseline. The default pair model learns on top of that
evidence instead of competing with it. For a pair it computes, against a bank of
training pairs (unit vectors):

- joint similarity: is there one training isolate with a protein like `a` AND one
  like `b` (`joint_min`, `joint_mean`, and a soft maximum over the bank, `soft`)?
- partner agreement: do the isolate partners of `a`'s nearest slot-A neighbours
  resemble `b` (`part_a1`, `part_a5`), and the reverse (`part_b1`, `part_b5`)?
- the same against the training negatives (`n_*`), and the differences (`d_*`).

Similarities s are mapped to -log(1 + 1e-4 - s), so 0.999 and 0.9999 stay apart.
Training pairs get their features leave-own-isolate-out (every bank entry sharing an
isolate with the pair is masked), as a new pair from new isolates would see the bank.
Everything is a torch buffer: the bank travels in the checkpoint and on the device.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

FEATURES = [
    "max_sa", "max_sb", "joint_min", "joint_mean", "part_a1", "part_a5", "part_b1", "part_b5",
    "soft", "n_joint_min", "n_joint_mean", "n_part_a5", "n_part_b5", "n_soft",
    "d_joint_mean", "d_joint_min", "d_soft",
]  # fmt: skip
EPS = 1e-4
MASKED = -1.0  # similarity given to masked bank entries (the minimum of a cosine)
STD_FLOOR = 0.05  # standardisation never divides by less (features span ~0 to 9)
CLIP = 6.0  # standardised features are clipped to +-CLIP


def _closeness(s: torch.Tensor) -> torch.Tensor:
    return -torch.log1p(EPS - torch.clamp(s, max=1.0))


def _partner(s_key: torch.Tensor, s_other: torch.Tensor, k: int) -> torch.Tensor:
    """Max of `s_other` over the k bank entries with the highest `s_key`, per query."""
    k = min(k, s_key.shape[1])
    idx = torch.topk(s_key, k, dim=1).indices
    return torch.gather(s_other, 1, idx).max(dim=1).values


def _soft_max(sa: torch.Tensor, sb: torch.Tensor, tau: float) -> torch.Tensor:
    return tau * torch.logsumexp((sa + sb) / (2 * tau), dim=1)


def _unit(x: torch.Tensor) -> torch.Tensor:
    return nn.functional.normalize(x.float(), dim=-1)


class NeighbourEvidence(nn.Module):
    """The features of `FEATURES` for pairs, against a bank of training pairs."""

    def __init__(self, dim: int, n_pos: int, n_neg: int, tau: float = 0.01):
        super().__init__()
        self.tau = tau
        for name, n in (("pos_a", n_pos), ("pos_b", n_pos), ("neg_a", n_neg), ("neg_b", n_neg)):
            self.register_buffer(name, torch.zeros(n, dim))
        for name, n in (("pos_iso", n_pos), ("neg_iso_a", n_neg), ("neg_iso_b", n_neg)):
            self.register_buffer(name, torch.full((n,), -1, dtype=torch.long))

    @classmethod
    def from_pairs(cls, a, b, y, iso_a, iso_b, tau: float = 0.01) -> NeighbourEvidence:
        """A bank of labelled pairs; `iso_a`/`iso_b` are integer isolate codes."""
        y = np.asarray(y) == 1
        bank = cls(a.shape[1], int(y.sum()), int((~y).sum()), tau)
        t = lambda x: torch.as_tensor(np.asarray(x))  # noqa: E731
        bank.pos_a, bank.pos_b = _unit(t(a[y])), _unit(t(b[y]))
        bank.neg_a, bank.neg_b = _unit(t(a[~y])), _unit(t(b[~y]))
        bank.pos_iso = t(iso_a[y]).long()
        bank.neg_iso_a, bank.neg_iso_b = t(iso_a[~y]).long(), t(iso_b[~y]).long()
        return bank

    def _masked(self, iso_a, iso_b):
        """Bank entries sharing an isolate with each query (leave-own-isolate-out)."""
        ia, ib = iso_a[:, None], iso_b[:, None]
        pos = (self.pos_iso[None] == ia) | (self.pos_iso[None] == ib)
        neg = (self.neg_iso_a[None] == ia) | (self.neg_iso_a[None] == ib)
        neg |= (self.neg_iso_b[None] == ia) | (self.neg_iso_b[None] == ib)
        return pos, neg

    def forward(self, a, b, iso_a=None, iso_b=None) -> torch.Tensor:
        a, b = _unit(a), _unit(b)
        sa, sb = a @ self.pos_a.T, b @ self.pos_b.T
        na, nb = a @ self.neg_a.T, b @ self.neg_b.T
        if iso_a is not None:
            pos, neg = self._masked(iso_a, iso_b)
            sa, sb = sa.masked_fill(pos, MASKED), sb.masked_fill(pos, MASKED)
            na, nb = na.masked_fill(neg, MASKED), nb.masked_fill(neg, MASKED)
        f = {
            "max_sa": sa.max(1).values, "max_sb": sb.max(1).values,
            "joint_min": torch.minimum(sa, sb).max(1).values,
            "joint_mean": ((sa + sb) / 2).max(1).values,
            "part_a1": _partner(sa, sb, 1), "part_a5": _partner(sa, sb, 5),
            "part_b1": _partner(sb, sa, 1), "part_b5": _partner(sb, sa, 5),
            "n_joint_min": torch.minimum(na, nb).max(1).values,
            "n_joint_mean": ((na + nb) / 2).max(1).values,
            "n_part_a5": _partner(na, nb, 5), "n_part_b5": _partner(nb, na, 5),
        }  # fmt: skip
        f = {k: _closeness(v) for k, v in f.items()}
        f["soft"], f["n_soft"] = _soft_max(sa, sb, self.tau), _soft_max(na, nb, self.tau)
        f["d_joint_mean"] = f["joint_mean"] - f["n_joint_mean"]
        f["d_joint_min"] = f["joint_min"] - f["n_joint_min"]
        f["d_soft"] = f["soft"] - f["n_soft"]
        return torch.stack([f[k] for k in FEATURES], dim=1)


class SlotProjection(nn.Module):
    """A linear projection fitted on training proteins only (truncated SVD), so the model
    also sees where a pair lies in sequence space, not only how close its neighbours are."""

    def __init__(self, dim: int, k: int):
        super().__init__()
        self.register_buffer("components", torch.zeros(dim, k))
        self.register_buffer("scale", torch.ones(()))

    @classmethod
    def fit(cls, proteins: np.ndarray, k: int, seed: int) -> SlotProjection:
        from sklearn.decomposition import TruncatedSVD

        x = np.unique(np.asarray(proteins, np.float32), axis=0)
        k = int(max(1, min(k, x.shape[0] - 1, x.shape[1] - 1)))
        svd = TruncatedSVD(k, random_state=seed, algorithm="randomized", n_iter=4).fit(x)
        proj = cls(x.shape[1], k)
        proj.components = torch.as_tensor(svd.components_.T.astype(np.float32))
        z = x @ svd.components_.T
        proj.scale = torch.tensor(float(np.sqrt((z**2).sum(1).mean())) or 1.0)
        return proj

    @property
    def k(self) -> int:
        return self.components.shape[1]

    def forward(self, a, b) -> torch.Tensor:
        pa, pb = a.float() @ self.components / self.scale, b.float() @ self.components / self.scale
        return torch.cat([pa, pb, (pa - pb).abs(), pa * pb], dim=1)


class NeighbourPairClassifier(nn.Module):
    """Neighbour evidence (+ a projected view of the pair), standardised, into an MLP."""

    def __init__(self, evidence: NeighbourEvidence, projection: SlotProjection | None, hidden,
                 dropout: float = 0.1):  # fmt: skip
        super().__init__()
        self.evidence, self.projection = evidence, projection
        width = len(FEATURES) + (4 * projection.k if projection is not None else 0)
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("std", torch.ones(width))
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(width, h), nn.GELU(), nn.Dropout(dropout)]
            width = h
        self.mlp = nn.Sequential(*layers, nn.Linear(width, 1))

    def features(self, a, b, iso_a=None, iso_b=None) -> torch.Tensor:
        """Standardised inputs of the MLP (raw until `standardise` has been called)."""
        # Vectors as the fp16 master cache stores them: the features resolve similarities
        # near 1, so a freshly embedded protein must look exactly like its cached copy.
        a, b = a.half().float(), b.half().float()
        f = self.evidence(a, b, iso_a, iso_b)
        if self.projection is not None:
            f = torch.cat([f, self.projection(a, b)], dim=1)
        # Clipped: a feature nearly constant in training must not turn a small change in a
        # new pair into an extreme input the MLP never saw.
        return ((f - self.mean) / self.std).clamp(-CLIP, CLIP)

    def standardise(self, raw: torch.Tensor) -> None:
        self.mean = raw.mean(0)
        self.std = raw.std(0).clamp_min(STD_FLOOR)

    def forward(self, a, b) -> torch.Tensor:
        return self.mlp(self.features(a, b)).squeeze(-1)
