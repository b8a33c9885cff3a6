"""The whole loop over real HTTP, on SQLite and PostgreSQL: `tokentrail serve` in App mode against a fake GitHub.

Signed webhooks and usage from LiteLLM, OTLP and canonical records go in; exactly one comment comes out with the
right total, cost per changed line and review outcome, edited in place as things change, plus an "AI spend" check
run whose conclusion follows the budget; the API answers the same figures; redelivering everything changes nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import LiveServer, make_token, start_server
from tests.fake_github import FakeGitHub
from tests.github_payloads import make_installation_event, make_pull_request_event, make_review_event, webhook_headers
from tests.support import wait_until_idle

REPO = "acme/widgets"
HEAD = "3f2c9a1" + "0" * 33
OPENED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
APP_ID = 4242
INSTALLATION = 77
CONFIG = "budget:\n  max_cost_per_pr: 0.05\n  warn_at: 0.8\n"


@pytest.fixture
def github(app_keys: tuple[str, str]) -> Iterator[FakeGitHub]:
    with FakeGitHub(app_id=APP_ID, public_key=app_keys[1]) as fake:
        fake.add_installation(INSTALLATION, "acme")
        fake.add_repo(REPO, default_branch="main", installation_id=INSTALLATION)
        fake.add_pull(
            REPO,
            12,
            title="Add a cache layer",
            user="alice",
            head_ref="feat/cache",
            head_sha=HEAD,
            base_ref="main",
            additions=420,
            deletions=96,
            changed_files=12,
            created_at=OPENED,
        )
        fake.set_pull_commits(REPO, 12, [HEAD])
        fake.set_file(REPO, ".github/tokentrail.yml", CONFIG)
        yield fake


@pytest.fixture
def server(database_url: str, tmp_path: Path, github: FakeGitHub, app_keys: tuple[str, str]) -> Iterator[LiveServer]:
    env = {
        "TOKENTRAIL_GITHUB_APP_ID": str(APP_ID),
        "TOKENTRAIL_GITHUB_PRIVATE_KEY": app_keys[0],
        "TOKENTRAIL_GITHUB_API_URL": github.url,
        "TOKENTRAIL_PUBLIC_URL": "https://tokentrail.example.com",
    }
    live = start_server(database_url=database_url, log=tmp_path / "server.log", env=env)
    yield live
    live.stop()


def wait_for(condition: Callable[[], Any], *, what: str, timeout: float = 30.0) -> Any:
    """Poll until `condition()` is truthy (the worker runs in the server's own thread)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Client:
    """Sends what GitHub and the gateways would send, and remembers it for redelivery."""

    def __init__(self, url: str, token: str, factory: sessionmaker[Session]) -> None:
        self.factory = factory  # the server's database, to see when its worker is idle
        self.http = httpx.Client(base_url=url, timeout=30)
        self.auth = {"Authorization": f"Bearer {token}"}
        self.sent: list[tuple[str, bytes, dict[str, str]]] = []

    def webhook(self, event: str, payload: dict[str, Any]) -> httpx.Response:
        body = json.dumps(payload).encode()
        headers = webhook_headers(event, body)
        self.sent.append(("/github/webhook", body, headers))
        response = self.http.post("/github/webhook", content=body, headers=headers)
        assert response.status_code == 202, response.text
        return response

    def usage(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> dict[str, Any]:
        all_headers = {**self.auth, "content-type": "application/json", **(headers or {})}
        self.sent.append((path, body, all_headers))
        response = self.http.post(path, content=body, headers=all_headers)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, headers=self.auth, params=params)

    def replay_everything(self) -> None:
        for path, body, headers in self.sent:
            response = self.http.post(path, content=body, headers=headers)
            assert response.status_code in (200, 202), response.text
            if path == "/github/webhook":
                assert response.json()["reason"] == "delivery already received"
            else:
                assert response.json()["accepted"] == 0


def litellm_call(call_id: str, *, cost: float, at: datetime) -> dict[str, Any]:
    """A LiteLLM StandardLoggingPayload as its generic_api callback posts it, attributed by spend_logs_metadata."""
    return {
        "id": call_id,
        "call_type": "acompletion",
        "status": "success",
        "custom_llm_provider": "openai",
        "startTime": at.timestamp(),
        "endTime": at.timestamp() + 2,
        "model": "gpt-5",
        "response_cost": cost,
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "total_tokens": 1500,
        "metadata": {
            "user_api_key_user_email": "carol@acme.test",
            "spend_logs_metadata": {"repo": REPO, "branch": "feat/cache", "commit": HEAD[:7], "agent": "acme-agent"},
        },
        "request_tags": [],
    }


def claude_code_event(sequence: int, *, cost: str, at: datetime) -> dict[str, Any]:
    """An OTLP logs export with one Claude Code api_request event, VCS attributes on the resource."""

    def attr(key: str, value: Any) -> dict[str, Any]:
        return {"key": key, "value": {"stringValue": value} if isinstance(value, str) else {"intValue": str(value)}}

    nanos = str(int(at.timestamp() * 1e9))
    return {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [
                        attr("service.name", "claude-code"),
                        attr("vcs.repository.url.full", f"https://github.com/{REPO}"),
                        attr("vcs.ref.head.name", "feat/cache"),
                    ]
                },
                "scopeLogs": [
                    {
                        "scope": {"name": "com.anthropic.claude_code.events"},
                        "logRecords": [
                            {
                                "timeUnixNano": nanos,
                                "observedTimeUnixNano": nanos,
                                "body": {"stringValue": "claude_code.api_request"},
                                "attributes": [
                                    attr("event.name", "api_request"),
                                    attr("event.timestamp", at.isoformat().replace("+00:00", "Z")),
                                    attr("event.sequence", sequence),
                                    attr("session.id", "session-1"),
                                    attr("user.email", "alice@acme.test"),
                                    attr("model", "claude-sonnet-4-5"),
                                    attr("input_tokens", 2000),
                                    attr("output_tokens", 700),
                                    attr("cache_read_tokens", 30000),
                                    attr("cache_creation_tokens", 0),
                                    attr("cost_usd", cost),
                                ],
                            }
                        ],
                    }
                ],
            }
        ]
    }


