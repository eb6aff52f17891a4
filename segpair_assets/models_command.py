"""`segpair models`: the training runs kept for one partition and embedder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segpair_assets.settings import Settings


def add_models_command(sub) -> None:
    models = sub.add_parser(
        "models", help="list the trained models (one per training configuration) of a partition"
    )
    models.add_argument("-v", "--virus", required=True)
    models.add_argument("-d", "--data-version", required=True)
    models.add_argument("-e", "--embedder", default=None, help="default: every embedder")


def run_models(args: argparse.Namespace) -> int:
    import pandas as pd

    from segpair.data_versions import check_data_version_name
    from segpair.training.model_history import ModelHistory

    root = Settings.from_environment().data_root
    base = Path(root) / "models" / args.virus
    version = check_data_version_name(args.data_version)
    folders = [base / version / args.embedder] if args.embedder else \
        sorted(p for p in (base / version).glob("*") if p.is_dir())  # fmt: skip
    rows = [{"embedder": f.name, **run} for f in folders for run in ModelHistory(f).runs()]
    if not rows:
        print(f"no trained model under {base / version}; materialize a pair_classifier first",
              file=sys.stderr)  # fmt: skip
        return 2
    print(pd.DataFrame(rows)[["embedder", "run", "latest", "trained_at", "path"]]
          .to_string(index=False))  # fmt: skip
    print("score with one: segpair score -m <path> ... (a folder of runs scores with its latest)")
    return 0
