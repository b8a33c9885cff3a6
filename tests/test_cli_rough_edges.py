"""The command line a newcomer meets: --version, documented --host/--port, owners that are GitHub logins, `env
--server` without a token, and `token create` saying which database it writes to."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.git_checkouts import make_repo, run_env


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"tokentrail {version('tokentrail')}"


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_host_and_port_have_help_and_show_their_defaults(command: str) -> None:
    text = run_cli(command, "--help").stdout
    assert "address to listen on (default: 127.0.0.1)" in text
    assert "port to listen on (default: 8000)" in text


@pytest.mark.parametrize("owner", ["not a login!", "-acme", "acme/widgets", "x" * 40])
def test_token_create_refuses_what_is_not_a_github_login(owner: str, tmp_path: Path) -> None:
    path = tmp_path / "tokentrail.db"
    result = run_cli("token", "create", f"--owner={owner}", env={"TOKENTRAIL_DATABASE_URL": f"sqlite:///{path}"})
    assert result.returncode == 2
    assert "is not a GitHub login" in result.stderr
    assert "Traceback" not in result.stderr
    assert not path.exists()  # refused before any database was touched


def test_token_create_says_where_it_writes_when_the_database_is_new(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    result = run_cli("token", "create", "--owner", "acme", env={"TOKENTRAIL_DATABASE_URL": f"sqlite:///{path}"})
    assert result.returncode == 0, result.stderr
    assert f"creating a new database at {path}" in result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("tt_")
    again = run_cli("token", "create", "--owner", "acme", env={"TOKENTRAIL_DATABASE_URL": f"sqlite:///{path}"})
    assert "creating a new database" not in again.stderr  # only when it did not exist


def test_env_server_without_a_token_warns_and_leaves_the_header_out(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "work" / "widgets")
    result = run_env(repo, tmp_path, "--server", "https://tt.example.com")
    assert result.returncode == 0, result.stderr
    assert "TOKENTRAIL_TOKEN is not set" in result.stderr
    assert "OTEL_EXPORTER_OTLP_LOGS_HEADERS" not in result.stdout
    assert "Bearer" not in result.stdout
    assert "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT='https://tt.example.com/v1/ingest/otlp/v1/logs'" in result.stdout
    with_token = run_env(repo, tmp_path, "--server", "https://tt.example.com", TOKENTRAIL_TOKEN="tt_x")
    assert "OTEL_EXPORTER_OTLP_LOGS_HEADERS" in with_token.stdout and with_token.stderr == ""
