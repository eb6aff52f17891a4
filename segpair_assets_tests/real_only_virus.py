"""An 11-segment virus for real data only (rotavirus-A-like, no simulation section) and a
small hand-made data version of it: what a user adds to study a virus of their own."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# (segment number, protein, rough length in amino acids)
ROTA_PROTEINS = [
    (1, "VP1", 1088), (2, "VP2", 880), (3, "VP3", 835), (4, "VP4", 776), (5, "NSP1", 491),
    (6, "VP6", 397), (7, "NSP3", 313), (8, "NSP2", 317), (9, "VP7", 326), (10, "NSP4", 175),
    (11, "NSP5", 198),
]  # fmt: skip

_SEGMENT = """
[[rota.segments]]
name = "{n}"
number = "{n}"
proteins = [{{ name = "{p}", expected_length = {length}, product_patterns = ['\\b{lower}\\b'] }}]
"""

# One registry entry, nothing else: no simulation section, so no demo data.
ROTA_REGISTRY = (
    '[rota]\ndisplay_name = "Rotavirus A"\norganism_patterns = ["rotavirus a"]\n'
    + "".join(
        _SEGMENT.format(n=n, p=p, length=length, lower=p.lower()) for n, p, length in ROTA_PROTEINS
    )
)

_AMINO = np.array(list("ACDEFGHIKLMNPQRSTVWY"))


def write_rota_data_version(folder: Path, n_isolates: int = 20, seed: int = 0) -> Path:
    """A protein FASTA: every isolate with its 11 proteins (random sequences of about the
    expected length), headers naming the strain, the segment and the protein."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(1, n_isolates + 1):
        for n, protein, length in ROTA_PROTEINS:
            acc = f"QRV{i:03d}{n:02d}.1"
            seq = "M" + "".join(rng.choice(_AMINO, size=length - 1 + int(rng.integers(-9, 10))))
            lines += [f">{acc} Rotavirus A strain RVA/Test/{i} segment {n} ({protein})", seq]
    (folder / "proteins.fasta").write_text("\n".join(lines) + "\n")
    return folder
