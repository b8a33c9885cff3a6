"""Dates at the edges of the calendar on the read side, on SQLite and PostgreSQL.

Ingest refuses timestamps outside 2020-01-01 … now + 24 h, but rows stored before that rule (or written by hand)
may hold any date: a usage row dated 9999-12-31 on someone's PR must not break a single page or report of its
owner. And a period bound that cannot be turned into a period (`until=9999-12-31`, `until=0001-01-01`, a
`since` whose offset moves it before year 1) is bad input: 422 with a reason, an error page on the dashboard.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.main import create_app
from app.pull_rollup import rebuild_all
from app.settings import Settings
from app.tables import JOBS, USAGE
from tests.conftest import make_token
from tests.github_payloads import make_pull_request_event, webhook_headers
from tests.support import sign_in

REPO = "acme/widgets"
OPENED = datetime(2026, 10, 5, 9, tzinfo=UTC)
FAR_FUTURE = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
FAR_PAST = datetime(1, 1, 1, 0, 0, 1, tzinfo=UTC)

JSON_ROUTES = [
    f"/v1/repos/{REPO}/usage",
    f"/v1/repos/{REPO}/pulls/12",
    f"/v1/repos/{REPO}/pulls/12/budget",
    f"/v1/repos/{REPO}/pulls/12/comment.md",
    f"/v1/repos/{REPO}/report",
    "/v1/orgs/acme/report",
]
PAGES = ["/dashboard/acme", f"/dashboard/{REPO}", f"/dashboard/{REPO}/pulls/12"]
REPORTS = [f"/v1/repos/{REPO}/report", "/v1/orgs/acme/report"]
OVERVIEWS = ["/dashboard/acme", f"/dashboard/{REPO}"]
BAD_PERIODS = [
    {"until": "9999-12-31"},
    {"until": "0001-01-01"},
    {"since": "0001-01-01T00:00:00+01:00"},
    {"since": "9999-12-31T23:00:00-05:00"},
    {"since": "0001-01-01", "until": "0001-01-02"},
]


def _row(record_id: str, at: datetime, *, pr_number: int | None) -> dict[str, object]:
    return {
        "source": "api",
        "record_id": record_id,
        "timestamp": at,
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "cost_nanousd": 1_000_000_000,
        "cost_reported": True,
        "owner": "acme",
        "repo": REPO,
        "branch": "feat/cache" if pr_number else "spike",
        "actor": "alice",
        "agent": "claude-code",
        "received_at": OPENED,
        "pr_repo": REPO if pr_number else None,
        "pr_number": pr_number,
        "match_rule": "branch" if pr_number else None,
        "matched_at": OPENED,
    }


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings, run_worker=False)


@pytest.fixture
def client(app: FastAPI, factory: sessionmaker[Session]) -> Iterator[TestClient]:
    """A PR of acme/widgets with ordinary usage, plus rows dated 9999-12-31 and 0001-01-01 written straight into
    the usage table (on the PR and unmatched), as data stored before ingest checked timestamps."""
    token = make_token(factory)
    with TestClient(app) as test_client:
        body = json.dumps(make_pull_request_event(created_at=OPENED)).encode()
        response = test_client.post("/github/webhook", content=body, headers=webhook_headers("pull_request", body))
        assert response.status_code == 202, response.text
        usage = [{"id": "normal", "timestamp": "2026-10-05T10:00:00Z", "provider": "anthropic",
                  "model": "claude-sonnet-4-5", "input_tokens": 10, "cost_usd": "0.50", "repo": REPO,
                  "branch": "feat/cache", "actor": "alice"}]  # fmt: skip
        headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
        assert test_client.post("/v1/usage", content=json.dumps(usage), headers=headers).status_code == 200
        app.state.worker.run_until_idle()
        with factory() as session, session.begin():
            session.execute(
                sa.insert(USAGE),
                [
                    _row("future-on-pr", FAR_FUTURE, pr_number=12),
                    _row("past-on-pr", FAR_PAST, pr_number=12),
                    _row("future-unmatched", FAR_FUTURE, pr_number=None),
                    _row("past-unmatched", FAR_PAST, pr_number=None),
                ],
            )
            rebuild_all(session.connection())  # what migration 0014 does to rows stored before it
        test_client.headers["Authorization"] = f"Bearer {token}"
        sign_in(test_client, token)
        yield test_client


def test_rows_dated_at_the_ends_of_the_calendar_break_no_route(client: TestClient) -> None:
    for route in JSON_ROUTES:
        response = client.get(route)
        assert response.status_code == 200, (route, response.text)
    summary = client.get(f"/v1/repos/{REPO}/pulls/12").json()
    assert (summary["usage"]["records"], summary["usage"]["cost_usd"]) == (3, "2.5")
    assert client.get(f"/v1/repos/{REPO}/usage").json()["records"] == 5
    pages = {page: client.get(page) for page in PAGES}
    assert {page: response.status_code for page, response in pages.items()} == dict.fromkeys(PAGES, 200)
    assert "$2.50" in pages[f"/dashboard/{REPO}/pulls/12"].text  # the PR's three records, the far ones included


def test_the_worker_renders_the_comment_of_a_pull_request_holding_such_rows(
    client: TestClient, app: FastAPI, factory: sessionmaker[Session]
) -> None:
    body = json.dumps(make_pull_request_event("reopened", created_at=OPENED)).encode()
    response = client.post("/github/webhook", content=body, headers=webhook_headers("pull_request", body))
    assert response.status_code == 202, response.text
    app.state.worker.run_until_idle()
    with factory() as session:
        states = {row.kind: row.state for row in session.execute(sa.select(JOBS.c.kind, JOBS.c.state))}
    assert set(states.values()) == {"done"}, states
    comment = client.get(f"/v1/repos/{REPO}/pulls/12/comment.md")
    assert comment.status_code == 200 and "**$2.50**" in comment.text


@pytest.mark.parametrize("period", BAD_PERIODS, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()))
def test_a_period_bound_past_the_calendar_is_a_422(client: TestClient, period: dict[str, str]) -> None:
    for route in REPORTS:
        response = client.get(route, params=period)
        assert response.status_code == 422, (route, response.text)
        assert isinstance(response.json()["detail"], str) and response.json()["detail"]
    for page in OVERVIEWS:
        response = client.get(page, params=period)
        assert response.status_code == 422, (page, response.text[:300])
        assert "Bad period" in response.text
    response = client.get(f"/v1/repos/{REPO}/usage", params=period)
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["detail"], str)


def test_a_bound_with_an_offset_is_the_same_instant_on_every_database(client: TestClient) -> None:
    # The ordinary record was made at 10:00 UTC, i.e. 12:00 at +02:00.
    def records(**period: str) -> int:
        response = client.get(f"/v1/repos/{REPO}/usage", params=period)
        assert response.status_code == 200, response.text
        count: int = response.json()["records"]
        return count

    assert records(since="2026-10-05T11:30:00+02:00", until="2026-10-05T12:30:00+02:00") == 1
    assert records(since="2026-10-05T12:30:00+02:00", until="2026-10-06T00:00:00+02:00") == 0
    assert records(since="2026-10-05T09:30:00", until="2026-10-05T10:30:00") == 1  # no offset: UTC
