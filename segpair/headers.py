"""Parsing what FASTA headers say about a record: accession, strain, segment, metadata.

Styles seen in real downloads, all handled:

- key:value pipes (NCBI Influenza Virus Resource / IRD): ``gb:CY171735|Organism:Influenza
  A virus A/Chicago/YGA_04200/2013|Segment:4|Subtype:H3N2|Host:Human``
- GenBank definitions: ``gi|324709|gb|J02147.1| Influenza A virus (A/Puerto Rico/8/1934(H1N1))
  segment 5, complete sequence``
- plain: ``CY171735 A/Chicago/YGA_04200/2013(H3N2) segment 4`` or a gene name ``(HA)``
- a trailing ``[segment 4]`` / ``[segment S]`` annotation, which wins when present.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_FLU_STRAIN = re.compile(
    r"\b([ABCD]/(?:[^()|\[\]/]+/){1,4}\d{2,4})(?:\s*\(([^()]*)\))*(?:\s*\((H\d{1,2}N\d{1,2}|H\dN\d|mixed)\))?",
    re.IGNORECASE,
)
_SUBTYPE = re.compile(r"\b(H\d{1,2}N\d{1,2})\b", re.IGNORECASE)
_ISOLATE = re.compile(r"\b(?:isolate|strain)[:\s]+([A-Za-z0-9_.\-/]+)", re.IGNORECASE)
_SEGMENT_BRACKET = re.compile(r"\[segment\s+([A-Za-z0-9]+)\]", re.IGNORECASE)
_SEGMENT_WORD = re.compile(r"\bsegment[:\s]+([A-Za-z0-9]+)\b", re.IGNORECASE)
_ACCESSION = re.compile(r"^[A-Z]{1,6}_?\d{5,9}(?:\.\d+)?$")


@dataclass
class HeaderInfo:
    record_id: str  # first token of the header, as the file has it
    accession: str | None = None
    strain: str | None = None
    segment_token: str | None = None
    subtype: str | None = None
    host: str | None = None
    year: int | None = None
    location: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    description: str = ""


# NCBI FASTA identifier styles (NCBI C++ toolkit "FASTA defline" table): after these
# database tags the next field is the accession; the field after that is a locus or entry
# name (gi|1617491|gb|U62150.1|LRU62150), never the accession.
_DB_TAGS_BEFORE_ACCESSION = {
    "gb", "emb", "dbj", "ref", "tpg", "tpe", "tpd", "tr", "sp", "pir", "prf", "ena",
}  # fmt: skip
# Tags whose field is an id but no sequence accession (gi numbers, general database ids).
_NON_ACCESSION_TAGS = {"gi", "gnl", "pdb", "pat", "bbs"}


def _accession_from_id(record_id: str) -> str | None:
    """The sequence accession in a FASTA id, or None when it names none.

    gi|324709|gb|J02147.1| -> J02147.1; gb:CY171735 -> CY171735; ref|NC_026438.1| ->
    NC_026438.1; a bare CY171735.1 -> CY171735.1; gi|324709 alone -> None.
    """
    parts = re.split(r"[|:]", record_id)
    lowered = [p.lower() for p in parts]
    for i, tag in enumerate(lowered[:-1]):
        if tag in _DB_TAGS_BEFORE_ACCESSION and parts[i + 1]:
            return parts[i + 1]
    if any(tag in _NON_ACCESSION_TAGS for tag in lowered[:-1]):
        return None
    for part in parts:
        if _ACCESSION.match(part):
            return part
    return None


def _year_from_strain(strain: str) -> int | None:
    last = strain.rstrip("/").split("/")[-1]
    m = re.match(r"^(\d{2}|\d{4})$", last)
    if not m:
        return None
    y = int(last)
    if len(last) == 2:  # flu strain names use 2-digit years for old isolates
        y += 2000 if y <= 30 else 1900
    return y


def _host_location_from_strain(strain: str) -> tuple[str | None, str | None]:
    # A/place/id/year is a human isolate; A/host/place/id/year names the host.
    parts = strain.split("/")
    if len(parts) == 4:
        return "Human", parts[1]
    if len(parts) >= 5:
        return parts[1].capitalize(), parts[2]
    return None, None


def parse_header(header: str) -> HeaderInfo:
    header = header.lstrip(">").strip()
    record_id = header.split(None, 1)[0] if header else ""
    info = HeaderInfo(record_id=record_id, description=header)

    # key:value fields (Organism:..., Segment:4, Subtype:H3N2, Host:Human)
    for chunk in header.split("|"):
        m = re.match(r"^\s*([A-Za-z_ ]{2,20}):(.+)$", chunk.split("[")[0])
        if m and m.group(1).strip().lower() not in ("gb", "gi", "ref", "emb", "dbj"):
            info.fields[m.group(1).strip().lower()] = m.group(2).strip()

    first_pipe = header.split()[0] if header else ""
    info.accession = _accession_from_id(first_pipe) or _accession_from_id(record_id)

    m = _FLU_STRAIN.search(header)
    if m:
        info.strain = m.group(1).strip()
        info.year = _year_from_strain(info.strain)
        info.host, info.location = _host_location_from_strain(info.strain)
    else:
        m = _ISOLATE.search(header)
        if m:
            info.strain = m.group(1).strip().rstrip(",")

    sub = info.fields.get("subtype") or (
        _SUBTYPE.search(header).group(1) if _SUBTYPE.search(header) else None
    )
    info.subtype = sub.upper() if sub else None
    if info.fields.get("host"):
        info.host = info.fields["host"].capitalize()

    bracket = _SEGMENT_BRACKET.findall(header)
    if bracket:
        info.segment_token = bracket[-1]
    elif info.fields.get("segment"):
        info.segment_token = info.fields["segment"]
    else:
        word = _SEGMENT_WORD.search(header)
        if word:
            info.segment_token = word.group(1)
    return info
