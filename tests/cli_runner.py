"""Helpers shared by several test modules (moved from their first test module, so that none imports another)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def run_cli(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TOKENTRAIL_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
