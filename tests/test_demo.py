"""`tokentrail demo` from the command line: seeds through the real endpoints, prints where to look and a rendered
comment, and a second run starts cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, free_port


def run_demo(database: Path, port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "demo", "--no-serve", "--port", str(port), "--database", str(database)],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("TOKENTRAIL_")},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_demo_seeds_prints_and_runs_twice(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    first = run_demo(database, free_port())
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert "dashboard" in out and "/dashboard/acme" in out
    assert "<!-- tokentrail:pr-comment -->" in out
    assert "AI spend on this pull request" in out
    assert "per changed line" in out
    second = run_demo(database, free_port())
    assert second.returncode == 0, second.stderr
    # A fresh database each time: the same history, so the same comment.
    marker = "AI spend on this pull request"
    headline = next(line for line in out.splitlines() if marker in line)
    assert any(marker in line and line.split("**")[1] == headline.split("**")[1] for line in second.stdout.splitlines())
