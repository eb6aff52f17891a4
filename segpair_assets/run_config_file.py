"""`segpair materialize -c FILE`: the run config from a file, as `dagster job execute -c`
takes one, so a run launched from the launchpad can be repeated from the shell.

The file is the run's whole config, as the launchpad sends it (YAML, or JSON, which is
YAML too). A virus job's launchpad shows the preset and sends the preset with the edits,
so a file saved from it applies as is: it replaces the preset, it is not merged over it.

Dagster's config errors print the whole expected schema (thousands of characters); here
each error is one line that names the file and the key:
`run.yaml: ops.segment_pairs.config.neg_to_pos_ratio: ...`.
"""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import yaml

# "at path root:ops:segment_pairs:config" / "at the root": the line names the key itself
_WHERE = re.compile(r" at (?:path root(?::[\w\-\[\]]+)*|the root)")
_EXPECTED = ". Expected: "


class RunConfigFileError(ValueError):
    """What is wrong with the file, one line per error."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


def read_run_config(path: Path) -> dict:
    try:
        text = path.read_text()
    except OSError as err:
        raise RunConfigFileError([f"{path}: cannot read the run config: {err.strerror}"]) from None
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise RunConfigFileError([f"{path}{where}: not YAML or JSON: {problem}"]) from None
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise RunConfigFileError([
            f"{path}: a run config is a mapping (ops:, resources:, ...), not a "
            f"{type(config).__name__}"
        ])  # fmt: skip
    return config


def check_run_config(path: Path, job: dg.JobDefinition, config: dict) -> None:
    """Raise `RunConfigFileError` unless `config` is valid for `job`."""
    try:
        dg.validate_run_config(job, config)
    except dg.DagsterInvalidConfigError as err:
        raise RunConfigFileError([_error_line(path, job.name, e) for e in err.errors]) from None


def _key_path(stack) -> str:
    parts = []
    for entry in stack.entries:
        if getattr(entry, "field_name", None) is not None:
            parts.append(f".{entry.field_name}")
        elif getattr(entry, "list_index", None) is not None:
            parts.append(f"[{entry.list_index}]")
        elif getattr(entry, "map_key", None) is not None:
            parts.append(f"[{entry.map_key!r}]")
    return "".join(parts).lstrip(".")


def _error_line(path: Path, job: str, error) -> str:
    where = _key_path(error.stack)
    data, reason = error.error_data, error.reason.value
    names = getattr(data, "field_names", None) or [getattr(data, "field_name", None)]
    keys = ", ".join(f"{where}.{n}".lstrip(".") for n in names if n)
    if reason in ("FIELD_NOT_DEFINED", "FIELDS_NOT_DEFINED"):
        what = f"not an asset of {job}" if where == "ops" else "not a field here"
        return f"{path}: {keys}: unknown key ({what})"
    if reason in ("MISSING_REQUIRED_FIELD", "MISSING_REQUIRED_FIELDS"):
        return f"{path}: {keys}: missing (required)"
    message, _, expected = error.message.partition(_EXPECTED)
    message = _WHERE.sub("", message).strip().rstrip(".")
    if expected and len(expected) <= 80:
        message = f"{message}; expected {expected.strip()}"
    return f"{path}: {where or '(top level)'}: {message}"
