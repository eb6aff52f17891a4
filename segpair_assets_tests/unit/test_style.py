"""The code passes ruff (lint and format), as the README asks of every change."""

from __future__ import annotations

import os
import subprocess
import sys

from segpair_assets_tests.conftest import REPO_ROOT


def _ruff(*args: str) -> subprocess.CompletedProcess:
    ruff = os.path.join(os.path.dirname(sys.executable), "ruff")
    return subprocess.run([ruff, *args], capture_output=True, text=True, cwd=REPO_ROOT)


def test_ruff_check():
    out = _ruff("check", ".")
    assert out.returncode == 0, out.stdout


def test_ruff_format():
    out = _ruff("format", "--check", ".")
    assert out.returncode == 0, out.stdout
