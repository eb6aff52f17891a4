"""Where a run's steps execute: this machine (default) or Celery workers (a cluster).

SEGPAIR_EXECUTOR picks it where the code location loads (webserver, daemon, CLI):

- `multiprocess` (default): every step a subprocess on this machine; language-model
  embedding shards share the "gpu" concurrency pool (its limit, set in dagster.yaml,
  is the number of GPUs).
- `celery`: every step a Celery task. Steps tagged `dagster-celery/queue: gpu` (the
  language-model embedding steps) go to workers started with `-q gpu` on GPU machines,
  everything else to workers on the default `dagster` queue. The broker and result
  backend come from SEGPAIR_CELERY_BROKER / SEGPAIR_CELERY_BACKEND (Redis URLs);
  workers read the same variables through `deploy/celery.yaml`.
"""

from __future__ import annotations

import os

import dagster as dg

EXECUTOR_ENV = "SEGPAIR_EXECUTOR"
BROKER_ENV = "SEGPAIR_CELERY_BROKER"
BACKEND_ENV = "SEGPAIR_CELERY_BACKEND"
DEFAULT_BROKER = "redis://localhost:6379/0"
DEFAULT_BACKEND = "redis://localhost:6379/1"


# A worker takes its next step only when the current one is done (a GPU worker must not
# hoard shards another GPU could run), and a step whose worker died goes to another.
TASK_SETTINGS = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
}


def celery_settings() -> dict:
    """The Celery executor's config; `deploy/celery.yaml` gives workers the same values."""
    return {
        "broker": os.environ.get(BROKER_ENV) or DEFAULT_BROKER,
        "backend": os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND,
        "config_source": dict(TASK_SETTINGS),
    }


def executor_from_environment() -> dg.ExecutorDefinition:
    kind = os.environ.get(EXECUTOR_ENV, "multiprocess").strip().lower()
    if kind == "multiprocess":
        return dg.multiprocess_executor
    if kind == "celery":
        try:
            from dagster_celery import celery_executor
        except ImportError as err:
            raise RuntimeError(
                f"{EXECUTOR_ENV}=celery needs dagster-celery: pip install 'segpair[distributed]'"
            ) from err
        return celery_executor.configured(celery_settings(), name="segpair_celery")
    raise ValueError(f"{EXECUTOR_ENV}={kind!r}: use 'multiprocess' (default) or 'celery'")
