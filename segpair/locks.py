"""One writer at a time for a stored output: an exclusive OS file lock (`flock`).

Two runs of the same partition (a run from the UI and one from `segpair materialize`,
or two CLI runs) write the same files. Each write of a partition's stored outputs holds
the lock of that output, so the second writer waits for the first and never writes
between its files. The lock is the kernel's: it is released when its process ends, even
by kill -9, so no stale lock survives a crash. The lock file stays (deleting it would
let two processes lock two different files); it holds who took it last: pid, host, what
for and, when given, the Dagster run.

    with exclusive(lock_file_for(path), "writing protein_final of flu_a|v1"):
        ...write path...

A waiting writer logs "waiting for <holder> ..." once; after `timeout_s` it raises
`LockTimeout` naming the lock file and its holder. Re-entering a lock the same thread
already holds is allowed (a commit that runs the recovery step under the same lock).
Works on local disks and NFSv4 (Linux maps flock onto NFS byte-range locks).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

DEFAULT_TIMEOUT_S = 1800.0  # a large embedding cache takes minutes to commit
_held = threading.local()  # lock paths this thread holds -> depth
_logger = logging.getLogger(__name__)


class LockTimeout(TimeoutError):
    """Another process held the lock for longer than the caller would wait."""


def lock_file_for(target: str | os.PathLike) -> Path:
    """The lock beside a file or folder: `dir/.name.lock`."""
    target = Path(target)
    return target.parent / f".{target.name}.lock"


def holder_of(lock_file: str | os.PathLike) -> str:
    """Who took the lock last, as written into the lock file ("" when unknown)."""
    try:
        return Path(lock_file).read_text().strip()
    except OSError:
        return ""


def _depths() -> dict[Path, int]:
    if not hasattr(_held, "depth"):
        _held.depth = {}
    return _held.depth


def _describe(what: str, holder: str) -> str:
    since = datetime.now(UTC).isoformat(timespec="seconds")
    who = f"pid {os.getpid()} on {socket.gethostname()}" + (f" ({holder})" if holder else "")
    return f"{who}, {what}, since {since}\n"


def _acquire(fd: int, path: Path, what: str, timeout_s: float, log, poll_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    waiting = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        if not waiting:
            log(f"{what}: waiting for {holder_of(path) or 'another process'} to finish "
                f"(lock {path}; up to {timeout_s:.0f} s)")  # fmt: skip
            waiting = True
        if time.monotonic() >= deadline:
            raise LockTimeout(
                f"{what}: gave up after {timeout_s:.0f} s waiting for the lock {path}, held by "
                f"{holder_of(path) or 'an unknown process'}. A lock is freed when its process "
                "ends, so that process is still running: let it finish, or stop it, then retry"
            )
        time.sleep(poll_s)


def _open_lock(path: Path, best_effort: bool) -> int | None:
    try:
        if not best_effort:
            path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        if best_effort:
            return None
        raise


@contextlib.contextmanager
def exclusive(
    lock_file: str | os.PathLike,
    what: str,
    holder: str = "",
    timeout_s: float = DEFAULT_TIMEOUT_S,
    log: Callable[[str], object] | None = None,
    poll_s: float = 0.1,
    best_effort: bool = False,
) -> Iterator[None]:
    """Hold the exclusive lock `lock_file` (created if absent) for the block; `what` says
    what the holder does and `holder` who it is (e.g. "Dagster run 1a2b..."), for the
    messages of whoever waits. `best_effort` (readers): where the lock file cannot be
    created (a read-only copy of the data, no folder yet), run the block unlocked."""
    path = Path(lock_file).absolute()
    depths = _depths()
    if path in depths:  # this thread holds it already
        depths[path] += 1
        try:
            yield
        finally:
            depths[path] -= 1
        return
    fd = _open_lock(path, best_effort)
    if fd is None:  # a reader that could not create the lock file
        yield
        return
    try:
        _acquire(fd, path, what, timeout_s, log or _logger.info, poll_s)
        os.ftruncate(fd, 0)
        os.pwrite(fd, _describe(what, holder).encode(), 0)
        depths[path] = 1
        try:
            yield
        finally:
            del depths[path]
    finally:
        os.close(fd)  # closing the descriptor releases the lock
