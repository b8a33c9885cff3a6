"""Comment-triggered runs (`@claude` in a PR comment): the workflow runs on `issue_comment`, whose event names the
pull request by number only (`issue.pull_request` present, no head) and whose OIDC token is the default branch's.
The Action uploads the agent's execution file and asks for the verdict; the server fills the head from the PR it
knows, only in the token's repository. Driven as the runner drives the composite step, against a real
`tokentrail serve` on SQLite and PostgreSQL behind the proxy that is its public URL, with the OIDC issuer."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from app.tables import USAGE
from tests.action_runner import (  # noqa: F401 - fixtures, requested by name
    EXECUTION_COST,
    EXECUTION_FILE,
    NUMBER,
    REPO,
    Proxy,
    Runner,
    api_token,
    comment_run,
    issuer,
    post_ci,
    proxy,
    pull_summary,
    runner,
    seeded,
    server,
    workspace_with,
)
from tests.conftest import LiveServer, make_token
from tests.github_payloads import make_installation_event, make_issue_comment_event, make_pull_request_event
from tests.oidc_issuer import OidcIssuer
from tests.oidc_scene import budget_settled, seed, send_webhook, wait_for

HEAD_SHA = "a" * 40  # the seeded PR's head (make_pull_request_event's default)
OTHER = "umbrella/app"  # another owner's repository, with its own PR #7


def ci_records(factory: sessionmaker[Session]) -> list[tuple[Any, ...]]:
    columns = (USAGE.c.repo, USAGE.c.record_id, USAGE.c.branch, USAGE.c.commit, USAGE.c.pr, USAGE.c.pr_number)
    with factory() as session:
        rows = session.execute(sa.select(*columns).where(USAGE.c.source == "ci").order_by(USAGE.c.record_id))
        return [tuple(row) for row in rows]


def test_a_comment_run_lands_its_agent_spend_on_the_pull_request(
    seeded: datetime,
    server: LiveServer,
    proxy: Proxy,
    issuer: OidcIssuer,
    runner: Runner,
    api_token: str,
    factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    issuer.token_claims = comment_run()
    workspace = workspace_with(tmp_path, "ws", {"claude/execution.json": EXECUTION_FILE})
    inputs = {"server-url": proxy.url, "max-cost": "0.9", "usage-files": "claude/execution.json"}
    event = make_issue_comment_event(number=NUMBER)

    run = runner.run(inputs, event=event, event_name="issue_comment", workspace=workspace)
    # $0.50 seeded + $0.4213 of the agent: over the $0.90 limit only with the upload counted
    assert run.returncode == 1, str(run)
    assert (run.outputs["status"], run.outputs["cost-usd"]) == ("fail", "0.92"), str(run)
    assert "claude-code-action): 2 new, 0 already counted" in run.stdout, str(run)
    assert f"{REPO}#{NUMBER} at its latest head" in run.stdout, str(run)
    assert run.outputs["comment-url"].startswith(f"https://github.com/{REPO}/pull/{NUMBER}"), run.outputs
    summary = pull_summary(server, api_token)
    assert Decimal(summary["usage"]["cost_usd"]) == Decimal("0.50") + EXECUTION_COST
    assert "claude-code-action" in {row["agent"] for row in summary["by_actor"]}, summary["by_actor"]
    # the explicit PR, with the head the server knows (the token's ref is the default branch's, not the PR's)
    stored = ci_records(factory)
    assert len(stored) == 2, stored
    for repo, record_id, branch, commit, pr, matched in stored:
        assert (repo, branch, commit, pr, matched) == (REPO, "feat/cache", HEAD_SHA, NUMBER, NUMBER)
        assert record_id.startswith("3003:claude-code-action:"), record_id  # the run id keys it

    # "Re-run jobs": attempt 2 of the same run uploads the same file again and adds nothing
    issuer.token_claims = {**comment_run(), "run_attempt": "2"}
    again = runner.run(inputs, event=event, event_name="issue_comment", workspace=workspace)
    assert (again.returncode, again.outputs["cost-usd"]) == (1, "0.92"), str(again)
    assert "0 new, 2 already counted" in again.stdout, str(again)
    assert ci_records(factory) == stored

    # the next `@claude` comment is another run: its agent's new session counts
    issuer.token_claims = {**comment_run(), "run_id": "3004"}
    rerun_file = json.loads(EXECUTION_FILE.read_text())
    for message in rerun_file:
        message["session_id"] = "5f1c2d3e-4b5a-4c6d-9e8f-7a6b5c4d3e2f"
    fresh = workspace_with(tmp_path, "ws2", {"claude/execution.json": json.dumps(rerun_file)})
    third = runner.run({**inputs, "max-cost": "5"}, event=event, event_name="issue_comment", workspace=fresh)
    assert (third.returncode, third.outputs["status"], third.outputs["cost-usd"]) == (0, "pass", "1.34"), str(third)


def test_a_comment_on_a_plain_issue_has_nothing_to_check(
    server: LiveServer, proxy: Proxy, issuer: OidcIssuer, runner: Runner, tmp_path: Path
) -> None:
    issuer.token_claims = comment_run()
    workspace = workspace_with(tmp_path, "ws", {"execution.json": EXECUTION_FILE})
    event = make_issue_comment_event(number=3, on_pull_request=False)
    run = runner.run(
        {"server-url": proxy.url, "usage-files": "execution.json"},
        event=event,
        event_name="issue_comment",
        workspace=workspace,
    )
    assert run.returncode == 0, str(run)
    (notice,) = run.annotations("notice")
    assert notice == "issue_comment of issue #3, which is not a pull request: nothing to check.", notice
    assert "nothing to check" in run.summary and run.outputs == {"status": "none"}
    assert issuer.token_requests == [] and proxy.requests == []  # no token asked for, nothing uploaded


def test_the_upstream_comment_example_is_a_plain_issue(tmp_path: Path) -> None:
    """octokit's verbatim `issue_comment` example (a comment on an issue) as the job's event file, as GitHub writes
    it: no server is asked anything."""
    event = json.loads((Path(__file__).parent / "fixtures/github/issue_comment.created.payload.json").read_text())
    run = Runner(tmp_path).run({"server-url": "http://127.0.0.1:9"}, event=event, event_name="issue_comment")
    assert run.returncode == 0, str(run)
    assert run.annotations("notice") == ["issue_comment of issue #1, which is not a pull request: nothing to check."]


def test_a_token_of_one_repository_cannot_reach_another_repository_pull_request(
    seeded: datetime,
    server: LiveServer,
    proxy: Proxy,
    issuer: OidcIssuer,
    runner: Runner,
    api_token: str,
    factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    umbrella = make_token(factory, "umbrella")
    send_webhook(
        server.url, "installation", make_installation_event(account="umbrella", installation_id=78, repos=(OTHER,))
    )
    seed(server.url, umbrella, repo=OTHER, number=7, costs=("1.00",), installation=False, installation_id=78)
    # a comment run of acme/widgets whose event (written by whoever controls the workflow) names umbrella/app#7
    issuer.token_claims = comment_run()
    workspace = workspace_with(tmp_path, "ws", {"execution.json": EXECUTION_FILE})
    event = make_issue_comment_event(repo=OTHER, number=7)
    run = runner.run(
        {"server-url": proxy.url, "usage-files": "execution.json"},
        event=event,
        event_name="issue_comment",
        workspace=workspace,
    )
    assert run.returncode == 1, str(run)
    (warning,) = run.annotations("warning")
    assert "was not uploaded (404)" in warning and f"no pull request {REPO}#7" in warning, warning
    (error,) = run.annotations("error")
    assert "(403)" in error and f"this OIDC token is for {REPO}, not {OTHER}" in error, error

    # straight at the endpoint, with the other repository in the headers too: the token's repository decides
    own = issuer.mint(aud=proxy.url, **comment_run())
    named = post_ci(
        server,
        own,
        EXECUTION_FILE.read_bytes(),
        **{"x-vcs-change-id": "7", "x-vcs-repository-url-full": f"https://github.com/{OTHER}"},
    )
    assert named.status_code == 404, named.text
    assert named.json()["detail"].startswith(f"Tokentrail knows no pull request {REPO}#7"), named.text
    assert ci_records(factory) == []  # nothing stored anywhere
    assert pull_summary(server, umbrella, repo=OTHER, number=7)["usage"]["cost_usd"] == "1"
    assert pull_summary(server, api_token)["usage"]["cost_usd"] == "0.5"


def test_a_pull_request_the_server_does_not_know(
    seeded: datetime,
    server: LiveServer,
    proxy: Proxy,
    issuer: OidcIssuer,
    runner: Runner,
    factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    issuer.token_claims = comment_run()
    workspace = workspace_with(tmp_path, "ws", {"execution.json": EXECUTION_FILE})
    inputs = {"server-url": proxy.url, "usage-files": "execution.json"}
    run = runner.run(inputs, event=make_issue_comment_event(number=99), event_name="issue_comment", workspace=workspace)
    assert run.returncode == 0, str(run)  # a warning, as for a verdict of an unknown PR
    upload, verdict = run.annotations("warning")
    assert "execution.json was not uploaded (404)" in upload and f"{REPO}#99" in upload, upload
    assert f"does not know {REPO}#99" in verdict, verdict
    assert run.outputs["status"] == "none"
    assert ci_records(factory) == []


def test_with_wait_seconds_the_upload_waits_for_the_pull_request(
    seeded: datetime,
    server: LiveServer,
    proxy: Proxy,
    issuer: OidcIssuer,
    runner: Runner,
    api_token: str,
    factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    """The comment came right after the PR was opened, before its webhook reached Tokentrail."""
    opened = datetime.now(UTC).replace(microsecond=0)
    pull = make_pull_request_event("opened", number=13, head_ref="feat/retry", head_sha="c" * 40, created_at=opened)

    def webhook_arrives_after_the_first_refusal(path: str) -> None:
        if path.startswith("/v1/ingest/ci") and not delivered:
            delivered.append(path)
            send_webhook(server.url, "pull_request", pull)
            wait_for(lambda: budget_settled(server.url, api_token, number=13, cost="0"), what="PR #13 known")

    delivered: list[str] = []
    proxy.after_upstream = webhook_arrives_after_the_first_refusal
    issuer.token_claims = comment_run()
    workspace = workspace_with(tmp_path, "ws", {"execution.json": EXECUTION_FILE})
    inputs = {"server-url": proxy.url, "usage-files": "execution.json", "wait-seconds": "30"}
    run = runner.run(inputs, event=make_issue_comment_event(number=13), event_name="issue_comment", workspace=workspace)
    assert run.returncode == 0, str(run)
    assert delivered and "Waiting" in run.stdout and "knows no pull request" in run.stdout, str(run)
    assert "claude-code-action): 2 new" in run.stdout and not run.annotations("warning"), str(run)
    assert run.outputs["cost-usd"] == "0.42", str(run)
    assert {(row[2], row[3], row[5]) for row in ci_records(factory)} == {("feat/retry", "c" * 40, 13)}
    answer = httpx.get(
        f"{server.url}/v1/repos/{REPO}/pulls/13/budget", headers={"Authorization": f"Bearer {api_token}"}, timeout=30
    )
    assert answer.json()["records"] == 2, answer.text
