"""Where a run's steps execute: this machine (default) or Celery workers (a cluster).

`Settings.executor` (SEGPAIR_EXECUTOR) picks it where the code location loads (webserver,
daemon, CLI):

- `multiprocess` (default): every step a subprocess on this machine; language-model
  embedding shards share the "gpu" concurrency pool (its limit, set in dagster.yaml,
  is the number of GPUs).
- `in_process`: every step, one after another, in the run's own process. No step pays
  a subprocess's start-up (4.6 s to import and load the code location, measured on 2
  cores; `segpair demo` 92 s against 134 s, BENCHMARKS.md), but nothing runs side by
  side and a step that crashes the interpreter ends the run.
- `celery`: every step a Celery task. Steps tagged `dagster-celery/queue: gpu` (the
  language-model embedding steps) go to workers started with `-q gpu` on GPU machines,
  everything else to workers on the default `dagster` queue. The broker and result
  backend are `Settings.celery_broker` / `celery_backend` (Redis URLs);
  workers read the same variables through `deploy/celery.yaml`.
"""

from __future__ import annotations

import dagster as dg

from segpair_assets.settings import Settings

# A worker takes its next step only when the current one is done (a GPU worker must not
# hoard shards another GPU could run), and a step whose worker died goes to another.
TASK_SETTINGS = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
}


def celery_settings(settings: Settings) -> dict:
    """The Celery executor's config; `deploy/celery.yaml` gives workers the same values."""
    return {
        "broker": settings.celery_broker,
        "backend": settings.celery_backend,
        "config_source": dict(TASK_SETTINGS),
    }


def executor_for(settings: Settings) -> dg.ExecutorDefinition:
    kind = settings.executor
    if kind == "multiprocess":
        return dg.multiprocess_executor
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "celery":
        try:
            from dagster_celery import celery_executor
        except ImportError as err:
            raise RuntimeError(
                "SEGPAIR_EXECUTOR=celery needs dagster-celery: pip install 'segpair[distributed]'"
            ) from err
        return celery_executor.configured(celery_settings(settings), name="segpair_celery")
    raise ValueError(
        f"SEGPAIR_EXECUTOR={kind!r}: use 'multiprocess' (default), 'in_process' or 'celery'"
    )
