"""What `segpair materialize` prints while a run goes and after it fails.

Dagster's own console logger prints every event and, for a failed step, the whole stack
trace twice (65-120 lines), which buries the one line a user needs. The command runs its
jobs with `console_job`: one line per step event or log message, no traces. After a
failure it prints the error each failed step raised (an `InputDataError` names the file,
line, record and fix) and where the full trace is: the run's log, which the instance
keeps whatever the console shows. A run launched through the webserver (`segpair demo`,
`--webserver`) executes elsewhere: its events are read back from the instance and
printed the same way (`event_line`).
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


def console_line(
    event_type: str | None, level: int, where: str, text: str, when: float, min_level: int
) -> str | None:
    """`HH:MM:SS step: first line of the message`, or None for what the console leaves out."""
    text = text.strip()
    if event_type is not None:
        if event_type not in CONSOLE_EVENTS:
            return None
    elif level < min_level or text.startswith("Dependencies for step"):
        return None  # the steps left out after a failure: the summary names the failure
    first = text.splitlines()[0] if text else ""
    first = first.replace(f' of step "{where}"', "")  # the line starts with the step
    if event_type is None and level >= logging.WARNING:
        first = f"{logging.getLevelName(level)} {first}"
    return f"{time.strftime('%H:%M:%S', time.localtime(when))} {where}: {first}"


def event_line(entry) -> str | None:
    """The console line of a stored event (an `EventLogEntry` of a launched run)."""
    event = entry.dagster_event
    level = entry.level if isinstance(entry.level, int) else logging.getLevelName(entry.level)
    return console_line(
        event.event_type_value if event is not None else None, level,
        entry.step_key or entry.job_name or "run", entry.user_message or "", entry.timestamp,
        logging.INFO,
    )  # fmt: skip


class OneLineConsole(logging.Handler):
    """One line per step event or log message, without stack traces."""

    def __init__(self, min_level: int = logging.INFO):
        super().__init__()
        self.min_level = min_level

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        line = console_line(
            event.event_type_value if event is not None else None, record.levelno,
            meta.get("step_key") or meta.get("job_name") or "run",
            str(meta.get("orig_message") or record.getMessage()), record.created, self.min_level,
        )  # fmt: skip
        if line is not None:
            # sys.stderr looked up per line: the stream in use now (pytest's capture included)
            print(line, file=sys.stderr, flush=True)


@dg.logger(
    config_schema={
        # the fields of Dagster's own console logger, so a launchpad config applies as is
        "log_level": dg.Field(str, is_required=False, default_value="INFO"),
        "name": dg.Field(str, is_required=False, default_value="dagster"),
    },
    description="One line per step event or log message, no stack traces.",
)
def one_line_console(init_context) -> logging.Logger:
    level = logging.getLevelName(init_context.logger_config["log_level"].upper())
    log = logging.Logger("segpair_console", logging.DEBUG)
    log.addHandler(OneLineConsole(level if isinstance(level, int) else logging.INFO))
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
    return event_failure_lines(result.all_events)


def event_failure_lines(events) -> list[str]:
    """`failure_lines` from a run's `DagsterEvent`s (a launched run's, read from the instance)."""
    lines = [
        f"{e.step_key} failed: {_error_text(_user_error(e.step_failure_data.error))}"
        for e in events
        if e.event_type_value == "STEP_FAILURE"
    ]
    if lines:
        return lines
    run_failure = next((e for e in events if e.event_type_value == "RUN_FAILURE"), None)
    data = run_failure.event_specific_data if run_failure else None
    error = getattr(data, "error", None)
    return [f"run failed: {_error_text(_user_error(error)) if error else 'see the run log'}"]
