"""A trained pair classifier as an MLflow model: `mlflow.pyfunc.load_model(uri)` gives a
model whose `predict` scores pairs of embedding vectors.

Contract of the logged model (`log_pair_model`):

- artifacts/model.pt: the segpair checkpoint (state dict + meta), as `segpair score`
  reads it.
- input: {"embedding_a": float32 (n, dim), "embedding_b": float32 (n, dim)}, the two
  proteins' vectors from the embedder the model was trained on, in the schema pair's
  order (HA then NA for HA-NA).
- output: a DataFrame, `score` (probability that both come from one isolate) and
  `same_isolate` (score >= the threshold chosen on val).

The model is logged from code (`mlflow_model_code.py`, MLflow's "models from code"), not
pickled; loading needs the `segpair` package importable (the checkpoint is rebuilt by its
code). The model's requirements pin torch, numpy, pandas and mlflow as they were at
training.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import ColSpec, Schema, TensorSpec

CHECKPOINT_ARTIFACT = "checkpoint"
MODEL_NAME = "pair_classifier"
INPUTS = ("embedding_a", "embedding_b")


class PairScorer(mlflow.pyfunc.PythonModel):
    """Scores pairs of embedding vectors with a segpair checkpoint."""

    def load_context(self, context) -> None:
        from segpair.training.checkpoint import load_checkpoint

        self.model, self.meta = load_checkpoint(Path(context.artifacts[CHECKPOINT_ARTIFACT]))

    def predict(self, context, model_input, params=None) -> pd.DataFrame:
        from segpair.training.train import predict

        a, b = (np.asarray(model_input[k], dtype=np.float32) for k in INPUTS)
        if a.shape != b.shape or a.ndim != 2 or a.shape[1] != self.meta["dim"]:
            raise ValueError(
                f"embedding_a {a.shape} and embedding_b {b.shape} must both be (n, "
                f"{self.meta['dim']}): vectors of {self.meta['embedder']}, one row per pair"
            )
        scores = predict(self.model, a, b).astype(np.float64)
        return pd.DataFrame({"score": scores, "same_isolate": scores >= self.meta["threshold"]})


def pair_signature(dim: int) -> ModelSignature:
    vectors = [TensorSpec(np.dtype(np.float32), (-1, dim), name) for name in INPUTS]
    return ModelSignature(
        inputs=Schema(vectors),
        outputs=Schema([ColSpec("double", "score"), ColSpec("boolean", "same_isolate")]),
    )


def _requirements() -> list[str]:
    """Pinned as installed, so MLflow need not infer them (it would import the model in a
    subprocess, seconds per run)."""
    import torch

    versions = {"torch": torch.__version__, "numpy": np.__version__,
                "pandas": pd.__version__, "mlflow": mlflow.__version__}  # fmt: skip
    return [f"{name}=={v.split('+')[0]}" for name, v in versions.items()]


def log_pair_model(checkpoint: Path, dim: int) -> str:
    """Log `checkpoint` as an MLflow model of the active run; returns its model URI."""
    with warnings.catch_warnings():
        # no input example: one would be a pair of `dim`-long vectors; the signature says it
        warnings.filterwarnings("ignore", message=".*input example was not provided")
        info = mlflow.pyfunc.log_model(
            name=MODEL_NAME,
            python_model=str(Path(__file__).with_name("mlflow_model_code.py")),
            artifacts={CHECKPOINT_ARTIFACT: str(checkpoint)},
            signature=pair_signature(dim),
            pip_requirements=_requirements(),
        )
    return info.model_uri
