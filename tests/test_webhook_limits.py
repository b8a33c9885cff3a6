"""Signed webhooks whose values do not fit the database (DESIGN §9): a PR number of 2^40, an installation id of
2^70, a login of 101 characters. Each is answered 200 "ignored" with a reason naming the field and is never
queued, on SQLite and PostgreSQL; the same deliveries with every value at its column's limit are queued and the
worker stores them, so the limits refuse nothing that fits."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.events import Ignored, loads, parse_event
from app.main import build_worker, create_app
from app.settings import Settings
from app.tables import DELIVERIES, INSTALLATIONS, JOBS, PULLS, REPOSITORIES, REVIEWS
from tests.github_payloads import sign

GITHUB = Path(__file__).resolve().parent / "fixtures" / "github"
BIG_ID = 2**63  # one past BIGINT
TOO_LONG_LOGIN = "l" * 101

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # what the worker would pass as the time of handling


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GITHUB / name).read_text())
    return data


def setting(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change to a payload: the key at the dotted `path` (list indexes as numbers) becomes `value`."""

    def change(payload: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = payload
        for step in parents:
            node = node[int(step)] if isinstance(node, list) else node[step]
        node[int(last) if isinstance(node, list) else last] = value

    return change


# (fixture, the change, a fragment of the reason naming the field)
OUT_OF_RANGE: list[tuple[str, str, Any, str]] = [
    ("pull_request.opened.payload.json", "pull_request.number", 2**40, "pull_request.number"),
    ("pull_request.opened.payload.json", "pull_request.number", 2**31, "pull_request.number"),
    ("pull_request.opened.payload.json", "pull_request.number", 0, "pull_request.number"),
    ("pull_request.opened.payload.json", "installation", {"id": 2**70}, "installation.id"),
    ("pull_request.opened.payload.json", "pull_request.user.login", TOO_LONG_LOGIN, "pull_request.user.login"),
    ("pull_request.opened.payload.json", "pull_request.head.ref", "r" * 256, "pull_request.head.ref"),
    ("pull_request.opened.payload.json", "pull_request.base.ref", "r" * 256, "pull_request.base.ref"),
    ("pull_request.opened.payload.json", "pull_request.head.sha", "a" * 41, "pull_request.head.sha"),
    ("pull_request.opened.payload.json", "pull_request.head.sha", "z" * 40, "pull_request.head.sha"),
    ("pull_request.opened.payload.json", "pull_request.html_url", "https://" + "u" * 493, "pull_request.html_url"),
    ("pull_request.opened.payload.json", "pull_request.additions", 2**31, "pull_request.additions"),
    ("pull_request.opened.payload.json", "pull_request.changed_files", 2**40, "pull_request.changed_files"),
    ("pull_request.opened.payload.json", "repository.full_name", "o/" + "n" * 199, "repository.full_name"),
    ("pull_request.opened.payload.json", "repository.default_branch", "d" * 256, "repository.default_branch"),
    ("pull_request.opened.payload.json", "repository.id", BIG_ID, "repository.id"),
    ("pull_request.opened.payload.json", "repository.owner.id", 2**70, "repository.owner.id"),
    ("pull_request.opened.fork.json", "pull_request.head.repo.full_name", "f/" + "n" * 199, "pull_request.head.repo"),
    ("pull_request.synchronize.payload.json", "before", "not-a-sha", "before"),
    ("pull_request_review.submitted.payload.json", "review.id", BIG_ID, "review.id"),
    ("pull_request_review.submitted.payload.json", "review.user.login", TOO_LONG_LOGIN, "review.user.login"),
    ("pull_request_review.submitted.payload.json", "review.state", "s" * 33, "review.state"),
    ("pull_request_review.submitted.payload.json", "pull_request.number", 2**40, "pull_request.number"),
    ("push.forced.json", "ref", "refs/heads/" + "b" * 256, "ref"),
    ("push.forced.json", "after", "f" * 39, "after"),
    ("push.forced.json", "commits.0.id", "c" * 41, "commits[0].id"),
    ("push.forced.json", "installation", {"id": 2**70}, "installation.id"),
    ("installation.created.payload.json", "installation.id", 2**70, "installation.id"),
    ("installation.created.payload.json", "installation.account.login", TOO_LONG_LOGIN, "installation.account.login"),
    ("installation.created.payload.json", "installation.account.id", BIG_ID, "installation.account.id"),
    ("installation.created.payload.json", "installation.account.type", "t" * 33, "installation.account.type"),
    ("installation.created.payload.json", "repositories.0.id", BIG_ID, "repositories[0].id"),
    ("installation.created.payload.json", "repositories.0.full_name", "o/" + "n" * 199, "repositories[0]"),
    ("installation_repositories.added.payload.json", "repositories_added.0.id", BIG_ID, "repositories_added[0].id"),
    ("installation_repositories.removed.payload.json", "repositories_removed.0.full_name", "o/" + "n" * 199, "removed"),
    ("check_suite.rerequested.payload.json", "check_suite.pull_requests.0.number", 2**40, "pull_requests[0].number"),
    ("check_suite.rerequested.payload.json", "check_suite.head_sha", "h" * 40, "check_suite.head_sha"),
]
CASE_IDS = [f"{name.split('.')[0]}:{path}={str(value)[:12]}" for name, path, value, _ in OUT_OF_RANGE]


def event_of(name: str) -> str:
    return name.split(".", 1)[0]


def out_of_range_payload(name: str, path: str, value: Any) -> dict[str, Any]:
    payload = fixture(name)
    setting(path, value)(payload)
    return payload


@pytest.mark.parametrize(("name", "path", "value", "field"), OUT_OF_RANGE, ids=CASE_IDS)
def test_a_value_that_does_not_fit_its_column_ignores_the_event(name: str, path: str, value: Any, field: str) -> None:
    parse_event(event_of(name), fixture(name), now=NOW)  # the pristine fixture is an event
    with pytest.raises(Ignored) as ignored:
        parse_event(event_of(name), out_of_range_payload(name, path, value), now=NOW)
    assert field in ignored.value.reason


def test_a_huge_integer_is_ignored_not_an_error() -> None:
    body = b'{"action": "opened", "number": ' + b"9" * 5000 + b"}"
    with pytest.raises(Ignored, match="not JSON"):
        loads(body)


# ---------------------------------------------------------------- through the signed webhook route


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """Without the in-process worker: what is queued must stay visible."""
    with TestClient(create_app(settings, run_worker=False)) as test_client:
        yield test_client


def deliver(client: TestClient, event: str, payload: Any) -> Any:
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(body),
    }
    return client.post("/github/webhook", content=body, headers=headers)


