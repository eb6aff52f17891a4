"""Frozen-embedding pair classifiers: features, model, training, metrics, baselines.

Imports torch and scikit-learn but not Dagster or MLflow, so it runs on a bare GPU box.
"""
