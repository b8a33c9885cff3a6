"""Helpers shared by several test modules (moved from their first test module, so that none imports another)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer, start_server
from tests.github_payloads import make_installation_event, make_pull_request_event, webhook_headers
from tests.oidc_issuer import OidcIssuer

AUDIENCE = "https://tokentrail.test"


REPO = "acme/widgets"


NUMBER = 12


def wait_for(condition: Callable[[], Any], *, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def send_webhook(url: str, event: str, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    response = httpx.post(f"{url}/github/webhook", content=body, headers=webhook_headers(event, body), timeout=30)
    assert response.status_code == 202, response.text


def usage_record(
    record_id: str, *, cost: str, at: datetime, repo: str = REPO, branch: str = "feat/cache"
) -> dict[str, Any]:
    return {
        "id": record_id,
        "timestamp": at.isoformat(),
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "input_tokens": 100,
        "output_tokens": 50,
        "cost_usd": cost,
        "repo": repo,
        "branch": branch,
        "actor": "alice",
        "agent": "claude-code",
    }


def post_usage(url: str, token: str, records: list[dict[str, Any]]) -> None:
    response = httpx.post(f"{url}/v1/usage", json=records, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(records), response.text


def budget_settled(url: str, token: str, *, repo: str = REPO, number: int = NUMBER, cost: str) -> bool:
    """True once the server has matched every record and the PR's cost is `cost`."""
    response = httpx.get(
        f"{url}/v1/repos/{repo}/pulls/{number}/budget", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    if response.status_code != 200:
        return False
    body = response.json()
    return bool(body["pending_records"] == 0 and body["cost_usd"] == cost)


def seed(
    url: str,
    token: str,
    *,
    repo: str = REPO,
    number: int = NUMBER,
    costs: tuple[str, ...] = ("0.25", "0.25"),
    installation: bool = True,
    **pull: Any,
) -> datetime:
    """An installation for the owner (optional), a signed pull_request.opened webhook (dry-run takes the PR facts
    from it), usage on the PR's branch; waits until the server has processed all of it. Returns the PR's open time."""
    owner = repo.split("/")[0]
    opened = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    if installation:
        send_webhook(url, "installation", make_installation_event(account=owner, repos=(repo,)))
    send_webhook(
        url, "pull_request", make_pull_request_event("opened", repo=repo, number=number, created_at=opened, **pull)
    )
    records = [
        usage_record(f"{repo}-{number}-{i}", cost=cost, at=opened + timedelta(minutes=10 + i), repo=repo)
        for i, cost in enumerate(costs)
    ]
    if records:
        post_usage(url, token, records)
    total = format(sum((Decimal(c) for c in costs), Decimal(0)).normalize(), "f")
    wait_for(lambda: budget_settled(url, token, repo=repo, number=number, cost=total), what=f"{repo}#{number} seeded")
    return opened


@pytest.fixture
def issuer() -> Iterator[OidcIssuer]:
    with OidcIssuer(audience=AUDIENCE, repository=REPO) as running:
        yield running


@pytest.fixture
def server(database_url: str, tmp_path: Path, issuer: OidcIssuer) -> Iterator[LiveServer]:
    env = {"TOKENTRAIL_OIDC_JWKS_URL": issuer.jwks_url, "TOKENTRAIL_PUBLIC_URL": AUDIENCE + "/"}
    live = start_server(database_url=database_url, log=tmp_path / "server.log", env=env)
    yield live
    live.stop()


def comparable(markdown: str) -> str:
    """The rendered comment without what changes with the time it was rendered (the state marker, the minute)."""
    lines = (line for line in markdown.splitlines() if not line.startswith("<!-- tokentrail:state "))
    return re.sub(r"updated \d{4}-\d\d-\d\d \d\d:\d\d UTC", "updated <time>", "\n".join(lines))


def get(server: LiveServer, path: str, token: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", headers={"Authorization": f"Bearer {token}"}, params=params, timeout=30)
