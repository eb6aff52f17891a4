"""Analyses people look at before (and beside) training: maps of the embedding space and
how conserved each segment's protein is. Nothing here imports Dagster."""
