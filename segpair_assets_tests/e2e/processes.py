"""Real processes the end-to-end tests start: a free loopback port, and a long-running
service in its own session, logged to a file, stopped with its children."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from segpair_assets.launch import free_port  # noqa: F401 - the e2e tests' import
from segpair_assets_tests.conftest import REPO_ROOT


class Service:
    def __init__(self, args: list[str], log: Path, env: dict | None = None):
        self.log = log
        self._fh = open(log, "w")  # noqa: SIM115 - open for the process's lifetime
        self.proc = subprocess.Popen(
            args, env=env, cwd=REPO_ROOT, stdout=self._fh, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def wait_for(self, text: str, timeout: float = 90) -> None:
        """Until `text` appears in the log; fails with the log's tail if the process exits."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.log.read_text():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        raise RuntimeError(f"{self.log.name}: no {text!r}:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        # SIGINT is the Ctrl-C that `dagster dev` shuts down on; it ignored SIGTERM for the
        # whole 30 s wait; whatever is still up after 8 s is killed, as it was after 30.
        for sig, wait in ((signal.SIGINT, 5), (signal.SIGTERM, 3)):
            if self.proc.poll() is not None:
                break
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._fh.close()
