"""k-mer count featurizer for amino-acid or nucleotide sequences; needs no weights.

Each sequence becomes the counts of its overlapping k-mers over the alphabet
(20 amino acids, or ACGT), optionally L2-normalised. k-mers containing any other
symbol (X, N, ...) are skipped. The vector has |alphabet|^k dimensions (8000 for
amino-acid 3-mers, 4096 for nucleotide 6-mers). Nucleotide 6-mers have matched or
beaten ESM-2 at segment pairing in published work, so this is a first-class embedder.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from segpair.embeddings.base import EmbedOutput, InputKind

ALPHABETS = {"protein": "ACDEFGHIKLMNPQRSTVWY", "nucleotide": "ACGT"}
MAX_DIM = 2**20


class KmerEmbedder:
    def __init__(
        self,
        name: str = "kmer_aa3",
        alphabet: InputKind = "protein",
        k: int = 3,
        normalize: Literal["l2", "none"] = "l2",
    ):
        if alphabet not in ALPHABETS:
            raise ValueError(f"alphabet must be one of {list(ALPHABETS)}, not {alphabet!r}")
        size = len(ALPHABETS[alphabet]) ** k
        if k < 1 or size > MAX_DIM:
            raise ValueError(
                f"k={k} over the {alphabet} alphabet gives {size} dimensions; "
                f"choose k so that |alphabet|^k <= {MAX_DIM}"
            )
        self.name, self.input_kind, self.k, self.normalize = name, alphabet, k, normalize
        self.alphabet = ALPHABETS[alphabet]
        lut = np.full(256, -1, dtype=np.int64)
        for i, ch in enumerate(self.alphabet):
            lut[ord(ch)] = i
            lut[ord(ch.lower())] = i
        if alphabet == "nucleotide":
            lut[ord("U")] = lut[ord("u")] = self.alphabet.index("T")
        self._lut = lut
        self._powers = len(self.alphabet) ** np.arange(k - 1, -1, -1, dtype=np.int64)

    @property
    def dim(self) -> int:
        return len(self.alphabet) ** self.k

    def describe(self) -> dict:
        return {
            "family": "kmer",
            "model_name": f"kmer-{self.input_kind}-k{self.k}",
            "alphabet": self.alphabet,
            "k": self.k,
            "normalize": self.normalize,
            "dim": self.dim,
        }

    def counts(self, seq: str) -> np.ndarray:
        """Dense k-mer counts of one sequence (float32, length `dim`)."""
        codes = self._lut[np.frombuffer(seq.encode("ascii"), dtype=np.uint8)]
        n = len(codes) - self.k + 1
        if n <= 0:
            return np.zeros(self.dim, dtype=np.float32)
        windows = np.lib.stride_tricks.sliding_window_view(codes, self.k)
        valid = (windows >= 0).all(axis=1)
        index = windows[valid] @ self._powers
        return np.bincount(index, minlength=self.dim).astype(np.float32)

    def embed(self, sequences: list[str]) -> EmbedOutput:
        out = np.zeros((len(sequences), self.dim), dtype=np.float32)
        ok, failed = [], {}
        for i, seq in enumerate(sequences):
            if not seq:
                failed[i] = f"no {self.input_kind} sequence"
                continue
            vec = self.counts(seq)
            if not vec.any():
                failed[i] = f"no complete {self.k}-mer over {self.alphabet}"
                continue
            if self.normalize == "l2":
                vec /= np.linalg.norm(vec)
            out[len(ok)] = vec
            ok.append(i)
        return EmbedOutput(out[: len(ok)], ok, failed, tokens=sum(map(len, sequences)))
