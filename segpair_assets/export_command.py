"""`segpair export`: a partition's master cache as files other tools read (`.pt` per
protein function, Parquet, NumPy), written from the committed cache, never recomputed
(`segpair.embeddings.export` describes the files)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segpair.embeddings.catalog import CATALOG
from segpair.embeddings.export import EXPORT_FORMATS
from segpair_assets.settings import Settings


def add_partition_arguments(parser, registry) -> None:
    """-v VIRUS -d VERSION -e EMBEDDER: one partition's cache (export, neighbours)."""
    parser.add_argument("-v", "--virus", required=True, choices=registry.names)
    parser.add_argument("-d", "--data-version", required=True)
    parser.add_argument("-e", "--embedder", default=CATALOG.default, choices=CATALOG.names)


def add_export_command(sub, registry) -> None:
    export = sub.add_parser(
        "export", help="write a partition's embeddings for other tools (.pt, Parquet, NumPy)"
    )
    add_partition_arguments(export, registry)
    export.add_argument(
        "--format", default="pt", choices=EXPORT_FORMATS,
        help="pt: one {function}_{label}.pt per protein function ({'proteins': ids, 'data': "
        "float32 tensor}); parquet: one row per protein, the vector as a fixed-size list; "
        "npz: ids and a matrix",
    )  # fmt: skip
    export.add_argument(
        "-o", "--out", type=Path,
        help="folder to write; default data/exports/{virus}/{data_version}/{embedder}/{format}",
    )  # fmt: skip
    export.add_argument(
        "--force", action="store_true", help="rewrite an export that is already up to date"
    )


def run_export(args: argparse.Namespace) -> int:
    import pandas as pd

    from resources.storage import SegpairStorage
    from segpair.embeddings.cache import EmbeddingStore
    from segpair.embeddings.export import export_cache
    from segpair.errors import InputDataError

    storage = SegpairStorage(data_root=Settings.from_environment().data_root)
    virus, version, embedder = args.virus, args.data_version, args.embedder
    try:
        proteins_path = storage.processed_dir(virus, version) / "protein_final.parquet"
        if not proteins_path.exists():
            raise FileNotFoundError(
                f"no protein_final for {virus} x {version} at {proteins_path}: materialize the "
                f"partition first (segpair materialize -v {virus} -d {version})"
            )
        out = args.out or storage.export_dir(virus, version, embedder, args.format)
        with EmbeddingStore(storage.cache_paths(virus, version, embedder)) as store:
            report = export_cache(store, pd.read_parquet(proteins_path), out, args.format,
                                  args.force)  # fmt: skip
            dim, signature = store.dim, store.signature
    except (InputDataError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if report.up_to_date:
        print(f"up to date: {report.out_dir} already holds this {embedder} cache's export "
              "(--force rewrites it)")  # fmt: skip
        return 0
    print(f"wrote {len(report.files)} {args.format} file(s) to {report.out_dir}: "
          f"{report.n_proteins} proteins x {dim} dims ({embedder}, signature {signature}); "
          f"{report.not_embedded} proteins of protein_final have no vector")  # fmt: skip
    return 0