def canonical(record_id: str, *, cost: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "id": record_id,
        "timestamp": at.isoformat(),
        "provider": "anthropic",
        "model": "claude-haiku-4-5",
        "input_tokens": 100,
        "output_tokens": 50,
        "cost_usd": cost,
        "repo": REPO,
        "branch": "feat/cache",
        "actor": "alice",
        "agent": "codex",
        **extra,
    }


def our_comments(github: FakeGitHub) -> list[dict[str, Any]]:
    return [c for c in github.comments(REPO, 12) if c["user"]["login"] == github.bot_login]


@pytest.fixture
def client(server: LiveServer, factory: sessionmaker[Session]) -> Iterator[Client]:
    sender = Client(server.url, make_token(factory, "acme"), factory)
    yield sender
    sender.http.close()


def test_the_whole_loop(client: Client, github: FakeGitHub) -> None:
    client.webhook("installation", make_installation_event(account="acme", installation_id=INSTALLATION))

    # Usage that arrives before its PR is opened, from three sources.
    client.usage(
        "/v1/ingest/litellm", json.dumps([litellm_call("llm-1", cost=0.0125, at=OPENED - timedelta(hours=2))]).encode()
    )
    client.usage(
        "/v1/ingest/otlp/v1/logs",
        json.dumps(claude_code_event(1, cost="0.0200", at=OPENED - timedelta(hours=1))).encode(),
    )
    client.usage("/v1/usage", json.dumps([canonical("c-1", cost="0.0015", at=OPENED + timedelta(minutes=5))]).encode())

    opened = make_pull_request_event("opened", number=12, head_sha=HEAD, created_at=OPENED)
    client.webhook("pull_request", opened)

    first = wait_for(lambda: our_comments(github), what="the first comment")
    assert len(first) == 1
    body = first[0]["body"]
    assert "$0.034" in body  # 0.0125 + 0.0200 + 0.0015
    assert "+420" in body and "96" in body
    check = wait_for(lambda: github.check_runs(REPO, HEAD), what="the check run")
    assert check[-1]["name"] == "AI spend"
    assert check[-1]["conclusion"] == "success"  # $0.034 is 68 % of $0.05

    summary = client.get(f"/v1/repos/{REPO}/pulls/12").json()
    assert summary["usage"]["cost_usd"] == "0.034"
    assert summary["usage"]["records"] == 3
    assert summary["diff"]["changed_lines"] == 516
    assert Decimal(summary["cost_per_changed_line_usd"]) == pytest.approx(Decimal("0.034") / 516, rel=Decimal("0.01"))
    rules = {row["branch"]: row["pr"] for row in client.get(f"/v1/repos/{REPO}/usage").json()["by_branch"]}
    assert rules == {"feat/cache": 12}

    # More usage: the same comment is edited, the check run now warns.
    client.usage("/v1/usage", json.dumps([canonical("c-2", cost="0.0090", at=OPENED + timedelta(minutes=30))]).encode())
    wait_for(lambda: "$0.043" in our_comments(github)[0]["body"], what="the edited comment")
    wait_for(lambda: github.check_runs(REPO, HEAD)[-1]["conclusion"] == "neutral", what="a warning check run")
    budget = client.get(f"/v1/repos/{REPO}/pulls/12/budget").json()
    assert budget["status"] == "warn" and budget["cost_usd"] == "0.043"
    assert client.get(f"/v1/repos/{REPO}/pulls/12/budget", max_cost="0.01").json()["status"] == "fail"

    # A review approving it, then the merge.
    github.add_review(REPO, 12, "bob", "APPROVED", OPENED + timedelta(hours=3))
    client.webhook(
        "pull_request_review",
        make_review_event("approved", pull_event=opened, submitted_at=OPENED + timedelta(hours=3)),
    )
    wait_for(lambda: "approved" in our_comments(github)[0]["body"].lower(), what="the approval in the comment")
    merged_at = OPENED + timedelta(hours=4)
    github.update_pull(REPO, 12, state="closed", merged=True, merged_at=merged_at, closed_at=merged_at)
    client.webhook(
        "pull_request",
        make_pull_request_event(
            "closed", number=12, head_sha=HEAD, created_at=OPENED, closed_at=merged_at, merged=True
        ),
    )
    wait_for(lambda: "merged" in our_comments(github)[0]["body"].lower(), what="the merge in the comment")

    # Over budget: failure.
    client.usage(
        "/v1/usage", json.dumps([canonical("c-3", cost="0.0200", at=OPENED + timedelta(hours=3, minutes=50))]).encode()
    )
    wait_for(lambda: github.check_runs(REPO, HEAD)[-1]["conclusion"] == "failure", what="a failing check run")

    final_comment = our_comments(github)[0]["body"]
    comment_md = client.get(f"/v1/repos/{REPO}/pulls/12/comment.md")
    assert comment_md.headers["content-type"].startswith("text/markdown")
    assert "$0.063" in final_comment and "$0.063" in comment_md.text
    assert client.get(f"/v1/repos/{REPO}/pulls/12").json()["usage"]["cost_usd"] == "0.063"

    # Redeliver every webhook and every usage batch: nothing changes.
    edits_before = len(github.calls_to("PATCH", f"/repos/{REPO}/issues/comments"))
    client.replay_everything()
    wait_until_idle(client.factory)  # every redelivery handled: the worker had its chance to do something wrong
    assert len(our_comments(github)) == 1
    assert our_comments(github)[0]["body"] == final_comment
    assert len(github.calls_to("PATCH", f"/repos/{REPO}/issues/comments")) == edits_before
    assert client.get(f"/v1/repos/{REPO}/pulls/12").json()["usage"]["records"] == 5
    assert len(github.calls_to("POST", f"/repos/{REPO}/issues/12/comments")) == 1