def count(factory: sessionmaker[Session], table: sa.Table) -> int:
    with factory() as session:
        return int(session.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


@pytest.mark.parametrize(("name", "path", "value", "field"), OUT_OF_RANGE, ids=CASE_IDS)
def test_the_route_answers_ignored_and_queues_nothing(
    client: TestClient, factory: sessionmaker[Session], name: str, path: str, value: Any, field: str
) -> None:
    response = deliver(client, event_of(name), out_of_range_payload(name, path, value))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ignored"
    assert field in response.json()["reason"]
    assert count(factory, DELIVERIES) == 0
    assert count(factory, JOBS) == 0


def test_an_integer_beyond_python_s_limit_is_ignored(client: TestClient, factory: sessionmaker[Session]) -> None:
    body = b'{"action": "opened", "number": ' + b"9" * 5000 + b"}"
    headers = {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "huge", "X-Hub-Signature-256": sign(body)}
    response = client.post("/github/webhook", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ignored", "reason": "payload is not JSON"}
    assert count(factory, JOBS) == 0


# ---------------------------------------------------------------- at the limits: queued and stored


def at_the_limits() -> list[tuple[str, dict[str, Any]]]:
    """Deliveries with every checked value at its column's limit."""
    longest_login = "l" * 100
    installation = fixture("installation.created.payload.json")
    installation["installation"].update(id=2**63 - 1)
    installation["installation"]["account"].update(login=longest_login, id=2**63 - 1, type="t" * 32)
    installation["repositories"][0].update(id=2**63 - 1, full_name=f"{longest_login}/" + "r" * 99)

    opened = fixture("pull_request.opened.payload.json")
    opened["installation"] = {"id": 2**63 - 1}
    opened["repository"].update(full_name="o/" + "r" * 198, default_branch="d" * 255, id=2**63 - 1)
    opened["repository"]["owner"]["id"] = 2**63 - 1
    pull = opened["pull_request"]
    pull.update(number=2**31 - 1, html_url="https://" + "u" * 492, additions=2**31 - 1, changed_files=2**31 - 1)
    pull["user"]["login"] = longest_login
    pull["head"].update(ref="h" * 255, sha="A" * 40)
    pull["head"]["repo"] = {**pull["head"]["repo"], "full_name": "f/" + "r" * 198}
    pull["base"]["ref"] = "b" * 255

    review = fixture("pull_request_review.submitted.payload.json")
    review["repository"] = copy.deepcopy(opened["repository"])
    review["pull_request"] = {**copy.deepcopy(pull), "number": 2**31 - 1}
    review["review"].update(id=2**63 - 1, state="s" * 32)
    review["review"]["user"]["login"] = longest_login
    return [("installation", installation), ("pull_request", opened), ("pull_request_review", review)]


def test_values_at_their_limits_are_queued_and_stored(
    client: TestClient, settings: Settings, factory: sessionmaker[Session]
) -> None:
    for event, payload in at_the_limits():
        response = deliver(client, event, payload)
        assert response.status_code == 202, (event, response.text)
    assert build_worker(settings, factory).run_until_idle() >= 3
    with factory() as session:
        failed = session.execute(sa.select(JOBS.c.kind, JOBS.c.last_error).where(JOBS.c.state != "done")).all()
        assert failed == []
        [installation] = session.execute(sa.select(INSTALLATIONS)).all()
        assert (installation.id, installation.account_login) == (2**63 - 1, "l" * 100)
        [pull] = session.execute(sa.select(PULLS)).all()
        assert (pull.repo, pull.number, pull.author) == ("o/" + "r" * 198, 2**31 - 1, "l" * 100)
        assert (len(pull.head_ref), len(pull.base_ref), len(pull.html_url)) == (255, 255, 500)
        assert (pull.head_sha, pull.head_repo) == ("a" * 40, "f/" + "r" * 198)
        [review] = session.execute(sa.select(REVIEWS)).all()
        assert (review.review_id, review.reviewer, review.state) == (2**63 - 1, "l" * 100, "s" * 32)
        repositories = {row.full_name: row for row in session.execute(sa.select(REPOSITORIES))}
        assert repositories["o/" + "r" * 198].default_branch == "d" * 255
