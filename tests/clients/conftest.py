"""Real client software (LiteLLM's SDK and proxy, the OpenAI and Anthropic SDKs, OpenTelemetry's Python SDK)
against a real `tokentrail serve`, on SQLite and PostgreSQL, configured the way the README tells a user to.

The clients live in their own environment, `.venv-clients`, installed by `make test` from the hashed lock
`tests/clients/requirements.txt`; every client runs in a subprocess of that environment, in a git checkout after
`eval "$(tokentrail env)"`, as a user would run it. The README's snippets are files under `docs/recipes/`, run here
as written; only the documentation's placeholder server, https://tokentrail.example.com, is replaced by the test
server's address. LiteLLM answers from `mock_response` and reads its bundled price list: nothing leaves the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.db import create_db_engine
from tests.clients.pth_guard import CLIENTS_VENV, refuse_unexpected_pth_files
from tests.conftest import ROOT, LiveServer

RECIPES = ROOT / "docs" / "recipes"
DRIVERS = Path(__file__).resolve().parent / "drivers"
PLACEHOLDER_SERVER = "https://tokentrail.example.com"
TOKENTRAIL_CLI = Path(sys.executable).parent / "tokentrail"

REPO = "acme/widgets"
BRANCH = "feat/real-clients"

# Variables of the developer's shell that would change what a client does; each test sets its own.
_FOREIGN = ("OTEL_", "GENERIC_LOGGER_", "LITELLM_", "TOKENTRAIL_", "ANTHROPIC_", "OPENAI_")
_PROXIES = {"http_proxy", "https_proxy", "all_proxy"}


@pytest.fixture(scope="session")
def clients_bin() -> Path:
    """The clients' environment. Missing, it fails the suite (run `make test`, which installs it); it never skips."""
    python = CLIENTS_VENV / "bin" / "python"
    if not python.exists():
        pytest.fail(f"the clients' environment is missing ({CLIENTS_VENV}): `make clients` (part of `make test`)")
    # A client interpreter runs its environment's .pth files at start: look before starting any.
    refuse_unexpected_pth_files()
    return python.parent


@dataclass(frozen=True)
class Checkout:
    path: Path
    commit: str


def _git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, env=_git_env(cwd))
    return result.stdout.strip()


def _git_env(ceiling: Path) -> dict[str, str]:
    # git must not find a repository above the test's folder, nor read the developer's config.
    return {
        **os.environ,
        "GIT_CEILING_DIRECTORIES": str(ceiling.parent),
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }


@pytest.fixture
def checkout(tmp_path: Path) -> Checkout:
    """A checkout of acme/widgets on a feature branch, with one commit: where the user runs their agent."""
    path = tmp_path / "widgets"
    path.mkdir()
    _git(path, "init", "-q", "-b", "main")
    _git(path, "config", "user.name", "Test")
    _git(path, "config", "user.email", "test@example.com")
    _git(path, "config", "commit.gpgsign", "false")
    _git(path, "remote", "add", "origin", "https://github.com/acme/widgets.git")
    (path / "README.md").write_text("widgets\n")
    _git(path, "add", "README.md")
    _git(path, "commit", "-q", "-m", "first")
    _git(path, "checkout", "-q", "-b", BRANCH)
    return Checkout(path=path, commit=_git(path, "rev-parse", "HEAD"))


def recipe(name: str, server: str) -> str:
    """A recipe's text as the README shows it, pointed at `server` instead of the placeholder."""
    text = (RECIPES / name).read_text()
    return text.replace(PLACEHOLDER_SERVER, server)


@dataclass
class ClientRun:
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> ClientRun:
        assert self.returncode == 0, f"exit {self.returncode}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"
        return self


@dataclass(frozen=True)
class Shell:
    """bash in the checkout, after `eval "$(tokentrail env)"`, with the clients' environment first on PATH."""

    checkout: Checkout
    clients_bin: Path
    home: Path

    def environment(self, extra: dict[str, str]) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(_FOREIGN) and key.lower() not in _PROXIES
        }
        env.update(_git_env(self.checkout.path))
        env.update(
            {
                "PATH": f"{self.clients_bin}{os.pathsep}{env.get('PATH', '')}",
                "HOME": str(self.home),
                # LiteLLM fetches its price list from GitHub at import unless told to use the copy it ships.
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "PYTHONDONTWRITEBYTECODE": "1",
                "NO_COLOR": "1",
            }
        )
        env.update(extra)
        return env

    def script(self, body: str) -> str:
        return f'set -e\neval "$({TOKENTRAIL_CLI} env)"\n{body}\n'

    def run(self, body: str, *, env: dict[str, str] | None = None, timeout: float = 180) -> ClientRun:
        result = subprocess.run(
            ["bash", "-c", self.script(body)],
            cwd=self.checkout.path,
            env=self.environment(env or {}),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return ClientRun(result.returncode, result.stdout, result.stderr)

    def start(self, body: str, *, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as handle:  # the child keeps its own copy of the descriptor
            return subprocess.Popen(
                ["bash", "-c", self.script(body)],
                cwd=self.checkout.path,
                env=self.environment(env),
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )


@pytest.fixture
def shell(checkout: Checkout, clients_bin: Path, tmp_path: Path) -> Shell:
    home = tmp_path / "home"
    home.mkdir()
    return Shell(checkout=checkout, clients_bin=clients_bin, home=home)


@pytest.fixture
def stored(database_url: str) -> Iterator[Callable[[], dict[str, dict[str, Any]]]]:
    """Reads back every stored usage record, keyed by its record id."""
    engine = create_db_engine(database_url)

    def read() -> dict[str, dict[str, Any]]:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT * FROM usage")).mappings().all()
        return {row["record_id"]: dict(row) for row in rows}

    yield read
    engine.dispose()


def wait_for_records(
    read: Callable[[], dict[str, dict[str, Any]]], ids: set[str], *, timeout: float = 60
) -> dict[str, dict[str, Any]]:
    """The stored records once all of `ids` are there (clients post in the background, in batches)."""
    deadline = time.monotonic() + timeout
    records = read()
    while not ids <= records.keys() and time.monotonic() < deadline:
        time.sleep(0.25)
        records = read()
    assert ids <= records.keys(), f"never stored: {sorted(ids - records.keys())}; stored: {sorted(records)}"
    return records


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass(frozen=True)
class Exchange:
    path: str
    content_type: str
    status: int
    answer: bytes


@dataclass
class RecordingProxy:
    """A pass-through on loopback in front of the server that keeps every request's path and content type and the
    server's answer: what a client library sees of an answer (OpenTelemetry's exporters log the status line only)."""

    upstream: str
    exchanges: list[Exchange] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> RecordingProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                skipped = {"host", "content-length", "connection"}
                headers = {name: value for name, value in self.headers.items() if name.lower() not in skipped}
                answer = httpx.post(proxy.upstream + self.path, content=body, headers=headers, timeout=60)
                proxy.exchanges.append(
                    Exchange(self.path, self.headers.get("Content-Type", ""), answer.status_code, answer.content)
                )
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("content-type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture
def recording_proxy(live_server: LiveServer) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy(upstream=live_server.url).start()
    yield proxy
    proxy.stop()
