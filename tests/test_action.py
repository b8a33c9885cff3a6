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
import py_compile
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.action_runner import (  # noqa: F401 - fixtures
    ACTION,
    GITHUB_SHA,
    NUMBER,
    OPENED,
    REPO,
    Command,
    Proxy,
    Run,
    Runner,
    _unescape,
    action_definition,
    api_token,
    expand,
    issuer,
    parse_outputs,
    proxy,
    pull_event,
    runner,
    seeded,
    server,
    workflow_commands,
)
from tests.conftest import LiveServer, free_port
from tests.github_payloads import make_pull_request_event
from tests.oidc_issuer import TOKEN_PATH, OidcIssuer
from tests.oidc_scene import budget_settled, comparable, post_usage, seed, usage_record, wait_for

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


# ---------------------------------------------------------------- the server behind a proxy


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
