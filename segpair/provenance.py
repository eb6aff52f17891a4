"""Where a result came from: code, packages, configuration, input data and seeds.

Every materialization and MLflow run records a `Provenance`:

- the git commit of the checkout segpair runs from, and whether it had uncommitted
  changes (`dirty`); "not a git checkout" for an installed package;
- the versions of the packages that shape results (torch, transformers, dagster, mlflow,
  segpair and the numeric stack);
- a hash of the effective configuration (sorted JSON, so equal configs hash equal);
- the content fingerprint of the input data version (every raw file's bytes, hashed);
- the seeds: one master seed, and each process's seed derived from it (seed 001's
  `master_seed` / `process_seeds`, where null means "derive from the master").
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

DEFAULT_MASTER_SEED = 42
PROCESSES = ("dataset", "training", "evaluation", "analysis")  # those that draw at random
PACKAGES = ("segpair", "torch", "transformers", "dagster", "mlflow", "numpy", "pandas",
            "polars", "scikit-learn", "h5py", "lancedb")  # fmt: skip
_CHUNK = 1 << 20


def derive_seed(master_seed: int, process: str) -> int:
    """A process's seed from the master seed: stable across runs, machines and Python
    versions (a hash, not `hash()`), different per process, in numpy/torch's range."""
    digest = hashlib.sha256(f"{master_seed}:{process}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def process_seed(master_seed: int, process: str, override: int | None = None) -> int:
    """`override` when a run sets the process's seed, else the one derived from the master."""
    return override if override is not None else derive_seed(master_seed, process)


def config_hash(config: object) -> str:
    """A short hash of a configuration (a dict, a dataclass or a pydantic model)."""
    if hasattr(config, "model_dump"):
        config = config.model_dump()
    elif hasattr(config, "__dataclass_fields__"):
        config = asdict(config)
    text = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@functools.cache
def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@dataclass(frozen=True)
class CodeState:
    commit: str  # the full hash, or "not a git checkout"
    dirty: bool | None  # None outside a checkout

    @property
    def label(self) -> str:
        if self.dirty is None:
            return self.commit
        return f"{self.commit[:12]}{' (dirty)' if self.dirty else ''}"


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True,
                              text=True, timeout=10, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_state(folder: Path | None = None) -> CodeState:
    """The commit of the checkout holding `folder` (default: segpair's own source)."""
    folder = Path(folder or Path(__file__).resolve().parent)
    commit = _git(folder, "rev-parse", "HEAD")
    if not commit:
        return CodeState("not a git checkout", None)
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    return CodeState(commit, bool(status) if status is not None else None)


def _listing(folder: Path) -> list[tuple[str, int, int]]:
    return [(str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()]  # fmt: skip


@functools.lru_cache(maxsize=64)
def _fingerprint(folder: str, listing: tuple) -> str:
    digest = hashlib.sha256()
    for name, size, _mtime in listing:
        digest.update(f"{name}\0{size}\0".encode())
        with open(Path(folder) / name, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def content_fingerprint(folder: Path) -> str:
    """A hash of every file's name and bytes under `folder`: equal for equal content, even
    after a copy (modification times do not count). Cached per listing in this process."""
    folder = Path(folder)
    if not folder.is_dir():
        return "missing"
    return _fingerprint(str(folder), tuple(_listing(folder)))


@dataclass(frozen=True)
class Provenance:
    code: CodeState
    packages: dict[str, str]
    config_hash: str
    data_fingerprint: str
    master_seed: int
    seeds: dict[str, int] = field(default_factory=dict)

    def flat(self) -> dict[str, str]:
        """Flat string entries, the same for Dagster metadata and MLflow tags."""
        return {
            "provenance/git_commit": self.code.commit,
            "provenance/git_dirty": str(self.code.dirty).lower(),
            "provenance/config_hash": self.config_hash,
            "provenance/data_fingerprint": self.data_fingerprint,
            "provenance/master_seed": str(self.master_seed),
            **{f"provenance/seed/{k}": str(v) for k, v in sorted(self.seeds.items())},
            **{f"provenance/version/{k}": v for k, v in self.packages.items()},
        }


def provenance(config: object, data_folder: Path, master_seed: int,
               seeds: dict[str, int] | None = None) -> Provenance:  # fmt: skip
    return Provenance(code_state(), package_versions(), config_hash(config or {}),
                      content_fingerprint(data_folder), master_seed, dict(seeds or {}))  # fmt: skip
