"""What `segpair materialize` prints while a run goes and after it fails.

Dagster's own console logger prints every event and, for a failed step, the whole stack
trace twice (65-120 lines), which buries the one line a user needs. The command runs its
jobs with `console_job`: one line per step event or log message, no traces. After a
failure it prints the error each failed step raised (an `InputDataError` names the file,
line, record and fix) and where the full trace is: the run's log, which the instance
keeps whatever the console shows.
"""

from __future__ import annotations

import logging
import sys
import time

import dagster as dg

# Events worth a console line; the run's log (the UI) keeps all of them.
CONSOLE_EVENTS = frozenset(
    {"STEP_START", "STEP_SUCCESS", "STEP_FAILURE", "STEP_UP_FOR_RETRY", "ASSET_CHECK_EVALUATION"}
)
# The run config that turns the logger on (a job's loggers run only when configured).
CONSOLE_RUN_CONFIG = {"loggers": {"console": {}}}


class OneLineConsole(logging.Handler):
    """One line per step event or log message, without stack traces."""

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        text = str(meta.get("orig_message") or record.getMessage()).strip()
        if event is not None:
            if event.event_type_value not in CONSOLE_EVENTS:
                return
        elif record.levelno < logging.INFO or text.startswith("Dependencies for step"):
            return  # the steps left out after a failure: the summary names the failure
        where = meta.get("step_key") or meta.get("job_name") or "run"
        first = text.splitlines()[0] if text else ""
        first = first.replace(f' of step "{where}"', "")  # the line starts with the step
        if event is None and record.levelno >= logging.WARNING:
            first = f"{record.levelname} {first}"
        # sys.stderr looked up per line: the stream in use now (pytest's capture included)
        print(f"{time.strftime('%H:%M:%S')} {where}: {first}", file=sys.stderr, flush=True)


@dg.logger(description="One line per step event or log message, no stack traces.")
def one_line_console(_init_context) -> logging.Logger:
    log = logging.Logger("segpair_console", logging.DEBUG)
    log.addHandler(OneLineConsole())
    return log


def console_job(job_name: str) -> dg.JobDefinition:
    """The code location's job with the one-line console logger; a module-level function,
    so a Celery run can rebuild it by name (`dg.build_reconstructable_job`)."""
    from segpair_assets.definitions import defs

    return defs.resolve_job_def(job_name).with_logger_defs({"console": one_line_console})


def _user_error(error):
    """The error the step's code raised: Dagster wraps it (DagsterExecutionStepExecutionError
    and the like) and keeps it as the cause."""
    while error is not None and error.cause is not None and error.cls_name.startswith("Dagster"):
        error = error.cause
    return error


def _error_text(error) -> str:
    if error is None:
        return "failed (no error recorded)"
    message = error.message.strip()
    prefix = f"{error.cls_name}: "
    # SerializableErrorInfo.message starts with the qualified class name
    _, found, rest = message.partition(prefix)
    message = rest if found else message
    return message if error.cls_name == "InputDataError" else f"{error.cls_name}: {message}"


def failure_lines(result) -> list[str]:
    """Per failed step, `step: error`; the run's error when no step failed."""
    lines = [
        f"{e.step_key} failed: {_error_text(_user_error(e.step_failure_data.error))}"
        for e in result.get_step_failure_events()
    ]
    if lines:
        return lines
    run_failure = next((e for e in result.all_events if e.event_type_value == "RUN_FAILURE"), None)
    data = run_failure.event_specific_data if run_failure else None
    error = getattr(data, "error", None)
    return [f"run failed: {_error_text(_user_error(error)) if error else 'see the run log'}"]
