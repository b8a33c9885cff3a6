"""Helpers shared by several test modules (moved from their first test module, so that none imports another)."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import LiveServer, make_token, start_server
from tests.github_payloads import make_pull_request_event
from tests.oidc_issuer import OidcIssuer
from tests.oidc_scene import seed

ACTION = Path(__file__).resolve().parent.parent / "action"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXECUTION_FILE = FIXTURES / "ci" / "claude_code_action_execution.json"
EXECUTION_COST = Decimal("0.4213")  # the result's modelUsage costUSD: 0.4 + 0.0213


REPO = "acme/widgets"


NUMBER = 12


OPENED = datetime(2026, 1, 1, tzinfo=UTC)


GITHUB_SHA = "f" * 40  # the merge commit a pull_request run checks out; never the PR's head


@dataclass(frozen=True)
class Command:
    name: str
    properties: dict[str, str]
    message: str


def _unescape(text: str, *, prop: bool = False) -> str:
    if prop:
        text = text.replace("%3A", ":").replace("%2C", ",")
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def workflow_commands(stdout: str) -> list[Command]:
    found = []
    for line in stdout.splitlines():
        match = re.fullmatch(r"::([a-z-]+)(?: ([^:]*))?::(.*)", line)
        if match:
            props = dict(
                (key, _unescape(value, prop=True))
                for key, _, value in (p.partition("=") for p in (match.group(2) or "").split(",") if p)
            )
            found.append(Command(match.group(1), props, _unescape(match.group(3))))
    return found


def parse_outputs(text: str) -> dict[str, str]:
    """$GITHUB_OUTPUT as the runner reads it: `name=value` lines and `name<<DELIMITER` blocks."""
    outputs: dict[str, str] = {}
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        if "<<" in line:
            name, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, index + 1)  # ValueError: an unterminated block, which the runner rejects
            outputs[name] = "\n".join(lines[index + 1 : end])
            index = end + 1
        else:
            if "=" in line:
                name, value = line.split("=", 1)
                outputs[name] = value
            index += 1
    return outputs


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    summary: str
    outputs: dict[str, str]

    @property
    def commands(self) -> list[Command]:
        return workflow_commands(self.stdout)

    def annotations(self, name: str) -> list[str]:
        return [c.message for c in self.commands if c.name == name]

    def __str__(self) -> str:
        return (
            f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}\n--- summary\n{self.summary}"
        )


def action_definition() -> dict[str, Any]:
    definition: dict[str, Any] = yaml.safe_load((ACTION / "action.yml").read_text())
    return definition


def expand(text: str, inputs: dict[str, str]) -> str:
    """The runner's `${{ … }}` expansion for what a composite step may use here; anything else fails the test."""
    declared = action_definition()["inputs"]

    def value(match: re.Match[str]) -> str:
        expression = match.group(1)
        if expression == "github.action_path":
            return str(ACTION)
        if expression.startswith("inputs."):
            name = expression.removeprefix("inputs.")
            assert name in declared, f"action.yml uses an undeclared input {name}"
            return inputs.get(name, str(declared[name].get("default", "")))
        raise AssertionError(f"unexpected expression in action.yml: {expression}")

    return re.sub(r"\$\{\{\s*(.*?)\s*\}\}", value, text)


@dataclass
class Runner:
    tmp: Path
    issuer: OidcIssuer | None = None  # None: the job has no `id-token: write`
    runs: int = 0

    def run(
        self,
        inputs: dict[str, str],
        *,
        event: dict[str, Any] | None = None,
        event_name: str = "pull_request",
        oidc: bool = True,
        workspace: Path | None = None,
    ) -> Run:
        definition = action_definition()
        assert definition["runs"]["using"] == "composite"
        (step,) = definition["runs"]["steps"]
        assert step["shell"] == "bash"
        for name, spec in definition["inputs"].items():
            assert not spec.get("required") or inputs.get(name), f"the required input {name} is missing"
        self.runs += 1
        work = self.tmp / f"run-{self.runs}"
        work.mkdir()
        event_path, summary, outputs = work / "event.json", work / "summary.md", work / "output.txt"
        event_path.write_text(json.dumps(event if event is not None else pull_event()))
        summary.touch()
        outputs.touch()
        script = work / "step.sh"
        script.write_text(expand(step["run"], inputs))
        env = {key: value for key, value in os.environ.items() if key in {"PATH", "HOME", "LANG", "LC_ALL"}}
        env.update((key, value) for key, value in os.environ.items() if key.startswith("PYENV"))
        env.update(
            {
                "CI": "true",
                "GITHUB_ACTIONS": "true",
                "GITHUB_EVENT_NAME": event_name,
                "GITHUB_EVENT_PATH": str(event_path),
                "GITHUB_STEP_SUMMARY": str(summary),
                "GITHUB_OUTPUT": str(outputs),
                "GITHUB_REPOSITORY": REPO,
                "GITHUB_SHA": GITHUB_SHA,
                "GITHUB_ACTION_PATH": str(ACTION),
                "RUNNER_TEMP": str(work),
                "GITHUB_WORKSPACE": str(workspace or work),
            }
        )
        env.update({key: expand(str(value), inputs) for key, value in (step.get("env") or {}).items()})
        if oidc and self.issuer is not None:
            env["ACTIONS_ID_TOKEN_REQUEST_URL"] = self.issuer.token_request_url
            env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = self.issuer.request_token
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            env=env,
            cwd=work,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return Run(done.returncode, done.stdout, done.stderr, summary.read_text(), parse_outputs(outputs.read_text()))


