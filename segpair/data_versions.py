"""Finding data versions under `raw/{virus}/{data_version}/` and deciding when one is complete.

A folder is complete when it holds `manifest.toml` (write the manifest last: it is the
marker). A folder without a manifest (the readers can detect formats) counts as
complete once its listing (file names, sizes, modification times) has stayed the same
for `stable_seconds`, so a copy still in progress is not read half-written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from segpair.errors import InputDataError
from segpair.readers import MANIFEST_NAME

# A data version becomes a Dagster partition key and a folder name under raw/, processed/,
# embeddings/ and models/: keep it to safe characters (no '/', no '..', no leading '.').
VALID_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
VERSION_RULE = (
    "data version names are letters, digits, '_', '.', '-' (starting with a letter or digit)"
)


def check_data_version_name(name: str) -> str:
    """`name` if it is a plain data version name, else InputDataError: a path in its place
    would read and write outside the data root (an absolute one: into the input folder)."""
    if not isinstance(name, str) or not VALID_VERSION.fullmatch(name):
        raise InputDataError(
            f"data version {name!r}",
            f"not a plain name: {VERSION_RULE}",
            "use the name of a folder under raw/{virus}/ (e.g. brc_2025), not a path; copy "
            "or move the data there first",
        )
    return name


@dataclass(frozen=True)
class DataVersionFolder:
    virus: str
    version: str
    path: Path
    has_manifest: bool
    fingerprint: str  # the listing; equal fingerprints, unchanged folder
    newest_mtime: float

    @property
    def key(self) -> str:
        return f"{self.virus}/{self.version}"


def _listing(folder: Path) -> tuple[str, float]:
    entries, newest = [], 0.0
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            st = p.stat()
            entries.append(f"{p.relative_to(folder)}:{st.st_size}:{st.st_mtime_ns}")
            newest = max(newest, st.st_mtime)
    return "|".join(entries), newest


def scan_raw_root(raw_root: Path, viruses: list[str]) -> tuple[list[DataVersionFolder], list[str]]:
    """(the data-version folders of known viruses, why other entries were skipped)."""
    found, skipped = [], []
    for virus in viruses:
        vdir = Path(raw_root) / virus
        if not vdir.is_dir():
            continue
        for folder in sorted(p for p in vdir.iterdir() if p.is_dir()):
            if folder.name.startswith("."):
                continue  # hidden: a copy in progress by convention
            if not VALID_VERSION.fullmatch(folder.name):
                skipped.append(f"{folder}: {VERSION_RULE} (rename the folder)")
                continue
            listing, newest = _listing(folder)
            if not listing:
                continue
            found.append(
                DataVersionFolder(
                    virus, folder.name, folder, (folder / MANIFEST_NAME).is_file(), listing, newest
                )
            )
    return found, skipped


def complete_folders(
    found: list[DataVersionFolder], pending: dict[str, list], now: float, stable_seconds: float
) -> tuple[list[DataVersionFolder], dict[str, list]]:
    """(complete folders, the pending record to keep). `pending` maps a folder key to
    [fingerprint, first time seen with it] for folders without a manifest."""
    complete, still = [], {}
    for f in found:
        if f.has_manifest:
            complete.append(f)
            continue
        fingerprint, since = pending.get(f.key, [None, now])
        if fingerprint != f.fingerprint:
            since = now
        if now - since >= stable_seconds:
            complete.append(f)
        else:
            still[f.key] = [f.fingerprint, since]
    return complete, still


def latest_versions(found: list[DataVersionFolder]) -> dict[str, DataVersionFolder]:
    """Per virus, the data version whose files changed last."""
    latest: dict[str, DataVersionFolder] = {}
    for f in found:
        if f.virus not in latest or f.newest_mtime > latest[f.virus].newest_mtime:
            latest[f.virus] = f
    return latest
