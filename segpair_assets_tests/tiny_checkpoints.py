"""Tiny segpair checkpoints and simulated inputs for the scoring CLI's refusals: an
untrained classifier saved the way the training asset saves one (the refusals never
depend on what the model learned), and simulated data versions of two viruses."""

from __future__ import annotations

from pathlib import Path

import torch

from segpair.embeddings.base import signature_of
from segpair.embeddings.kmer import KmerEmbedder
from segpair.registry import VirusSpec
from segpair.simulator import SimulationConfig, simulate_population, write_data_version
from segpair.training.checkpoint import save_checkpoint
from segpair.training.model import PairClassifier

KMERS = {"kmer_aa3": ("protein", 3), "kmer_nt6": ("nucleotide", 6)}


def tiny_checkpoint(
    path: Path,
    embedder: str = "kmer_aa3",
    virus: str = "flu_a",
    schema_pairs: list[list[str]] | None = (("HA", "NA"),),
) -> Path:
    """An untrained k-mer pair classifier saved as `path`, with the metadata training writes."""
    alphabet, k = KMERS[embedder]
    emb = KmerEmbedder(embedder, alphabet, k)
    torch.manual_seed(0)
    model = PairClassifier(emb.dim, ["diff", "prod"], [8], 0.0, "l2")
    meta = {"embedder": embedder, "signature": signature_of(emb.describe()), "dim": emb.dim,
            "embedder_description": emb.describe(), "interactions": ["diff", "prod"],
            "slot_transform": "l2", "hidden": [8], "dropout": 0.0, "threshold": 0.5,
            "schema_pairs": [list(p) for p in schema_pairs] if schema_pairs else None,
            "virus": virus, "data_version": "simulated_v1"}  # fmt: skip
    return save_checkpoint(path, model, meta)


def simulated_folder(folder: Path, virus: VirusSpec, n_isolates: int = 16) -> Path:
    """A SIMULATED data version folder (nucleotide segments + isolate table)."""
    config = SimulationConfig(n_isolates=n_isolates, seed=3)
    return write_data_version(simulate_population(virus, config), folder, virus, config)


def protein_fasta(proteins, path: Path) -> Path:
    """The proteins as a protein FASTA whose headers name protein, strain and segment."""
    with path.open("w") as fh:
        for r in proteins.itertuples():
            fh.write(f">{r.brc_fea_id} {r.function} protein strain:{r.assembly_id} "
                     f"[segment {r.segment}]\n{r.prot_seq}\n")  # fmt: skip
    return path
