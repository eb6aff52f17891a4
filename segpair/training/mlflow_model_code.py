"""The code MLflow runs to build a logged pair classifier (MLflow's "models from code":
the model is this file plus its checkpoint artifact, nothing pickled). Loaded by MLflow
only; `segpair.training.mlflow_model` logs it."""

import mlflow

from segpair.training.mlflow_model import PairScorer

mlflow.models.set_model(PairScorer())
