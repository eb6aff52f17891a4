"""Trained models that keep their history: one folder per training configuration.

Layout under an embedder's model folder (`data/models/{virus}/{version}/{embedder}/`):

    runs/{schema}-{config_hash}/   model.pt, metrics.json, plots, scores ... of one config
    latest.json                    {"run": "<folder name>", ...}: the newest run

Retraining with the same configuration replaces that configuration's folder (the result
would be the same); another schema or config gets its own folder, and the earlier ones
stay readable. `latest.json` is written atomically after the run's files, so a reader
always finds a complete run. A folder laid out before runs existed (model.pt directly in
the embedder folder) still reads as its only run, named `legacy`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from segpair.atomic import write_text_atomic

RUNS = "runs"
LATEST = "latest.json"
LEGACY_RUN = "legacy"
CHECKPOINT = "model.pt"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+\-]+")


class ModelRunNotFound(FileNotFoundError):
    pass


def run_name(schema_label: str, config_hash: str) -> str:
    """A folder name readable in a listing: the schema pairs, then the config's hash."""
    return f"{_UNSAFE.sub('_', schema_label)}-{config_hash}"


@dataclass(frozen=True)
class ModelHistory:
    """The training runs of one embedder in one partition."""

    folder: Path

    def run_dir(self, name: str) -> Path:
        if name == LEGACY_RUN:
            return self.folder
        return self.folder / RUNS / name

    def mark_latest(self, name: str, **details) -> None:
        """Point `latest` at a run whose files are complete."""
        if not (self.run_dir(name) / CHECKPOINT).exists():
            raise ModelRunNotFound(f"no {CHECKPOINT} in {self.run_dir(name)}; write it first")
        record = {"run": name, "marked_at": datetime.now(UTC).isoformat(), **details}
        write_text_atomic(self.folder / LATEST, json.dumps(record, indent=2))

    def latest_name(self) -> str | None:
        pointer = self.folder / LATEST
        if pointer.exists():
            return json.loads(pointer.read_text())["run"]
        return LEGACY_RUN if (self.folder / CHECKPOINT).exists() else None

    def runs(self) -> list[dict]:
        """Every run with a checkpoint, newest first, the latest flagged."""
        latest = self.latest_name()
        found = [p for p in (self.folder / RUNS).glob("*") if (p / CHECKPOINT).exists()]
        if (self.folder / CHECKPOINT).exists():
            found.append(self.folder)
        rows = []
        for p in sorted(found, key=lambda p: (p / CHECKPOINT).stat().st_mtime, reverse=True):
            name = LEGACY_RUN if p == self.folder else p.name
            rows.append({"run": name, "path": str(p), "latest": name == latest,
                         "trained_at": datetime.fromtimestamp(
                             (p / CHECKPOINT).stat().st_mtime, UTC).isoformat()})  # fmt: skip
        return rows

    def resolve(self, name: str | None = None) -> Path:
        """The folder of run `name`, or of the latest run."""
        wanted = name or self.latest_name()
        if wanted is None:
            raise ModelRunNotFound(
                f"no trained model in {self.folder}; materialize the pair classifier first"
            )
        path = self.run_dir(wanted)
        if not (path / CHECKPOINT).exists():
            known = [r["run"] for r in self.runs()]
            raise ModelRunNotFound(
                f"no model run {wanted!r} in {self.folder}; runs there: {known or 'none'}"
            )
        return path

    def checkpoint(self, name: str | None = None) -> Path:
        return self.resolve(name) / CHECKPOINT


def resolve_checkpoint(path: Path, run: str | None = None) -> Path:
    """What `segpair score -m` accepts: a checkpoint file, a run folder, or an embedder's
    model folder (its latest run, or `run`)."""
    path = Path(path)
    if not path.exists():
        return path  # the checkpoint loader's own error says where models come from
    if path.is_file():
        if run:
            raise ValueError(f"--run {run} names a run of a model folder, but {path} is a file")
        return path
    if (path / RUNS).is_dir() or (path / LATEST).exists():
        return ModelHistory(path).checkpoint(run)
    if (path / CHECKPOINT).exists() and not run:
        return path / CHECKPOINT
    if run:
        raise ModelRunNotFound(f"--run {run}: {path} is not a model folder with runs")
    return path  # a folder of something else: the checkpoint loader's error names the fix