def comment_run(repository: str = REPO) -> dict[str, Any]:
    """The claims GitHub puts in an `issue_comment` run's token: the default branch's ref, no head or base ref."""
    return {
        "sub": f"repo:{repository}:ref:refs/heads/main",
        "ref": "refs/heads/main",
        "sha": "d" * 40,
        "head_ref": "",
        "base_ref": "",
        "event_name": "issue_comment",
        "job_workflow_ref": f"{repository}/.github/workflows/claude.yml@refs/heads/main",
    }


def pull_event(**overrides: Any) -> dict[str, Any]:
    """The event payload the job sees; only the PR's identity matters to the Action (the server has its own copy
    of the facts from the webhook)."""
    fields: dict[str, Any] = {"repo": REPO, "number": NUMBER, "created_at": OPENED, **overrides}
    return make_pull_request_event("opened", **fields)


@dataclass
class Proxy:
    """A reverse proxy on loopback, started before the server so its address can be the server's public URL."""

    upstream: str = ""
    requests: list[str] = field(default_factory=list)
    after_upstream: Callable[[str], None] | None = None  # runs between the server's answer and its delivery
    errors: list[Exception] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def budget_requests(self) -> int:
        return sum(1 for path in self.requests if path.split("?")[0].endswith("/budget"))

    def __enter__(self) -> Proxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                proxy.requests.append(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "content-length"}}
                answer = httpx.request(
                    self.command, proxy.upstream + self.path, content=body, headers=headers, timeout=30
                )
                if proxy.after_upstream is not None:
                    try:
                        proxy.after_upstream(self.path)
                    except Exception as problem:  # the test asserts there were none
                        proxy.errors.append(problem)
                self.send_response(answer.status_code)
                for name in ("content-type", "www-authenticate"):
                    if name in answer.headers:
                        self.send_header(name, answer.headers[name])
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="proxy", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    with Proxy() as running:
        yield running
    assert not running.errors, running.errors


@pytest.fixture
def issuer(proxy: Proxy) -> Iterator[OidcIssuer]:
    with OidcIssuer(audience=proxy.url, repository=REPO) as running:
        yield running


@pytest.fixture
def server(database_url: str, tmp_path: Path, proxy: Proxy, issuer: OidcIssuer) -> Iterator[LiveServer]:
    env = {"TOKENTRAIL_OIDC_JWKS_URL": issuer.jwks_url, "TOKENTRAIL_PUBLIC_URL": proxy.url}
    live = start_server(database_url=database_url, log=tmp_path / "server.log", env=env)
    proxy.upstream = live.url
    yield live
    live.stop()


@pytest.fixture
def api_token(factory: sessionmaker[Session]) -> str:
    return make_token(factory, "acme")


@pytest.fixture
def seeded(server: LiveServer, api_token: str) -> datetime:
    """acme has installed the App; acme/widgets#12 is open with $0.50 of usage on its branch."""
    return seed(server.url, api_token, repo=REPO, number=NUMBER, costs=("0.25", "0.25"))


@pytest.fixture
def runner(tmp_path: Path, issuer: OidcIssuer) -> Runner:
    return Runner(tmp_path, issuer)


def pull_summary(server: LiveServer, token: str, *, repo: str = REPO, number: int = NUMBER) -> dict[str, Any]:
    response = httpx.get(
        f"{server.url}/v1/repos/{repo}/pulls/{number}", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def workspace_with(tmp_path: Path, name: str, files: dict[str, Path | str]) -> Path:
    """A job's workspace holding `files` (relative path: a file to copy, or the text to write)."""
    workspace = tmp_path / name
    for relative, content in files.items():
        target = workspace / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, target)
        else:
            target.write_text(content)
    return workspace


def post_ci(server: LiveServer, token: str, body: bytes, **headers: str) -> httpx.Response:
    """`POST /v1/ingest/ci` as the Action sends it: gzip, the run's token, the x-vcs-* headers given."""
    return httpx.post(
        f"{server.url}/v1/ingest/ci",
        content=gzip.compress(body),
        headers={"Authorization": f"Bearer {token}", "Content-Encoding": "gzip", **headers},
        timeout=30,
    )
