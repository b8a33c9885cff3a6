"""The companion Action (action/) run as a runner runs it, against a real `tokentrail serve` on SQLite and PostgreSQL.

The composite step's command is taken from action.yml as declared, its `${{ … }}` expressions expanded the way
the runner expands them (inputs with their declared defaults, github.action_path), and run with bash in an
environment like a job's: GITHUB_EVENT_PATH, GITHUB_STEP_SUMMARY, GITHUB_OUTPUT, and ACTIONS_ID_TOKEN_REQUEST_URL /
_TOKEN pointing at a fake Actions runtime that issues JWTs signed with the key whose JWKS the server trusts.

The server sits behind a small reverse proxy whose address is its TOKENTRAIL_PUBLIC_URL, so the OIDC audience the
Action asks for by default (its server-url) is the one the server expects, as in production; the proxy also lets a
test act between an answer and its delivery (usage arriving while the Action waits).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import py_compile
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import LiveServer, free_port, make_token, start_server
from tests.github_payloads import make_pull_request_event
from tests.oidc_issuer import TOKEN_PATH, OidcIssuer
from tests.test_oidc import budget_settled, comparable, post_usage, seed, usage_record, wait_for

ACTION = Path(__file__).resolve().parent.parent / "action"
REPO = "acme/widgets"
NUMBER = 12
OPENED = datetime(2026, 1, 1, tzinfo=UTC)
GITHUB_SHA = "f" * 40  # the merge commit a pull_request run checks out; never the PR's head
COST = "0.50"  # two records of $0.25, to the cent
# max-cost for each verdict at $0.50 (warn_at 0.8): 25 %, 83 %, 125 %
MAX_COST = {"pass": "2", "warn": "0.6", "fail": "0.4"}
EXIT_CODES = {
    ("pass", "fail"): 0,
    ("pass", "warn"): 0,
    ("pass", "never"): 0,
    ("warn", "fail"): 0,
    ("warn", "warn"): 1,
    ("warn", "never"): 0,
    ("fail", "fail"): 1,
    ("fail", "warn"): 1,
    ("fail", "never"): 0,
}


# ---------------------------------------------------------------- running the step as the runner does


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


def pull_event(**overrides: Any) -> dict[str, Any]:
    """The event payload the job sees; only the PR's identity matters to the Action (the server has its own copy
    of the facts from the webhook)."""
    fields: dict[str, Any] = {"repo": REPO, "number": NUMBER, "created_at": OPENED, **overrides}
    return make_pull_request_event("opened", **fields)


# ---------------------------------------------------------------- the server behind a proxy


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


def comment_md(server: LiveServer, token: str, repo: str = REPO, number: int = NUMBER) -> str:
    response = httpx.get(
        f"{server.url}/v1/repos/{repo}/pulls/{number}/comment.md", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    return comparable(response.text)


# ---------------------------------------------------------------- verdicts


def test_pass_warn_and_fail_for_each_fail_on(
    seeded: datetime, server: LiveServer, proxy: Proxy, issuer: OidcIssuer, runner: Runner, api_token: str
) -> None:
    report = comment_md(server, api_token)
    for status, max_cost in MAX_COST.items():
        for fail_on in ("fail", "warn", "never"):
            case = f"verdict {status} with fail-on {fail_on}"
            run = runner.run({"server-url": proxy.url, "max-cost": max_cost, "fail-on": fail_on})
            assert run.returncode == EXIT_CODES[(status, fail_on)], f"{case}\n{run}"
            assert run.outputs == {
                "cost-usd": COST,
                "status": status,
                "comment-url": f"https://github.com/{REPO}/pull/{NUMBER}",
                "details-url": f"{proxy.url}/dashboard/{REPO}/pulls/{NUMBER}",
            }, case

            errors, warnings = run.annotations("error"), run.annotations("warning")
            if status == "fail":
                assert len(errors) == 1 and not warnings, f"{case}\n{run}"
                assert "max_cost_per_pr" in errors[0] and "$0.40" in errors[0] and "$0.50" in errors[0], errors
                assert "::error title=AI spend::" in run.stdout
            elif status == "warn" and fail_on == "warn":
                assert len(errors) == 1 and not warnings, f"{case}\n{run}"
                assert "max_cost_per_pr" in errors[0] and "83 %" in errors[0], errors
            elif status == "warn":
                assert len(warnings) == 1 and not errors, f"{case}\n{run}"
                assert "max_cost_per_pr" in warnings[0] and "$0.60" in warnings[0], warnings
            else:
                assert not errors and not warnings, f"{case}\n{run}"

            # the job summary shows the verdict and the report, as the PR comment renders it
            assert f"status `{status}`" in run.summary, case
            assert report in comparable(run.summary), case
            assert "`max_cost_per_pr` " + max_cost in run.summary, case

    # every run asked the Actions runtime for a token for the server's URL, as @actions/core getIDToken does
    assert len(issuer.token_requests) == 9
    for request in issuer.token_requests:
        assert (
            request.path == f"{TOKEN_PATH}?api-version=2.0&audience={proxy.url.replace(':', '%3A').replace('/', '%2F')}"
        )
        assert request.audience == proxy.url
        assert request.authorization == f"Bearer {issuer.request_token}"
    masked = [c.message for c in run.commands if c.name == "add-mask"]
    assert len(masked) == 1 and masked[0].count(".") == 2  # the JWT is masked in the log


def test_each_limit_input_reaches_the_server(seeded: datetime, proxy: Proxy, runner: Runner) -> None:
    # $0.50 over 516 changed lines is ~$0.00097 per line; 2 records of 150 tokens are 300 tokens
    per_line = runner.run({"server-url": proxy.url, "max-cost-per-changed-line": "0.0005"})
    assert per_line.returncode == 1, per_line
    assert "max_cost_per_changed_line" in per_line.annotations("error")[0]
    tokens = runner.run({"server-url": proxy.url, "max-tokens": "200"})
    assert tokens.returncode == 1, tokens
    assert "max_tokens_per_pr" in tokens.annotations("error")[0]
    within = runner.run(
        {"server-url": proxy.url, "max-cost": "10", "max-cost-per-changed-line": "0.01", "max-tokens": "100000"}
    )
    assert (within.returncode, within.outputs["status"]) == (0, "pass"), within
    budget_paths = [path for path in proxy.requests if "/budget" in path]
    assert budget_paths[-1].endswith("?max_cost=10&max_cost_per_changed_line=0.01&max_tokens=100000")
    # no limit anywhere (dry-run reads no .github/tokentrail.yml): nothing to enforce
    unlimited = runner.run({"server-url": proxy.url})
    assert (unlimited.returncode, unlimited.outputs["status"]) == (0, "none"), unlimited
    assert "no budget limits set" in unlimited.summary


def test_cost_usd_is_rounded_to_the_cent(server: LiveServer, proxy: Proxy, runner: Runner, api_token: str) -> None:
    """The server keeps the exact sum (9.3638688); the output is what the docs promise: dollars and cents."""
    seed(server.url, api_token, repo=REPO, number=NUMBER, costs=("3.1212896", "6.2425792"))
    run = runner.run({"server-url": proxy.url})
    assert run.returncode == 0, run
    assert run.outputs["cost-usd"] == "9.36"
    assert "$9.36" in run.stdout


def test_token_input_instead_of_oidc(
    seeded: datetime, proxy: Proxy, issuer: OidcIssuer, runner: Runner, api_token: str
) -> None:
    run = runner.run({"server-url": proxy.url, "token": api_token, "max-cost": "0.4"}, oidc=False)
    assert run.returncode == 1, run
    assert run.outputs["status"] == "fail" and run.outputs["cost-usd"] == COST
    assert "max_cost_per_pr" in run.annotations("error")[0]
    assert issuer.token_requests == []  # no OIDC without `id-token: write`

    # a review event carries the pull request too
    review = {
        "action": "submitted",
        "pull_request": pull_event()["pull_request"],
        "repository": pull_event()["repository"],
    }
    reviewed = runner.run({"server-url": proxy.url, "token": api_token}, event=review, event_name="pull_request_review")
    assert (reviewed.returncode, reviewed.outputs["cost-usd"]) == (0, COST), reviewed

    # a wrong token is an error that says what to check
    wrong = runner.run({"server-url": proxy.url, "token": "tt_not_a_token"}, oidc=False)
    assert wrong.returncode == 1, wrong
    assert "(401)" in wrong.annotations("error")[0] and "token input" in wrong.annotations("error")[0]

    # where the runtime fails to issue an OIDC token, the token input is used instead
    issuer.token_endpoint_status = 500
    fallback = runner.run({"server-url": proxy.url, "token": api_token, "max-cost": "2"})
    assert (fallback.returncode, fallback.outputs["status"]) == (0, "pass"), fallback
    assert "using the token input" in fallback.stdout


def test_fork_pull_request_target_with_a_token_is_checked(
    seeded: datetime, proxy: Proxy, runner: Runner, api_token: str
) -> None:
    event = pull_event(head_repo="mallory/widgets")
    run = runner.run(
        {"server-url": proxy.url, "token": api_token, "max-cost": "0.4"}, event=event, event_name="pull_request_target"
    )
    assert run.returncode == 1 and run.outputs["status"] == "fail", run


def test_head_commit_the_server_has_not_seen(seeded: datetime, proxy: Proxy, runner: Runner) -> None:
    newer = pull_event(head_sha="c" * 40)  # pushed after the last webhook the server got
    run = runner.run({"server-url": proxy.url, "max-cost": "2"}, event=newer)
    assert run.returncode == 0, run
    (notice,) = [m for m in run.annotations("notice") if "ccccccc" in m]
    assert "not seen commit ccccccc" in notice
    assert "fffffff" not in run.stdout  # GITHUB_SHA (the merge commit) is not the PR's head


def test_refusals_are_errors(seeded: datetime, server: LiveServer, proxy: Proxy, runner: Runner) -> None:
    elsewhere = runner.run({"server-url": proxy.url, "audience": "https://elsewhere.example.com"})
    assert elsewhere.returncode == 1, elsewhere
    (message,) = elsewhere.annotations("error")
    assert "(401)" in message and "audience" in message and "https://elsewhere.example.com" in message
    assert "refused" in elsewhere.summary

    # a run of a repository whose owner never installed the App
    runner.issuer.repository = "umbrella/app"  # type: ignore[union-attr]
    event = make_pull_request_event("opened", repo="umbrella/app", number=5, created_at=OPENED)
    stranger = runner.run({"server-url": proxy.url}, event=event)
    assert stranger.returncode == 1, stranger
    assert "(403)" in stranger.annotations("error")[0] and "not installed" in stranger.annotations("error")[0]


def test_a_pull_request_the_server_does_not_know(seeded: datetime, proxy: Proxy, runner: Runner) -> None:
    run = runner.run({"server-url": proxy.url, "max-cost": "1"}, event=pull_event(number=99))
    assert run.returncode == 0, run
    (warning,) = run.annotations("warning")
    assert "does not know acme/widgets#99" in warning
    assert run.outputs["status"] == "none"


# ---------------------------------------------------------------- waiting for late usage


def test_wait_seconds_counts_usage_that_arrives_late(
    seeded: datetime, server: LiveServer, proxy: Proxy, runner: Runner, api_token: str
) -> None:
    late: list[str] = []
    posted: list[str] = []

    def usage_arrives_after_the_first_answer(path: str) -> None:
        if "/budget" in path and not late:
            late.append(path)
            record = usage_record(f"late-{len(posted)}", cost="0.25", at=seeded + timedelta(minutes=40))
            posted.append(record["id"])
            post_usage(server.url, api_token, [record])

    # wait-seconds 0 (the default): one answer, given before the late usage came in
    proxy.after_upstream = usage_arrives_after_the_first_answer
    once = runner.run({"server-url": proxy.url})
    assert (once.returncode, once.outputs["cost-usd"]) == (0, "0.50"), once
    assert proxy.budget_requests() == 1
    wait_for(lambda: budget_settled(server.url, api_token, cost="0.75"), what="the late usage to be matched")

    # wait-seconds 20: the Action polls until the spend stops changing, and counts the late usage
    late.clear()
    proxy.requests.clear()
    waited = runner.run({"server-url": proxy.url, "wait-seconds": "20", "max-cost": "0.9"})
    assert waited.returncode == 1, waited  # $1.00 > $0.90: only the late usage takes it over the limit
    assert waited.outputs["cost-usd"] == "1.00" and waited.outputs["status"] == "fail", waited
    assert late and posted == ["late-0", "late-1"], "the late usage was posted each time"
    assert proxy.budget_requests() >= 3, proxy.requests  # before, after the change, and once stable
    assert "Waiting" in waited.stdout
    assert "$1.00" in waited.annotations("error")[0]


# ---------------------------------------------------------------- no verdict to ask for


def test_fork_pull_request_without_credentials_exits_0(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # never called
    event = pull_event(head_repo="mallory/widgets")
    run = Runner(tmp_path).run({"server-url": closed, "max-cost": "0.01"}, event=event)
    assert run.returncode == 0, run
    (notice,) = run.annotations("notice")
    assert "fork mallory/widgets" in notice and "no OIDC token" in notice
    assert not run.annotations("error") and "cannot reach" not in run.stdout
    assert "fork mallory/widgets" in run.summary
    assert run.outputs == {"status": "none"}


def test_same_repository_without_credentials_is_an_error(tmp_path: Path) -> None:
    run = Runner(tmp_path).run({"server-url": f"http://127.0.0.1:{free_port()}"})
    assert run.returncode == 1, run
    (error,) = run.annotations("error")
    assert "id-token: write" in error and "token input" in error


def test_an_event_that_is_not_a_pull_request_exits_0(tmp_path: Path) -> None:
    push = {"ref": "refs/heads/main", "after": GITHUB_SHA, "repository": {"full_name": REPO}}
    run = Runner(tmp_path).run({"server-url": "https://tokentrail.example.com"}, event=push, event_name="push")
    assert run.returncode == 0, run
    (notice,) = run.annotations("notice")
    assert "push is not one" in notice
    assert "nothing to check" in run.summary
    assert run.outputs == {"status": "none"}


def test_an_unreachable_server_is_an_error(tmp_path: Path) -> None:
    with OidcIssuer(audience="x", repository=REPO) as issuer:
        closed = f"http://127.0.0.1:{free_port()}"
        run = Runner(tmp_path, issuer).run({"server-url": closed, "max-cost": "1"})
    assert run.returncode == 1, run
    (error,) = run.annotations("error")
    assert f"cannot reach the Tokentrail server at {closed}" in error
    assert "Connection refused" in error
    assert "cannot reach the Tokentrail server" in run.summary
    assert "cost-usd" not in run.outputs


@pytest.mark.parametrize(
    ("inputs", "complaint"),
    [
        ({"fail-on": "sometimes"}, "fail-on input must be one of fail, warn, never"),
        ({"max-cost": "ten"}, "max-cost input must be a number"),
        ({"max-tokens": "1.5"}, "max-tokens input must be a whole number"),
        ({"wait-seconds": "-1"}, "wait-seconds input must be a number of 0 or more"),
        ({"server-url": "tokentrail.example.com"}, "server-url input must be an http(s) URL"),
    ],
)
def test_bad_inputs_are_errors(tmp_path: Path, inputs: dict[str, str], complaint: str) -> None:
    run = Runner(tmp_path).run({"server-url": "https://tokentrail.example.com", "token": "t", **inputs})
    assert run.returncode == 1, run
    (error,) = run.annotations("error")
    assert complaint in error


# ---------------------------------------------------------------- the script itself


def load_action_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tokentrail_action", ACTION / "tokentrail_action.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building the class
    spec.loader.exec_module(module)
    return module


def test_the_script_needs_only_the_standard_library(tmp_path: Path) -> None:
    imported: set[str] = set()
    for script in ("tokentrail_action.py", "usage_files.py"):
        for node in ast.walk(ast.parse((ACTION / script).read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
    # its own module next to it, and the standard library
    assert imported and imported <= set(sys.stdlib_module_names) | {"__future__", "usage_files"}, imported
    py_compile.compile(str(ACTION / "tokentrail_action.py"), cfile=str(tmp_path / "a.pyc"), doraise=True)
    # and it runs in an isolated interpreter that sees no site-packages
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(ACTION / "tokentrail_action.py")], capture_output=True, text=True, env={}
    )
    assert done.returncode == 1 and "server-url input is required" in done.stdout, done


def test_workflow_commands_and_outputs_are_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    action = load_action_module()
    action.command("error", "100% over\r\nbudget", title="AI spend: a, b")
    line = capsys.readouterr().out.strip()
    assert line == "::error title=AI spend%3A a%2C b::100%25 over%0D%0Abudget"
    assert workflow_commands(line) == [Command("error", {"title": "AI spend: a, b"}, "100% over\r\nbudget")]

    output = tmp_path / "output"
    config = action.Config.from_environ({"INPUT_SERVER_URL": "https://t.example", "GITHUB_OUTPUT": str(output)})
    action.write_outputs(config, status="fail", cost_usd="1\nstatus=pass")
    assert parse_outputs(output.read_text()) == {"status": "fail", "cost-usd": "1\nstatus=pass"}


def test_polling_stops_once_the_spend_is_stable() -> None:
    action = load_action_module()
    answers = [
        {"cost_usd": "1", "records": 1, "pending_records": 2},
        {"cost_usd": "2", "records": 2, "pending_records": 0},
        {"cost_usd": "2", "records": 2, "pending_records": 0},
        {"cost_usd": "9", "records": 9, "pending_records": 0},  # never asked for
    ]
    now = [0.0]
    asked: list[str] = []

    class Client:
        config = action.Config.from_environ({"INPUT_SERVER_URL": "https://t.example", "INPUT_WAIT_SECONDS": "60"})

        def get(self, path: str, params: Any = None, **_: Any) -> Any:
            asked.append(path)
            return answers.pop(0) if path.endswith("/budget") else {"head_sha": "a" * 40}

    def sleep(seconds: float) -> None:
        now[0] += seconds

    pr = action.PullRequest(repo=REPO, number=NUMBER, head_sha="a" * 40, head_repo=REPO)
    outcome = action.wait_for_verdict(Client(), pr, sleep=sleep, clock=lambda: now[0])
    assert outcome.verdict == {"cost_usd": "2", "records": 2, "pending_records": 0}
    assert outcome.head_seen
    assert now[0] == 12.0  # two polls of 6 s (a tenth of wait-seconds)
    assert [p.rsplit("/", 1)[-1] for p in asked] == ["budget", "12", "budget", "budget"]

    # and gives up at wait-seconds with the latest answer
    answers[:] = [{"cost_usd": str(i), "records": i, "pending_records": 0} for i in range(100)]
    now[0] = 0.0
    outcome = action.wait_for_verdict(Client(), pr, sleep=sleep, clock=lambda: now[0])
    assert now[0] == 60.0 and outcome.verdict is not None and outcome.verdict["cost_usd"] == "10"
