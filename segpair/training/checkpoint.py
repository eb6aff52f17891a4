"""Model checkpoints: weights plus what they mean, refused when used with other embeddings.

A checkpoint holds the state dict and metadata (embedder name and signature, feature
dimension, interactions, slot transform, layer sizes, threshold, training config, data
version), saved atomically and loaded with `weights_only=True` (no pickled code).
Loading it for embeddings of another signature or dimension is an error that says so
(a checkpoint never scores vectors of another embedding space): such vectors mean
something else to the model. A file that is no segpair checkpoint (text, truncated, a
tensor, a state dict without its meta, weights that do not fit the meta) is an
`InputDataError` naming the file and where checkpoints come from.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn

from segpair.atomic import atomic_path
from segpair.errors import InputDataError
from segpair.training.model import architecture, build_model


class CheckpointMismatchError(ValueError):
    pass


CHECKPOINT_FIX = (
    "pass the model.pt of a pair_classifier_<embedder> asset (data/models/{virus}/"
    "{data_version}/{embedder}/runs/*/model.pt; to segpair score and evaluate, that model "
    "folder too: its latest run) or of its MLflow run's artifacts"
)
REQUIRED_META = {"embedder", "signature", "dim", "interactions", "slot_transform", "hidden",
                 "dropout", "threshold"}  # fmt: skip


def plain(value):
    """Only builtin types (numpy scalars from HDF5 attrs become Python numbers), so the
    checkpoint loads with weights_only=True."""
    return json.loads(json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist")
                                 else str(v)))  # fmt: skip


def save_checkpoint(path: Path, model: nn.Module, meta: dict) -> Path:
    missing = REQUIRED_META - meta.keys()
    if missing:
        raise ValueError(f"checkpoint metadata lacks {sorted(missing)}")
    with atomic_path(path) as tmp:
        # CPU tensors: a model trained on a GPU loads anywhere
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        torch.save({"state_dict": state, "meta": plain({**meta, **architecture(model)})}, tmp)
    return path


def not_a_checkpoint(path: Path, why: str) -> InputDataError:
    return InputDataError(str(path), f"not a segpair model checkpoint ({why})", CHECKPOINT_FIX)


def _unreadable(path: Path, exc: Exception) -> str:
    """What a file that torch cannot load is, in words (torch's own message rarely says)."""
    with path.open("rb") as fh:
        head = fh.read(512)
    if not head:
        return "the file is empty"
    if head.startswith(b"PK\x03\x04"):
        first = str(exc).split(".")[0].strip()
        return f"a damaged or truncated torch file: {first}"
    if head.startswith(b"\x80"):
        return "a Python pickle, not a torch checkpoint of tensors"
    if b"\x00" not in head and head.decode("utf-8", errors="replace").count("\ufffd") <= 1:
        return "a text file"
    return f"torch cannot read it ({type(exc).__name__})"


def read_checkpoint(path: Path) -> dict:
    """The stored {"state_dict", "meta"} (weights_only: no pickled code runs); a missing
    file, a folder or a file that is no segpair checkpoint is an InputDataError."""
    path = Path(path)
    if path.is_dir():
        raise InputDataError(str(path), "is a folder, not a checkpoint file",
                             f"name the file, not its folder: {CHECKPOINT_FIX}")  # fmt: skip
    if not path.is_file():
        raise InputDataError(
            str(path), "no checkpoint there",
            "materialize the partition's pair_classifier_<embedder> asset (it writes "
            "data/models/{virus}/{data_version}/{embedder}/runs/*/model.pt) or give the path of an "
            "existing model.pt",
        )  # fmt: skip
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols it half reads
            warnings.simplefilter("ignore")
            blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a file it cannot read
        raise not_a_checkpoint(path, _unreadable(path, exc)) from exc
    parts = blob if isinstance(blob, dict) else {}
    if not (isinstance(parts.get("meta"), dict) and isinstance(parts.get("state_dict"), dict)):
        what = f"a dict with keys {sorted(map(str, parts))[:6]}" if parts else type(blob).__name__
        raise not_a_checkpoint(path, f"it holds {what}, not a state_dict and its meta")
    missing = REQUIRED_META - blob["meta"].keys()
    if missing:
        raise not_a_checkpoint(path, f"its meta lacks {sorted(missing)}")
    return blob


def load_checkpoint(
    path: Path,
    expected_signature: str | None = None,
    expected_dim: int | None = None,
    blob: dict | None = None,
) -> tuple[nn.Module, dict]:
    """The model and its metadata; `blob` is the file already read by `read_checkpoint`."""
    blob = blob if blob is not None else read_checkpoint(path)
    meta = blob["meta"]
    if expected_signature is not None and meta["signature"] != expected_signature:
        raise CheckpointMismatchError(
            f"{path} was trained on {meta['embedder']} embeddings with signature "
            f"{meta['signature']}, but the embeddings given have signature {expected_signature}: "
            "the vectors mean something else to this model. Score with the embedder the model "
            "was trained on, or retrain."
        )
    if expected_dim is not None and meta["dim"] != expected_dim:
        raise CheckpointMismatchError(
            f"{path} expects {meta['dim']}-dimensional embeddings ({meta['embedder']}), "
            f"got {expected_dim}"
        )
    try:
        model = build_model(meta)
        model.load_state_dict(blob["state_dict"])
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        why = str(exc).strip().splitlines()[0][:120]
        raise not_a_checkpoint(path, f"its weights do not fit the model its meta describes: {why}"
                               ) from exc  # fmt: skip
    return model.eval(), meta
