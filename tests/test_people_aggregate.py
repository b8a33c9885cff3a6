"""No leaderboard of consumption (issue 15): with `dashboard.people: aggregate` no login or e-mail leaves the
server. The test walks every route of the app (a new route must be walked or named here), on SQLite and
PostgreSQL, over the dashboard seed plus a reviewer and an e-mail actor."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker
from starlette.routing import Route

from app.main import create_app
from app.settings import Settings
from app.tables import REPOSITORIES
from tests.conftest import make_token
from tests.dashboard_seed import PERIOD, PULLS, WIDGETS, _pull_event, seed
from tests.github_payloads import make_review_event, webhook_headers
from tests.support import sign_in

PEOPLE = ("alice", "bob", "carol", "dave", "erin", "frank", "rita-reviewer", "zed@corp.example", "zed")
EMAIL_ACTOR = "zed@corp.example"
# Routes that take no part in reading: they accept data or end a session, and answer nothing about people.
NOT_READS = {
    ("POST", "/github/webhook"),
    ("POST", "/v1/usage"),
    ("POST", "/login"),
    ("POST", "/logout"),
}
PARAMS = {  # every value of every path parameter the walk fills in
    "owner": ["acme"],
    "repo": ["widgets", "gateway"],
    "number": ["1", "2", "3", "4", "7"],
}


@contextmanager
def seeded(settings: Settings, factory: sessionmaker[Session]) -> Iterator[tuple[TestClient, str]]:
    app = create_app(settings, run_worker=False)
    tokens = {owner: make_token(factory, owner) for owner in ("acme", "umbrella")}
    with TestClient(app) as client:
        seed(client, tokens, settle=app.state.worker.run_until_idle)
        review = make_review_event(
            "approved",
            pull_event=_pull_event("opened", PULLS[0], closed=False),
            reviewer="rita-reviewer",
            submitted_at=datetime(2026, 10, 6, 13, tzinfo=UTC),
        )
        body = json.dumps(review).encode()
        assert (
            client.post(
                "/github/webhook", content=body, headers=webhook_headers("pull_request_review", body)
            ).status_code
            == 202
        )
        usage = [{"id": "mail-1", "timestamp": "2026-10-06T14:00:00+00:00", "provider": "anthropic",
                  "model": "claude-sonnet-4-5", "input_tokens": 10, "output_tokens": 5, "cost_usd": "0.05",
                  "repo": WIDGETS, "branch": "feat/cache", "actor": EMAIL_ACTOR, "agent": "claude-code"}]  # fmt: skip
        headers = {"Authorization": f"Bearer {tokens['acme']}", "content-type": "application/json"}
        assert client.post("/v1/usage", content=json.dumps(usage).encode(), headers=headers).status_code == 200
        app.state.worker.run_until_idle()
        yield client, tokens["acme"]


def _paths(path: str) -> list[str]:
    names = re.findall(r"{(\w+)(?::\w+)?}", path)
    filled = [path]
    for name in names:
        assert name in PARAMS, f"route {path} has a parameter {name} this walk does not know"
        filled = [re.sub(r"{" + name + r"(?::\w+)?}", value, p, count=1) for p in filled for value in PARAMS[name]]
    return filled


def every_route(routes: list[Any]) -> Iterator[Any]:
    """The app's routes, those of included routers too (FastAPI keeps an included router as one entry)."""
    for route in routes:
        if hasattr(route, "original_router"):
            yield from every_route(route.original_router.routes)
        else:
            yield route


def walk(client: TestClient, token: str) -> dict[str, str]:
    """Every readable route, with every parameter value: {url: body}."""
    sign_in(client, token)
    bodies: dict[str, str] = {}
    for route in every_route(client.app.routes):  # type: ignore[attr-defined]
        if not isinstance(route, APIRoute | Route):
            continue
        for method in sorted(route.methods or ()):
            if method == "HEAD" or (method, route.path) in NOT_READS or route.path.startswith("/v1/ingest/"):
                continue
            assert method == "GET", f"{method} {route.path} is neither walked nor named in NOT_READS"
            for path in _paths(route.path):
                for query in ({}, PERIOD, {**PERIOD, "kind": "monthly"}):
                    answer = client.get(path, params=query, headers={"Authorization": f"Bearer {token}"})
                    assert answer.status_code < 500, (path, answer.text)
                    if answer.status_code == 200:
                        bodies[f"{path}?{query}"] = answer.text
    return bodies


def leaks(bodies: dict[str, str]) -> list[tuple[str, str]]:
    return [
        (url, person)
        for url, body in bodies.items()
        for person in PEOPLE
        if re.search(r"(?<![\w.@-])" + re.escape(person) + r"(?![\w-])", body)
    ]


def test_server_wide_aggregate_names_nobody_anywhere(settings: Settings, factory: sessionmaker[Session]) -> None:
    with seeded(settings.model_copy(update={"dashboard_people": "aggregate"}), factory) as (client, token):
        bodies = walk(client, token)
    assert len(bodies) > 50
    assert {f"/dashboard/acme/widgets/pulls/1?{PERIOD}", f"/v1/repos/acme/widgets/pulls/1/comment.md?{PERIOD}",
            f"/v1/orgs/acme/report.csv?{PERIOD}", f"/v1/repos/acme/gateway/usage?{PERIOD}"} <= set(bodies)  # fmt: skip
    assert leaks(bodies) == []
    report = json.loads(bodies[f"/v1/repos/acme/widgets/report?{PERIOD}"])
    assert report["people"] == [] and report["by_author"] == []
    assert report["team_medians"]["people"] == 5  # authors alice, bob, carol; erin and frank spent on no PR
    page = bodies[f"/dashboard/acme/widgets?{PERIOD}"]
    assert 'data-figure="team-medians"' in page


def test_a_repository_asking_for_aggregate(settings: Settings, factory: sessionmaker[Session]) -> None:
    with seeded(settings, factory) as (client, token):
        shown = walk(client, token)
        assert [p for p in PEOPLE if any(p in body for body in shown.values())]  # the same walk does find them
        with factory() as session, session.begin():
            session.execute(
                sa.update(REPOSITORIES)
                .where(REPOSITORIES.c.full_name == WIDGETS)
                .values(config_text="dashboard:\n  people: aggregate\n")
            )
        worker = client.app.state.worker  # type: ignore[attr-defined]
        with factory() as session, session.begin():  # the comments are rendered again, as a push to main causes
            worker.queue_refresh(session, {(WIDGETS, number) for number in (1, 2, 3, 4)}, delay=0)
        worker.run_until_idle()
        bodies = walk(client, token)
    # acme/gateway still shows its own people on its own pages; the owner's views follow the strictest repository
    assert leaks({url: body for url, body in bodies.items() if "gateway" not in url}) == []


def test_people_are_sorted_by_name_with_outcomes(settings: Settings, factory: sessionmaker[Session]) -> None:
    with seeded(settings, factory) as (client, token):
        answer = client.get(
            "/v1/repos/acme/widgets/report", params=PERIOD, headers={"Authorization": f"Bearer {token}"}
        )
    people = answer.json()["people"]
    assert [p["author"] for p in people] == ["alice", "bob", "carol", "erin", "frank"]
    alice = people[0]
    assert (alice["merged_pull_requests"], alice["merged_changed_lines"]) == (1, 400)
    assert alice["cost_per_merged_changed_line_usd"] is not None
