"""The write lock (`segpair.locks.exclusive`): a second holder waits, says for whom, gives
up with a clear error after its timeout, and a holder killed with kill -9 frees it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from segpair.locks import LockTimeout, exclusive, holder_of, lock_file_for
from segpair_assets_tests.conftest import REPO_ROOT

HOLD = """
import sys, time
from segpair.locks import exclusive
with exclusive(sys.argv[1], "holding for the test", holder="run test-run-1"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
print("released", flush=True)
"""


def _holder(lock, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock), str(seconds)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_holder_waits_and_says_for_whom(tmp_path):
    lock = lock_file_for(tmp_path / "out" / "protein_final.parquet")
    assert lock == tmp_path / "out" / ".protein_final.parquet.lock"
    other = _holder(lock, 1.5)
    said: list[str] = []
    t0 = time.monotonic()
    with exclusive(lock, "writing protein_final", timeout_s=30, log=said.append):
        waited = time.monotonic() - t0
        assert other.stdout.readline().strip() == "released"  # it was done before we began
        assert f"pid {os.getpid()}" in holder_of(lock)
    assert waited > 0.5
    (message,) = said
    assert f"pid {other.pid}" in message and "run test-run-1" in message
    assert "waiting for" in message and str(lock) in message


def test_a_timeout_names_the_lock_and_its_holder(tmp_path):
    lock = tmp_path / ".cache.lock"
    other = _holder(lock, 30)
    try:
        with pytest.raises(LockTimeout) as err, exclusive(lock, "committing", timeout_s=0.3):
            pass
        assert str(lock) in str(err.value) and f"pid {other.pid}" in str(err.value)
        assert "holding for the test" in str(err.value)
    finally:
        other.kill()
        other.wait()


def test_a_holder_killed_with_sigkill_frees_the_lock(tmp_path):
    lock = tmp_path / ".cache.lock"
    other = _holder(lock, 60)
    other.send_signal(signal.SIGKILL)
    other.wait()
    t0 = time.monotonic()
    with exclusive(lock, "after the crash", timeout_s=5):
        assert time.monotonic() - t0 < 1
    assert lock.exists()  # the file stays; only the kernel's lock went with the process


def test_reentrant_in_one_thread_exclusive_between_threads(tmp_path):
    lock = tmp_path / ".x.lock"
    order: list[str] = []

    def other_thread():
        with exclusive(lock, "thread", timeout_s=10):
            order.append("thread")

    with exclusive(lock, "outer"):
        with exclusive(lock, "inner", timeout_s=0.1):  # no self-deadlock
            order.append("inner")
        t = threading.Thread(target=other_thread)
        t.start()
        time.sleep(0.3)
        order.append("outer done")
    t.join(10)
    assert order == ["inner", "outer done", "thread"]
