"""`process_alive`: what run monitoring's health check asks of a run worker's pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from segpair.liveness import process_alive


def test_alive_dead_zombie_and_a_reused_pid():
    assert process_alive(os.getpid(), known_at=time.time())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert process_alive(child.pid, known_at=time.time())
        # a pid whose process started long after the one we knew: the pid was reused
        assert not process_alive(child.pid, known_at=time.time() - 3600)
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.time() + 10
        while process_alive(child.pid) and time.time() < deadline:
            time.sleep(0.05)
        assert not process_alive(child.pid)  # killed, not yet reaped: a zombie
    finally:
        child.wait()
    assert not process_alive(child.pid)  # reaped: no such process
    assert not process_alive(0)
