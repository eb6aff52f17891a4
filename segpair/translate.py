"""Finding and translating the coding sequences of nucleotide segment records.

Complete segments carry UTRs, so the protein is found as an open reading frame
(ORF): an ATG-started stretch of codons without a stop, read with Biopython's
standard genetic code. Rule per segment, from the virus registry:

- one primary protein: the longest ORF on either strand is that protein;
- ambisense segments (Bunyavirales S): the longest ORF on each strand; the two
  are named by matching their lengths to the registry's expected lengths.

An ORF shorter than `min_orf_fraction` x the expected length is rejected, since
it means a partial or misannotated record rather than the protein.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from Bio.Seq import Seq

from segpair.registry import SegmentSpec

NUCLEOTIDE_CHARS = set("ACGTUNRYKMSWBDHV-")


@dataclass(frozen=True)
class Orf:
    strand: int  # +1 forward, -1 reverse complement
    start: int  # 0-based start on the input record, forward coordinates
    end: int  # 0-based exclusive end (stop codon excluded)
    nt_seq: str
    protein: str
    # False when the frame runs off the record's end: the record is cut inside the gene.
    has_stop: bool = True


def looks_like_nucleotide(seq: str, threshold: float = 0.9) -> bool:
    """True when at least `threshold` of the letters are nucleotide codes (gaps ignored)."""
    letters = [c for c in seq.upper() if c not in "-.*"]
    if not letters:
        return False
    nt = sum(c in "ACGTUN" for c in letters)
    return nt / len(letters) >= threshold


def normalize_nucleotide(seq: str) -> str:
    return re.sub(r"[\s\-.]", "", seq.upper()).replace("U", "T")


def _longest_orf_in_frame(protein: str) -> tuple[int, int, bool] | None:
    """(start, end, ends in a stop) in codons of the longest M-started stop-free stretch."""
    best: tuple[int, int, bool] | None = None
    pos = 0
    pieces = protein.split("*")
    for i, piece in enumerate(pieces):
        m = piece.find("M")
        if m >= 0:
            length = len(piece) - m
            if best is None or length > best[1] - best[0]:
                best = (pos + m, pos + len(piece), i < len(pieces) - 1)
        pos += len(piece) + 1
    return best


def longest_orf_per_strand(nt_seq: str) -> dict[int, Orf]:
    """The longest ORF on each strand of a (normalized) nucleotide sequence."""
    best: dict[int, Orf] = {}
    n = len(nt_seq)
    for strand, seq in ((1, nt_seq), (-1, str(Seq(nt_seq).reverse_complement()))):
        for frame in range(3):
            usable = (n - frame) // 3 * 3
            if usable < 3:
                continue
            protein = str(Seq(seq[frame : frame + usable]).translate())
            hit = _longest_orf_in_frame(protein)
            if hit is None:
                continue
            a, b, has_stop = hit
            if strand in best and (b - a) <= len(best[strand].protein):
                continue
            s_nt, e_nt = frame + 3 * a, frame + 3 * b
            start, end = (s_nt, e_nt) if strand == 1 else (n - e_nt, n - s_nt)
            best[strand] = Orf(strand, start, end, seq[s_nt:e_nt], protein[a:b], has_stop)
    return best


def find_segment_proteins(
    nt_seq: str, segment: SegmentSpec, min_orf_fraction: float = 0.5
) -> tuple[list[tuple[str, Orf]], list[str]]:
    """Proteins of one segment record as (protein name, ORF), plus problems found.

    A problem is a sentence naming what is missing, for example an ORF too short
    for the protein it should encode.
    """
    primaries = segment.primary_proteins
    per_strand = longest_orf_per_strand(nt_seq)
    problems: list[str] = []
    if not per_strand:
        return [], ["no ATG-started open reading frame on either strand"]
    if segment.ambisense and len(primaries) == 2:
        orfs = list(per_strand.values())
        if len(orfs) < 2:
            return [], ["ambisense segment but open reading frames on one strand only"]
        # Name the two ORFs by the assignment that best fits the expected lengths.
        a, b = orfs
        p, q = primaries
        straight = abs(len(a.protein) - p.expected_length) + abs(len(b.protein) - q.expected_length)
        swapped = abs(len(a.protein) - q.expected_length) + abs(len(b.protein) - p.expected_length)
        named = [(p.name, a), (q.name, b)] if straight <= swapped else [(q.name, a), (p.name, b)]
    else:
        orf = max(per_strand.values(), key=lambda o: len(o.protein))
        named = [(primaries[0].name, orf)]
    kept: list[tuple[str, Orf]] = []
    expected = {p.name: p.expected_length for p in primaries}
    for name, orf in named:
        floor = int(min_orf_fraction * expected[name])
        if len(orf.protein) < floor:
            problems.append(
                f"longest ORF for {name} is {len(orf.protein)} aa, under {floor} aa "
                f"({min_orf_fraction:g} x expected {expected[name]} aa)"
            )
        else:
            kept.append((name, orf))
    return kept, problems
