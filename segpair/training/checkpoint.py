"""Model checkpoints: weights plus what they mean, refused when used with other embeddings.

A checkpoint holds the state dict and metadata (embedder name and signature, feature
dimension, interactions, slot transform, layer sizes, threshold, training config, data
version), saved atomically and loaded with `weights_only=True` (no pickled code).
Loading it for embeddings of another signature or dimension is an error that says so
(a checkpoint never scores vectors of another embedding space): such vectors mean
something else to the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from segpair.atomic import atomic_path
from segpair.training.model import architecture, build_model


class CheckpointMismatchError(ValueError):
    pass


def plain(value):
    """Only builtin types (numpy scalars from HDF5 attrs become Python numbers), so the
    checkpoint loads with weights_only=True."""
    return json.loads(json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist")
                                 else str(v)))  # fmt: skip


def save_checkpoint(path: Path, model: nn.Module, meta: dict) -> Path:
    required = {"embedder", "signature", "dim", "interactions", "slot_transform", "hidden",
                "dropout", "threshold"}  # fmt: skip
    missing = required - meta.keys()
    if missing:
        raise ValueError(f"checkpoint metadata lacks {sorted(missing)}")
    with atomic_path(path) as tmp:
        # CPU tensors: a model trained on a GPU loads anywhere
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        torch.save({"state_dict": state, "meta": plain({**meta, **architecture(model)})}, tmp)
    return path


def read_checkpoint(path: Path) -> dict:
    """The stored {"state_dict", "meta"} (weights_only: no pickled code runs)."""
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"{path}: no checkpoint there. Materialize the partition's pair_classifier_<embedder> "
            "asset (it writes data/models/{virus}/{data_version}/{embedder}/model.pt) or give "
            "the path of an existing model.pt"
        )
    return torch.load(path, map_location="cpu", weights_only=True)


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
    model = build_model(meta)
    model.load_state_dict(blob["state_dict"])
    return model.eval(), meta
