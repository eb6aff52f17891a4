"""Exports of a committed master cache for tools outside segpair, read from the cache
(never recomputed).

Input: an open `EmbeddingStore` and the partition's protein_final table (for each
protein's function, isolate and segment). Output, in one folder per partition, embedder
and format (`segpair export` puts it at data/exports/{virus}/{data_version}/{embedder}/
{format}/), every file written atomically:

- `pt`: one file per protein function, `{function}_{label}.pt` (seed 003's layout: label
  `ESM` for ESM-2 and FastESM2 caches, so `HA_ESM.pt`; the embedder name otherwise, so
  `HA_kmer_aa3.pt`), each `torch.save({"proteins": [brc_fea_id, ...], "data": tensor})`
  with `data` float32, N x D, row i the vector of proteins[i].
- `parquet`: `embeddings.parquet`, one row per protein: brc_fea_id, assembly_id (the
  isolate), function, segment, and `embedding`, a fixed-size list of D float32 (pandas:
  `np.stack(df.embedding)`; polars: `df["embedding"].to_numpy()`; R arrow: a list column).
- `npz`: `embeddings.npz` with arrays brc_fea_id, assembly_id, function, segment (str) and
  vectors (N x D float32), rows aligned (`np.load(f)["vectors"]`).
- `manifest.json`, written last: embedder, model, signature, the cache's content_id,
  dimension, storage precision, the files with their protein counts, and how many
  proteins of protein_final have no vector (see failed_ids.csv); a folder without it is
  an export in progress or interrupted. An export whose manifest names the cache's
  current content_id is up to date and is not written again; files of an earlier export
  that this one does not write are removed.

Vectors are exported as the cache stores them, widened to float32 (fp16 caches give
fp16-exact values).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from segpair.atomic import atomic_path, write_text_atomic
from segpair.embeddings.cache import EmbeddingStore
from segpair.locks import exclusive

ExportFormat = Literal["pt", "parquet", "npz"]
EXPORT_FORMATS: tuple[str, ...] = ("pt", "parquet", "npz")
MANIFEST = "manifest.json"
# seed 003: ESM embeddings keep the `_ESM.pt` suffix downstream code expects
_ESM_FAMILIES = {"esm2", "fastesm2"}
_PROTEIN_COLUMNS = ["brc_fea_id", "assembly_id", "function", "segment"]


@dataclass
class ExportReport:
    out_dir: Path
    fmt: str
    files: dict[str, int] = field(default_factory=dict)  # file name -> proteins in it
    n_proteins: int = 0
    not_embedded: int = 0
    up_to_date: bool = False  # nothing written: the folder already held this cache's export
    removed: list[str] = field(default_factory=list)


def pt_label(store: EmbeddingStore) -> str:
    return "ESM" if store.attrs.get("family") in _ESM_FAMILIES else store.paths.embedder


def _file_part(function: str) -> str:
    """A function name as a file name part (letters, digits, '.', '-', '_')."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", function) or "_"


def exported_proteins(store: EmbeddingStore, proteins: pd.DataFrame) -> pd.DataFrame:
    """The proteins with a vector, in protein_final order, with their cache rows."""
    missing = [c for c in _PROTEIN_COLUMNS if c not in proteins.columns]
    if missing:
        raise ValueError(f"the protein table lacks {missing}: pass the partition's protein_final")
    table = proteins[_PROTEIN_COLUMNS].astype(str).reset_index(drop=True)
    row = table["brc_fea_id"].map(dict(zip(store.index["brc_fea_id"], store.index["row"],
                                           strict=True)))  # fmt: skip
    return table.assign(row=row)[row.notna()].astype({"row": "int64"}).reset_index(drop=True)


