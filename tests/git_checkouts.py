"""Helpers shared by several test modules (moved from their first test module, so that none imports another)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

_CLEARED = ("ANTHROPIC_CUSTOM_HEADERS", "OTEL_RESOURCE_ATTRIBUTES", "TOKENTRAIL_TOKEN", "GIT_DIR", "GIT_WORK_TREE")


def _environ(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _CLEARED}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            # git must not find a repository above the test's folders, nor read the user's config.
            "GIT_CEILING_DIRECTORIES": str(tmp_path),
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
        }
    )
    env.update(extra)
    return env


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return result.stdout.strip()


def make_repo(path: Path, *, origin: str | None = "git@github.com:Acme/Widgets.git", commit: bool = True) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test")
    git(path, "config", "user.email", "test@example.com")
    git(path, "config", "commit.gpgsign", "false")
    if origin:
        git(path, "remote", "add", "origin", origin)
    if commit:
        (path / "README.md").write_text("widgets\n")
        git(path, "add", "README.md")
        git(path, "commit", "-q", "-m", "first")
    return path


def run_env(cwd: Path, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "env", *args],
        cwd=cwd,
        env=_environ(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )
