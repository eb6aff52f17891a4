"""A seeded simulator of a reassorting segmented-virus population (SIMULATED data).

Model, per virus preset in the registry:

- Co-circulating lineages (for influenza A: human H3N2 and H1N1pdm, swine, avian
  H9N2 and H5N1) descend from one root genome. Each lineage's founder differs
  from the root at `founder_divergence` of its coding sites per segment, so HA
  and NA differ across subtypes far more than PB1 does.
- Isolates are sampled through time. Each isolate copies a recent isolate of its
  lineage (a parent within the last `parent_window` of that lineage) and every
  segment accumulates Poisson-many nucleotide substitutions at
  `substitutions_per_site` x the segment's `relative_rate` (PB1 slowest, HA/NA
  fastest, after the conservation the seeds report). Substitutions that would
  create a stop codon are rejected (purifying selection keeps the ORF).
- With probability `reassortment_rate` an isolate is a reassortant: a random
  non-empty, proper subset of its segments comes from a recent isolate of another
  lineage, so each segment follows its own genealogy and subtypes mix (H1N2).
- Segments are written as whole records (UTRs + ORF; ambisense S segments carry
  N on one strand and NSs on the other), to be read back through the FASTA reader
  and translated like real data. Slow segments produce identical proteins across
  isolates, as conserved real proteins do.
- Some isolates miss segments (`missing_segment_rate`), as incomplete genomes do.

Everything derives from `seed`; the same config gives the same files.
"""

from __future__ import annotations

import gzip
import json
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from Bio.Data import CodonTable

from segpair.atomic import atomic_path, write_text_atomic
from segpair.cleaning import build_protein_final
from segpair.errors import InputDataError
from segpair.readers.common import records_frame
from segpair.registry import SimulationPreset, VirusSpec

BASES = np.frombuffer(b"ACGT", dtype=np.uint8)
UPSTREAM_STOP = np.array([3, 2, 0], dtype=np.uint8)  # TGA
SIMULATED_LABEL = "SIMULATED"
COUNTRIES = ["USA", "China", "Japan", "South Korea", "Viet Nam", "Germany", "Brazil", "Egypt"]


def _codon_lookup() -> tuple[np.ndarray, np.ndarray]:
    """Amino acid (ASCII) per codon index 16*b1 + 4*b2 + b3 (A=0 C=1 G=2 T=3), and stop mask."""
    table = CodonTable.unambiguous_dna_by_id[1]
    aa = np.zeros(64, dtype=np.uint8)
    stop = np.zeros(64, dtype=bool)
    for i in range(64):
        codon = "".join("ACGT"[(i >> s) & 3] for s in (4, 2, 0))
        if codon in table.stop_codons:
            aa[i], stop[i] = ord("*"), True
        else:
            aa[i] = ord(table.forward_table[codon])
    return aa, stop


CODON_AA, CODON_STOP = _codon_lookup()
SENSE_CODONS = np.flatnonzero(~CODON_STOP)


@dataclass(frozen=True)
class SimulationConfig:
    n_isolates: int = 400
    seed: int = 20240601
    first_year: int = 2009
    last_year: int = 2020
    parent_window: int = 40
    substitutions_per_site: float = 0.0015
    utr_length: int = 30
    reassortment_rate: float | None = None  # None: the virus preset's
    missing_segment_rate: float | None = None  # None: the virus preset's
    batch: str = ""  # letters added to ids and accessions, so batches can be combined


@dataclass
class SimulatedPopulation:
    """Ground truth of one simulation. All of it is SIMULATED."""

    isolates: pd.DataFrame  # one row per isolate, with the lineage of each segment
    records: pd.DataFrame  # one row per segment record: accession, isolate, segment, nt
    proteins: pd.DataFrame  # one row per protein: what translation of the records gives

    def protein_final(self, virus: VirusSpec) -> pd.DataFrame:
        """The proteins as a protein_final table (with each isolate's subtype, host and
        year), cleaned as the asset cleans, without writing and reading the files."""
        rows = self.proteins.merge(self.isolates[["assembly_id", "subtype", "host", "year"]])
        rows = rows.assign(source="sim", product=rows["function"])
        return build_protein_final(records_frame(rows.to_dict("records")), virus)[0]


