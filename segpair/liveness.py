"""Is a process still running? For run workers killed with kill -9, which tell nobody.

A pid alone is not enough: once a process is gone, the kernel may give its pid to a new
one. So a process counts as the one we mean only if it started no later than when it was
last known to be running (`known_at`, a wall-clock time it reported itself).
"""

from __future__ import annotations

import os
from pathlib import Path

# Boot time from /proc drifts from time.time() by at most a few seconds; a pid reused
# within this window of the original's report is implausible.
CLOCK_SLACK_S = 30.0


def _linux_start_time(pid: int) -> tuple[str, float] | None:
    """(state, start time as a Unix time) from /proc, or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        btime = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    state, start_ticks = fields[0], int(fields[19])
    return state, btime + start_ticks / os.sysconf("SC_CLK_TCK")


def process_alive(pid: int, known_at: float | None = None) -> bool:
    """Whether process `pid` runs (not a zombie) and, with `known_at`, is the same process
    that was running then (it did not start later)."""
    if pid <= 0:
        return False
    if Path("/proc/self/stat").exists():  # Linux: state and start time
        found = _linux_start_time(pid)
        if found is None:
            return False
        state, started = found
        if state in ("Z", "X"):  # exited, not yet reaped by its parent
            return False
        return known_at is None or started <= known_at + CLOCK_SLACK_S
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True
