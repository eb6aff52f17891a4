"""What every embedder provides, and what an embedding call returns."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

InputKind = Literal["protein", "nucleotide"]
# A merged embedder whose sources read different sequences has a joined kind, e.g.
# "nucleotide+protein", and takes each protein's sequences joined by INPUT_SEPARATOR in
# that order (a character no sequence holds).
KIND_JOIN = "+"
INPUT_SEPARATOR = "\x1f"


def input_kinds(input_kind: str) -> list[str]:
    """The sequence kinds an embedder reads: one, or several for a merged embedder."""
    return input_kind.split(KIND_JOIN)


@dataclass
class EmbedOutput:
    """Vectors for the sequences that embedded, by input position, and why others did not."""

    vectors: np.ndarray  # (n_ok, dim) float32, rows in the order of `ok`
    ok: list[int]  # input positions embedded
    failed: dict[int, str] = field(default_factory=dict)  # input position -> reason
    truncated: int = 0  # sequences cut to the model's maximum length
    tokens: int = 0  # tokens processed (for throughput)
    outside_alphabet: int = 0  # sequences refused for letters the model cannot read


class Embedder(Protocol):
    """A featurizer or language model that maps sequences to fixed-size vectors."""

    name: str
    input_kind: InputKind

    @property
    def dim(self) -> int: ...

    def describe(self) -> dict:
        """Everything that changes the vectors (model, pooling, layer, length, precision...)."""
        ...

    def embed(self, sequences: list[str]) -> EmbedOutput: ...


def signature_of(description: dict) -> str:
    """A short stable hash of an embedder's description: equal signatures, equal vectors."""
    blob = json.dumps(description, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of `a` with the same row of `b` (0 for a zero row)."""
    na = np.maximum(np.linalg.norm(a, axis=1), 1e-12)
    nb = np.maximum(np.linalg.norm(b, axis=1), 1e-12)
    return (a * b).sum(axis=1) / na / nb