def _codons_to_nt(codons: np.ndarray) -> np.ndarray:
    """Codon indices (n,) -> base indices (3n,)."""
    return np.stack([(codons >> 4) & 3, (codons >> 2) & 3, codons & 3], axis=-1).reshape(-1)


def _translate(nt: np.ndarray) -> np.ndarray:
    """Base indices (..., 3L) -> amino-acid bytes (..., L)."""
    c = nt.reshape(*nt.shape[:-1], -1, 3).astype(np.int64)
    return CODON_AA[16 * c[..., 0] + 4 * c[..., 1] + c[..., 2]]


def _mutate(seq: np.ndarray, n_subs: int, rng: np.random.Generator) -> np.ndarray:
    """Copy of a CDS (start and stop codons fixed) with substitutions, none creating a stop."""
    child = seq.copy()
    if n_subs <= 0:
        return child
    pos = rng.integers(3, len(seq) - 3, size=n_subs)
    child[pos] = (child[pos] + rng.integers(1, 4, size=n_subs)) % 4
    codon_start = (pos // 3) * 3
    idx = (
        16 * child[codon_start].astype(np.int64)
        + 4 * child[codon_start + 1]
        + child[codon_start + 2]
    )
    bad = codon_start[CODON_STOP[idx]]
    for offset in range(3):
        child[bad + offset] = seq[bad + offset]
    return child


def _random_cds(n_codons: int, rng: np.random.Generator) -> np.ndarray:
    body = rng.choice(SENSE_CODONS, size=n_codons - 1)
    codons = np.concatenate([[14], body, [48]])  # ATG ... TAA
    return _codons_to_nt(codons).astype(np.uint8)


def _diverge(seq: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    return _mutate(seq, int(round(fraction * (len(seq) - 6))), rng)


def _revcomp(nt: np.ndarray) -> np.ndarray:
    return (3 - nt)[::-1]


def _preset(virus: VirusSpec) -> SimulationPreset:
    if virus.simulation is None:
        raise InputDataError(
            f"virus {virus.name!r}",
            f"has no [{virus.name}.simulation] section in the registry, so there is nothing to "
            "simulate (it takes real data only)",
            f"add a [{virus.name}.simulation] section like flu_a's in segpair/viruses.toml, or "
            f"materialize a real data version (segpair materialize -v {virus.name} -d VERSION)",
        )
    return virus.simulation


def simulate_population(virus: VirusSpec, config: SimulationConfig) -> SimulatedPopulation:
    preset = _preset(virus)
    rng = np.random.default_rng(config.seed)
    reassort = (
        preset.reassortment_rate if config.reassortment_rate is None else config.reassortment_rate
    )
    missing = (
        preset.missing_segment_rate
        if config.missing_segment_rate is None
        else config.missing_segment_rate
    )
    lineages = preset.lineages
    n_lin, n = len(lineages), config.n_isolates
    # (segment index, protein) for every CDS the simulator evolves
    cds_specs = [(si, p) for si, s in enumerate(virus.segments) for p in s.primary_proteins]

    # Founders: one root per CDS, diverged per lineage; UTRs fixed per lineage.
    founders = []
    for _si, prot in cds_specs:
        root = _random_cds(prot.expected_length, rng)
        div = virus.segments[_si].founder_divergence
        founders.append([_diverge(root, div, rng) for _ in range(n_lin)])
    utrs = rng.integers(0, 4, size=(n_lin, len(virus.segments), 2, config.utr_length)).astype(
        np.uint8
    )

    shares = np.array([lin.share for lin in lineages], dtype=float)
    lineage_of = rng.choice(n_lin, size=n, p=shares / shares.sum())
    years = np.sort(rng.integers(config.first_year, config.last_year + 1, size=n))
    is_reassortant = rng.random(n) < reassort

    n_seg = len(virus.segments)
    cds = [np.empty((n, len(f[0])), dtype=np.uint8) for f in founders]
    seg_lineage = np.empty((n, n_seg), dtype=np.int64)
    recent = [deque(maxlen=config.parent_window) for _ in range(n_lin)]
    rates = [
        config.substitutions_per_site * virus.segments[si].relative_rate for si, _p in cds_specs
    ]

    def source(lin: int) -> int:
        """A recent isolate of lineage `lin`, or -1 - lin for its founder."""
        pool = recent[lin]
        return pool[rng.integers(len(pool))] if pool else -1 - lin

    for i in range(n):
        k = int(lineage_of[i])
        parent_of_seg = np.full(n_seg, source(k))
        if is_reassortant[i] and n_lin > 1 and n_seg > 1:
            other = int(rng.choice([j for j in range(n_lin) if j != k]))
            take = rng.random(n_seg) < 0.5
            if not take.any() or take.all():
                take[:] = False
                take[rng.integers(n_seg)] = True
            parent_of_seg[take] = source(other)
        for c, (si, _p) in enumerate(cds_specs):
            par = parent_of_seg[si]
            template = founders[c][-1 - par] if par < 0 else cds[c][par]
            cds[c][i] = _mutate(template, rng.poisson(rates[c] * len(template)), rng)
        for si in range(n_seg):
            par = parent_of_seg[si]
            seg_lineage[i, si] = -1 - par if par < 0 else seg_lineage[par, si]
        recent[k].append(i)

    if config.batch and not config.batch.isalpha():
        raise ValueError(f"batch must be letters only, not {config.batch!r}")
    isolate_ids = [f"sim_{virus.name}_{config.batch.lower()}{i:06d}" for i in range(n)]
    subtype_idx = [virus.segment_names.index(s) for s in preset.subtype_segments]
    subtypes = [
        "".join(
            lineages[seg_lineage[i, si]].labels.get(virus.segment_names[si], "")
            for si in subtype_idx
        )
        for i in range(n)
    ]
    hosts = [lineages[k].host for k in lineage_of]
    countries = rng.choice(COUNTRIES, size=n)
    if virus.name.startswith("flu"):
        names = [
            f"A/{'' if hosts[i] == 'Human' else hosts[i].lower() + '/'}Simland-{lineage_of[i] + 1}"
            f"/{i}/{years[i]}"
            for i in range(n)
        ]
    else:
        names = [f"SIM-{i:06d}" for i in range(n)]
    isolates = pd.DataFrame(
        {
            "assembly_id": isolate_ids,
            "isolate_name": names,
            "lineage": [lineages[k].name for k in lineage_of],
            "subtype": subtypes,
            "host": hosts,
            "year": years,
            "country": countries,
            "reassortant": [bool(len(set(seg_lineage[i])) > 1) for i in range(n)],
            **{
                f"lineage_{s}": [lineages[j].name for j in seg_lineage[:, si]]
                for si, s in enumerate(virus.segment_names)
            },
        }
    )

    # Which segments each isolate has: missing ones dropped, never all of them.
    present = rng.random((n, n_seg)) >= missing
    present[~present.any(axis=1), 0] = True

    proteins_aa = [_translate(m) for m in cds]
    record_rows, protein_rows = [], []
    for si, seg in enumerate(virus.segments):
        cds_idx = [c for c, (s, _p) in enumerate(cds_specs) if s == si]
        for i in np.flatnonzero(present[:, si]):
            acc = f"SM{config.batch.upper()}{i * n_seg + si:07d}"
            lin = seg_lineage[i, si]
            # An in-frame stop right before each ATG keeps the ORF from reaching into the UTR.
            parts = [np.concatenate([UPSTREAM_STOP, cds[c][i]]) for c in cds_idx]
            if seg.ambisense and len(parts) == 2:
                spacer = utrs[lin, si, 1]
                body = np.concatenate([parts[0], spacer, _revcomp(parts[1])])
            else:
                body = np.concatenate(parts)
            nt = np.concatenate([utrs[lin, si, 0], body, utrs[lin, si, 1]])
            record_rows.append(
                {
                    "accession": acc,
                    "assembly_id": isolate_ids[i],
                    "segment": seg.name,
                    "segment_number": seg.number,
                    "segment_lineage": lineages[lin].name,
                    "nt_seq": BASES[nt].tobytes().decode(),
                }
            )
            for c in cds_idx:
                prot = cds_specs[c][1].name
                protein_rows.append(
                    {
                        "brc_fea_id": f"{acc}:{prot}",
                        "assembly_id": isolate_ids[i],
                        "segment": seg.name,
                        "function": prot,
                        "prot_seq": proteins_aa[c][i, :-1].tobytes().decode(),
                        "nt_seq": BASES[cds[c][i, :-3]].tobytes().decode(),
                    }
                )
    records = pd.DataFrame(record_rows).merge(isolates, on="assembly_id", how="left")
    return SimulatedPopulation(isolates, records, pd.DataFrame(protein_rows))


def _header(row: pd.Series, virus: VirusSpec) -> str:
    organism = f"{virus.display_name} ({SIMULATED_LABEL})"
    strain = row["isolate_name"]
    return (
        f"sim:{row['accession']}|Organism:{organism} {strain}|Segment:{row['segment_number']}"
        f"|Subtype:{row['subtype']}|Host:{row['host']} [segment {row['segment_number']}]"
    )


def write_data_version(
    population: SimulatedPopulation, folder: Path, virus: VirusSpec, config: SimulationConfig
) -> Path:
    """Write a simulated data version folder that the FASTA reader reads like real data.

    Files: `segments.fasta.gz` (whole segments), `segments.tsv` (accession -> isolate,
    metadata and the true lineage of each segment), `manifest.toml` (origin =
    "simulated" and the simulation parameters), `SIMULATED.txt`. The manifest is
    written last, so a folder with a manifest is complete.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rec = population.records
    with atomic_path(folder / "segments.fasta.gz") as tmp, gzip.open(tmp, "wt") as fh:
        for row in rec.itertuples(index=False):
            fh.write(f">{_header(pd.Series(row._asdict()), virus)}\n")
            seq = row.nt_seq
            fh.write("\n".join(seq[j : j + 70] for j in range(0, len(seq), 70)) + "\n")
    meta = rec.drop(columns=["nt_seq", "segment_number"]).rename(
        columns={"assembly_id": "genome_id", "isolate_name": "strain"}
    )
    with atomic_path(folder / "segments.tsv") as tmp:
        meta.to_csv(tmp, sep="\t", index=False)
    write_text_atomic(
        folder / "SIMULATED.txt",
        f"{SIMULATED_LABEL} DATA. Generated by segpair.simulator; not real sequences.\n"
        f"virus={virus.name} isolates={len(population.isolates)} records={len(rec)}\n",
    )
    params = {k: v for k, v in asdict(config).items() if v is not None}
    manifest = (
        'format = "fasta"\norigin = "simulated"\n'
        f'description = "{SIMULATED_LABEL}: {len(population.isolates)} isolates of '
        f'{virus.display_name}, reassorting lineages (segpair.simulator)"\n\n'
        '[fasta]\nfiles = ["segments.fasta.gz"]\nmetadata_table = "segments.tsv"\n'
        'accession_column = "accession"\nisolate_column = "genome_id"\n\n'
        f"[simulation]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in params.items())
    )
    write_text_atomic(folder / "manifest.toml", manifest)
    return folder


def ensure_demo_data_version(folder: Path, virus: VirusSpec, data_version: str) -> bool:
    """Write the virus's demo data version (SIMULATED) if that is what is asked for and it
    is absent; True when written. Any other data version is left to the user, and so is
    every data version of a virus without a simulation section (it has no demo)."""
    if virus.demo_data_version is None or data_version != virus.demo_data_version:
        return False
    if (folder / "manifest.toml").exists():
        return False
    config = SimulationConfig()
    write_data_version(simulate_population(virus, config), folder, virus, config)
    return True
