"""`segpair neighbours`: the nearest proteins in a partition's vector table to proteins of
the table (--protein) or to new sequences (--fasta, embedded the table's way), with their
isolates and metadata; --partner NA adds the NA each neighbour's isolate came with."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segpair.embeddings.catalog import CATALOG
from segpair_assets.export_command import add_partition_arguments
from segpair_assets.settings import Settings

SHOWN = [
    "rank",
    "similarity",
    "brc_fea_id",
    "assembly_id",
    "isolate_name",
    "function",
    "subtype",
    "host",
    "year",
]


def add_neighbours_command(sub, registry) -> None:
    p = sub.add_parser(
        "neighbours", help="the nearest proteins in a partition's vector table, with isolates"
    )
    add_partition_arguments(p, registry)
    query = p.add_mutually_exclusive_group(required=True)
    query.add_argument("--protein", nargs="+", metavar="ID", help="brc_fea_id(s) of the table")
    query.add_argument(
        "--fasta",
        type=Path,
        metavar="FILE",
        help="sequences to embed as the table was (protein, coding DNA or whole segments: "
        "the longest ORF is taken)",
    )
    p.add_argument("-k", type=int, default=10, help="neighbours per query (default 10)")
    p.add_argument(
        "--partner",
        metavar="FUNCTION",
        help="add each neighbour isolate's protein of this function, e.g. NA",
    )
    p.add_argument("--function", help="only neighbours of this function, e.g. HA")
    p.add_argument(
        "--exact", action="store_true", help="scan every row even where an ANN index exists"
    )
    p.add_argument("-o", "--out", type=Path, help="write every row (.tsv, .csv or .parquet)")
    p.add_argument("--weights", help="language models: where the weights are, if moved")
    p.add_argument("--device", default="auto", help="language models: auto, cpu, cuda:N")


def run_neighbours(args: argparse.Namespace) -> int:
    from resources.storage import SegpairStorage
    from segpair.errors import InputDataError
    from segpair.vectors.search import VectorTable

    settings = Settings.from_environment()
    storage = SegpairStorage(data_root=settings.data_root)
    virus, version, embedder = args.virus, args.data_version, args.embedder
    if args.k < 1:
        print("error: -k must be at least 1", file=sys.stderr)
        return 2
    try:
        vectors = VectorTable(
            storage.vector_table_paths(virus, version, embedder), where=f" of {virus} x {version}"
        )
        if args.protein:
            found = vectors.neighbours(
                protein_ids=args.protein,
                k=args.k,
                partner=args.partner,
                function=args.function,
                exact=args.exact or None,
            )
            read_as = {}
        else:
            weights = args.weights or dict(settings.models).get(embedder)
            found, read_as = _fasta_neighbours(args, vectors, weights)
    except (InputDataError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        if isinstance(err, FileNotFoundError):
            spec = CATALOG.get(embedder)
            print(
                f"  materialize it: segpair materialize -v {virus} -d {version} --assets "
                f"{spec.cache_asset} {spec.vector_table_asset}",
                file=sys.stderr,
            )
        return 2
    _print(found, vectors, args, read_as)
    if args.out:
        _write(found, args.out)
        print(f"wrote {len(found)} rows to {args.out}")
    return 0


def _write(found, out: Path) -> None:
    from segpair.atomic import atomic_path

    with atomic_path(out) as tmp:
        if out.suffix == ".parquet":
            found.to_parquet(tmp, index=False)
        else:
            found.to_csv(tmp, sep="," if out.suffix == ".csv" else "\t", index=False)


def _fasta_neighbours(args, vectors, weights):
    from segpair.vectors.query import embed_queries, query_embedder, read_query_fasta

    spec = CATALOG.get(args.embedder)
    queries = read_query_fasta(args.fasta, spec.input_kind, args.embedder)
    embedder = query_embedder(vectors, weights, args.device)
    found = vectors.neighbours(
        vectors=embed_queries(queries, embedder),
        query_names=queries["query"].tolist(),
        k=args.k,
        partner=args.partner,
        function=args.function,
        exact=args.exact or None,
    )
    return found, dict(zip(queries["query"], queries["read_as"], strict=True))


def _print(found, vectors, args, read_as: dict) -> None:
    import pandas as pd

    print(
        f"{args.embedder} vector table of {args.virus} x {args.data_version}: "
        f"{vectors.n_rows} proteins x {vectors.dim} dims; "
        f"{vectors.search_kind(args.exact)}"
    )
    columns = SHOWN + (["partner_brc_fea_id"] if args.partner else [])
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        for query, rows in found.groupby("query", sort=False):
            how = f" (read as {read_as[query]})" if query in read_as else ""
            print(f"\nquery {query}{how}: {rows['rank'].max()} nearest")
            shown = rows[columns].round({"similarity": 4})
            print(shown.astype(object).where(shown.notna(), "").to_string(index=False))
            if args.partner:
                partners = rows.drop_duplicates("assembly_id")["partner_seq_hash"]
                print(
                    f"{args.partner} of these {len(partners)} isolates: "
                    f"{partners.nunique()} distinct sequence(s), "
                    f"{int(partners.isna().sum())} isolate(s) without one"
                )
    if found.empty:
        print("no neighbours (the table is empty, or no protein passes --function)")
