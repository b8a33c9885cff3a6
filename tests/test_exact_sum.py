"""Sums of the largest values the limits let in, on SQLite and PostgreSQL: exact, never an overflow.

Each record's cost stays below 10^18 nano-dollars and each token count below 10^15 (DESIGN §2), yet ten records
at the limit add up past 2^63: SQLite's SUM raised "integer overflow", so a PR holding them answered 500 on every
page and its refresh failed in the worker. A fork's records land on the base repository's PR, so one owner could do
this to another's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from app.exact_sum import exact_sum
from app.main import create_app
from app.settings import Settings
from app.tables import JOBS
from tests.conftest import make_token
from tests.github_payloads import make_pull_request_event, webhook_headers
from tests.support import sign_in

REPO = "acme/widgets"
OPENED = datetime(2026, 10, 5, 9, tzinfo=UTC)
LARGEST_COST = "999999999.999999999"  # just below the 10^9 USD limit
LARGEST_TOKENS = 10**15 - 1
RECORDS = 12


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings, run_worker=False)


@pytest.fixture
def client(app: FastAPI, factory: sessionmaker[Session]) -> Iterator[TestClient]:
    token = make_token(factory)
    with TestClient(app) as test_client:
        body = json.dumps(make_pull_request_event(created_at=OPENED)).encode()
        response = test_client.post("/github/webhook", content=body, headers=webhook_headers("pull_request", body))
        assert response.status_code == 202, response.text
        records = [
            {"id": f"huge-{n}", "timestamp": "2026-10-05T10:00:00Z", "provider": "anthropic",
             "model": "claude-sonnet-4-5", "input_tokens": LARGEST_TOKENS, "output_tokens": LARGEST_TOKENS,
             "cost_usd": LARGEST_COST, "repo": REPO, "pr": 12, "actor": "alice"}
            for n in range(RECORDS)
        ]  # fmt: skip
        headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
        response = test_client.post("/v1/usage", content=json.dumps(records), headers=headers)
        assert response.status_code == 200 and response.json()["accepted"] == RECORDS, response.text
        app.state.worker.run_until_idle()
        test_client.headers["Authorization"] = f"Bearer {token}"
        sign_in(test_client, token)
        yield test_client


def test_sums_past_two_to_the_sixty_three_are_exact_on_every_route(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    with factory() as session:
        states = {row.kind: row.state for row in session.execute(sa.select(JOBS.c.kind, JOBS.c.state))}
    assert set(states.values()) == {"done"}, states
    summary = client.get(f"/v1/repos/{REPO}/pulls/12")
    assert summary.status_code == 200, summary.text
    usage = summary.json()["usage"]
    assert usage["cost_usd"] == "11999999999.999999988"  # 12 × 999,999,999.999999999, to the nano-dollar
    assert usage["records"] == RECORDS
    for route in (f"/v1/repos/{REPO}/usage", f"/v1/repos/{REPO}/report", "/v1/orgs/acme/report",
                  f"/v1/repos/{REPO}/pulls/12/comment.md", f"/v1/repos/{REPO}/pulls/12/budget",
                  "/dashboard/acme", f"/dashboard/{REPO}", f"/dashboard/{REPO}/pulls/12"):  # fmt: skip
        response = client.get(route)
        assert response.status_code == 200, (route, response.text[:300])
    assert client.get(f"/v1/repos/{REPO}/usage").json()["records"] == RECORDS


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.integers(min_value=0, max_value=10**18 - 1), max_size=25))
def test_exact_sum_equals_python_sum(values: list[int], factory: sessionmaker[Session]) -> None:
    table = sa.table("exact_sum_probe", sa.column("value", sa.BigInteger))
    with factory() as session, session.begin():
        session.execute(sa.text("CREATE TEMPORARY TABLE exact_sum_probe (value BIGINT NOT NULL)"))
        if values:
            session.execute(sa.insert(table), [{"value": v} for v in values])
        total = session.execute(sa.select(exact_sum(table.c.value))).scalar_one()
        session.execute(sa.text("DROP TABLE exact_sum_probe"))
    assert total == (sum(values) if values else None)


def test_a_fork_owner_sending_records_at_the_limits_breaks_none_of_the_base_owners_pages(
    app: FastAPI, factory: sessionmaker[Session]
) -> None:
    """The attacker owns a fork, opens a PR from it into acme/widgets and shares its spend with the base (its own
    token's consent), then sends records at the limits on the PR's branch: acme's PR figures stay exact and every
    acme page answers."""
    acme = make_token(factory)
    mallory = make_token(factory, "mallory", share_upstream=True)
    with TestClient(app) as client:
        event = make_pull_request_event(created_at=OPENED, head_repo="mallory/widgets", head_ref="feat/huge")
        body = json.dumps(event).encode()
        assert (
            client.post("/github/webhook", content=body, headers=webhook_headers("pull_request", body)).status_code
            == 202
        )
        records = [
            {"id": f"huge-{n}", "timestamp": "2026-10-05T10:00:00Z", "model": "claude-sonnet-4-5",
             "input_tokens": LARGEST_TOKENS, "cost_usd": LARGEST_COST, "repo": "mallory/widgets",
             "branch": "feat/huge"}
            for n in range(RECORDS)
        ]  # fmt: skip
        headers = {"Authorization": f"Bearer {mallory}", "content-type": "application/json"}
        response = client.post("/v1/usage", content=json.dumps(records), headers=headers)
        assert response.status_code == 200 and response.json()["accepted"] == RECORDS, response.text
        app.state.worker.run_until_idle()
        with factory() as session:
            states = {row.state for row in session.execute(sa.select(JOBS.c.state))}
        assert states == {"done"}, states
        client.headers["Authorization"] = f"Bearer {acme}"
        summary = client.get(f"/v1/repos/{REPO}/pulls/12")
        assert summary.status_code == 200, summary.text
        assert summary.json()["usage"]["cost_usd"] == "11999999999.999999988"  # the fork's shared spend, exact
        sign_in(client, acme)
        for route in (f"/v1/repos/{REPO}/report", "/v1/orgs/acme/report", f"/v1/repos/{REPO}/pulls/12/comment.md",
                      "/dashboard/acme", f"/dashboard/{REPO}", f"/dashboard/{REPO}/pulls/12"):  # fmt: skip
            response = client.get(route)
            assert response.status_code == 200, (route, response.text[:300])