def _write_pt(store, table: pd.DataFrame, out_dir: Path) -> dict[str, int]:
    import torch  # only this format needs it

    label, files = pt_label(store), {}
    for function, group in table.groupby("function", sort=True):
        name = f"{_file_part(function)}_{label}.pt"
        if name in files:
            raise ValueError(f"two functions map to the file name {name}; rename one of them")
        data = torch.from_numpy(store.gather_rows(group["row"].to_numpy()))
        with atomic_path(out_dir / name) as tmp:
            torch.save({"proteins": group["brc_fea_id"].tolist(), "data": data}, tmp)
        files[name] = len(group)
    return files


def _write_parquet(store, table: pd.DataFrame, out_dir: Path, block: int = 2048) -> dict:
    name = "embeddings.parquet"
    schema = pa.schema([*(pa.field(c, pa.string()) for c in _PROTEIN_COLUMNS),
                        pa.field("embedding", pa.list_(pa.float32(), store.dim))])  # fmt: skip
    with atomic_path(out_dir / name) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for start in range(0, len(table), block):
            part = table.iloc[start : start + block]
            flat = pa.array(store.gather_rows(part["row"].to_numpy()).ravel(), pa.float32())
            columns = [pa.array(part[c], pa.string()) for c in _PROTEIN_COLUMNS]
            embedding = pa.FixedSizeListArray.from_arrays(flat, store.dim)
            writer.write_table(pa.Table.from_arrays([*columns, embedding], schema=schema))
    return {name: len(table)}


def _write_npz(store, table: pd.DataFrame, out_dir: Path) -> dict[str, int]:
    name = "embeddings.npz"
    arrays = {c: table[c].to_numpy(dtype=str) for c in _PROTEIN_COLUMNS}
    with atomic_path(out_dir / name) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays, vectors=store.gather_rows(table["row"].to_numpy()))
    return {name: len(table)}


_WRITERS = {"pt": _write_pt, "parquet": _write_parquet, "npz": _write_npz}


def read_manifest(out_dir: Path) -> dict | None:
    path = Path(out_dir) / MANIFEST
    return json.loads(path.read_text()) if path.exists() else None


def export_cache(
    store: EmbeddingStore, proteins: pd.DataFrame, out_dir: Path, fmt: ExportFormat,
    force: bool = False,
) -> ExportReport:  # fmt: skip
    """Write the cache's vectors for `proteins` in `fmt` into `out_dir` (module docstring),
    unless the folder already holds this cache content's export (`force` rewrites it)."""
    if fmt not in _WRITERS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {EXPORT_FORMATS}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = ExportReport(out_dir, fmt)
    with exclusive(out_dir / ".export.lock", f"exporting {store.paths.embedder} to {out_dir}"):
        old = read_manifest(out_dir)
        content_id = str(store.attrs.get("content_id"))
        if old and not force and old.get("content_id") == content_id and old["format"] == fmt:
            report.files, report.up_to_date = old["files"], True
            report.n_proteins, report.not_embedded = old["proteins"], old["not_embedded"]
            return report
        table = exported_proteins(store, proteins)
        # no manifest while the files change: a folder without one is incomplete
        (out_dir / MANIFEST).unlink(missing_ok=True)
        report.files = _WRITERS[fmt](store, table, out_dir)
        report.n_proteins, report.not_embedded = len(table), len(proteins) - len(table)
        write_text_atomic(out_dir / MANIFEST, json.dumps(_manifest(store, report), indent=1))
        for stale in sorted(set((old or {}).get("files", {})) - set(report.files)):
            (out_dir / stale).unlink(missing_ok=True)
            report.removed.append(stale)
    return report


def _manifest(store: EmbeddingStore, report: ExportReport) -> dict:
    return {
        "embedder": store.paths.embedder,
        "model_name": str(store.attrs.get("model_name")),
        "signature": store.signature,
        "content_id": str(store.attrs.get("content_id")),
        "dim": store.dim,
        "storage_precision": str(store.attrs.get("storage_precision")),
        "format": report.fmt,
        "files": report.files,
        "proteins": report.n_proteins,
        "not_embedded": report.not_embedded,
        "cache": str(store.paths.h5),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
