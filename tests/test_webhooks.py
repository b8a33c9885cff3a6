"""POST /github/webhook on SQLite and PostgreSQL: signature, headers, idempotent storage, and no 5xx on drift."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app import jobs
from app.main import create_app
from app.settings import Settings
from app.tables import DELIVERIES, JOBS

GITHUB = Path(__file__).resolve().parent / "fixtures" / "github"
SECRET = "test-secret"
OPENED = (GITHUB / "pull_request.opened.payload.json").read_bytes()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The app without its in-process worker: the jobs counted here must stay queued, not be run (and multiplied)."""
    with TestClient(create_app(settings, run_worker=False)) as test_client:
        yield test_client


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers_for(body: bytes, *, event: str = "pull_request", delivery: str | None = None) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(body),
    }


def post(client: TestClient, body: bytes, headers: dict[str, str]) -> Any:
    return client.post("/github/webhook", content=body, headers=headers)


def rows(factory: sessionmaker[Session], table: sa.Table) -> list[sa.Row[Any]]:
    with factory() as session:
        return list(session.execute(sa.select(table).order_by(table.c.id)).all())


def assert_nothing_stored(factory: sessionmaker[Session]) -> None:
    assert rows(factory, DELIVERIES) == []
    assert rows(factory, JOBS) == []


def test_signed_pull_request_is_stored_with_its_job(client: TestClient, factory: sessionmaker[Session]) -> None:
    headers = headers_for(OPENED, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    response = post(client, OPENED, headers)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    [delivery] = rows(factory, DELIVERIES)
    assert (delivery.delivery_id, delivery.event, delivery.action) == (
        "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "pull_request",
        "opened",
    )
    assert json.loads(delivery.payload) == json.loads(OPENED)
    [job] = rows(factory, JOBS)
    assert (job.kind, job.key, job.state, job.attempts) == (
        "webhook",
        "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "queued",
        0,
    )


def test_redelivery_is_a_no_op(client: TestClient, factory: sessionmaker[Session]) -> None:
    headers = headers_for(OPENED, delivery="redelivered-1")
    assert post(client, OPENED, headers).status_code == 202
    again = post(client, OPENED, headers)
    assert again.status_code == 200
    assert again.json() == {"status": "ignored", "reason": "delivery already received"}
    assert len(rows(factory, DELIVERIES)) == 1
    assert len(rows(factory, JOBS)) == 1


def test_every_queued_fixture_is_stored(client: TestClient, factory: sessionmaker[Session]) -> None:
    names = ["pull_request.closed.merged.json", "pull_request_review.submitted.approved.json", "push.forced.json"]
    for name in names:
        body = (GITHUB / name).read_bytes()
        response = post(client, body, headers_for(body, event=name.split(".", 1)[0], delivery=name))
        assert response.status_code == 202, (name, response.text)
    assert [row.delivery_id for row in rows(factory, DELIVERIES)] == names
    assert sorted(row.key for row in rows(factory, JOBS)) == sorted(names)


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "sha256=" + "0" * 64,
        sign(OPENED, "another-secret"),
        sign(OPENED + b" "),  # a signature of another body
        sign(OPENED).removeprefix("sha256="),  # no algorithm prefix
        sign(OPENED).replace("sha256=", "sha1="),
    ],
)
def test_bad_signature_is_refused(client: TestClient, factory: sessionmaker[Session], signature: str | None) -> None:
    headers = headers_for(OPENED)
    del headers["X-Hub-Signature-256"]
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    response = post(client, OPENED, headers)
    assert response.status_code == 401
    assert "X-Hub-Signature-256" in response.json()["detail"]
    assert_nothing_stored(factory)


def test_sha1_only_signature_is_refused(client: TestClient, factory: sessionmaker[Session]) -> None:
    headers = headers_for(OPENED)
    del headers["X-Hub-Signature-256"]
    headers["X-Hub-Signature"] = "sha1=" + hmac.new(SECRET.encode(), OPENED, hashlib.sha1).hexdigest()
    assert post(client, OPENED, headers).status_code == 401
    assert_nothing_stored(factory)


@pytest.mark.parametrize("missing", ["X-GitHub-Event", "X-GitHub-Delivery"])
def test_missing_github_header_is_a_bad_request(
    client: TestClient, factory: sessionmaker[Session], missing: str
) -> None:
    headers = headers_for(OPENED)
    del headers[missing]
    response = post(client, OPENED, headers)
    assert response.status_code == 400
    assert missing in response.json()["detail"]
    assert_nothing_stored(factory)


def test_overlong_delivery_id_is_a_bad_request(client: TestClient, factory: sessionmaker[Session]) -> None:
    assert post(client, OPENED, headers_for(OPENED, delivery="d" * 101)).status_code == 400
    assert_nothing_stored(factory)


def test_ping_is_ignored_with_its_reason(client: TestClient, factory: sessionmaker[Session]) -> None:
    body = (GITHUB / "ping.with-app_id.payload.json").read_bytes()
    response = post(client, body, headers_for(body, event="ping"))
    assert response.status_code == 200
    assert response.json() == {"status": "ignored", "reason": "ping: pong"}
    assert_nothing_stored(factory)


def test_unknown_event_is_ignored(client: TestClient, factory: sessionmaker[Session]) -> None:
    response = post(client, OPENED, headers_for(OPENED, event="issues"))
    assert response.status_code == 200
    assert response.json() == {"status": "ignored", "reason": "event 'issues' is not used"}
    assert_nothing_stored(factory)


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b"",
        b"\xff\xfe\x00garbage",
        b'{"action": "opened", ',
        OPENED.decode().encode("utf-16"),  # valid JSON to json.loads(bytes), but GitHub sends UTF-8
    ],
)
def test_unreadable_body_with_a_valid_signature_is_ignored(
    client: TestClient, factory: sessionmaker[Session], body: bytes
) -> None:
    response = post(client, body, headers_for(body))
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ignored", "reason": "payload is not JSON"}
    assert_nothing_stored(factory)


def test_tag_push_is_ignored(client: TestClient, factory: sessionmaker[Session]) -> None:
    body = (GITHUB / "push.with-installation.payload.json").read_bytes()
    response = post(client, body, headers_for(body, event="push"))
    assert response.status_code == 200
    assert response.json() == {"status": "ignored", "reason": "push to refs/tags/simple-tag is not a branch"}
    assert_nothing_stored(factory)


def drifted(update: dict[str, Any], *, drop: tuple[str, ...] = ()) -> bytes:
    payload = json.loads(OPENED)
    payload.update(update)
    for key in drop:
        payload.pop(key)
    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (drifted({}, drop=("pull_request",)), "payload has no pull request"),
        (drifted({"repository": None}), "payload names no repository"),
        (drifted({"repository": "codertocat/hello-world"}), "payload names no repository"),
        (drifted({"pull_request": []}), "payload has no pull request"),
        (drifted({"action": ["opened"]}), "pull_request. needs no work"),
        (b"[1, 2, 3]", "payload is not a JSON object"),
    ],
)
def test_drifted_pull_request_is_ignored_not_an_error(
    client: TestClient, factory: sessionmaker[Session], body: bytes, reason: str
) -> None:
    response = post(client, body, headers_for(body))
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ignored", "reason": reason}
    assert_nothing_stored(factory)


def test_odd_action_values_never_fail_the_insert(client: TestClient, factory: sessionmaker[Session]) -> None:
    # A push is queued whatever its action; the deliveries.action column is VARCHAR(64) and PostgreSQL text
    # cannot hold NUL, so such an action must not reach the insert as it is.
    push = json.loads((GITHUB / "push.forced.json").read_bytes())
    for index, action in enumerate(["x" * 65, "nul\x00inside", 12]):
        body = json.dumps({**push, "action": action}).encode()
        response = post(client, body, headers_for(body, event="push", delivery=f"odd-{index}"))
        assert response.status_code == 202, response.text
    stored = rows(factory, DELIVERIES)
    assert [row.delivery_id for row in stored] == ["odd-0", "odd-1", "odd-2"]
    assert all(row.action is None or (len(row.action) <= 64 and "\x00" not in row.action) for row in stored)
    assert len(rows(factory, JOBS)) == 3


REPLACEMENTS: tuple[Any, ...] = (None, 0, True, "", "x", [], {}, [1], {"a": None})


def mutated_bodies() -> Iterator[bytes]:
    """The opened payload with each top-level key and each key of `pull_request` deleted or given another type."""
    payload = json.loads(OPENED)
    for parent_path in ((), ("pull_request",), ("pull_request", "head"), ("repository",)):
        parent_keys = list(payload if not parent_path else _at(payload, parent_path))
        for key in parent_keys:
            for replacement in ("<delete>", *REPLACEMENTS):
                mutated = copy.deepcopy(payload)
                parent = _at(mutated, parent_path)
                if replacement == "<delete>":
                    del parent[key]
                else:
                    parent[key] = replacement
                yield json.dumps(mutated).encode()


def _at(payload: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    for key in path:
        payload = payload[key]
    return payload


def test_mutated_payloads_never_answer_5xx(client: TestClient, factory: sessionmaker[Session]) -> None:
    statuses: dict[int, int] = {}
    for index, body in enumerate(mutated_bodies()):
        response = post(client, body, headers_for(body, delivery=f"mutant-{index}"))
        assert response.status_code in {200, 202}, (index, response.status_code, response.text)
        assert response.json()["status"] == ("queued" if response.status_code == 202 else "ignored")
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    # Both outcomes happen, and exactly the queued ones were stored, each with its job.
    assert statuses[200] > 0 and statuses[202] > 0
    assert len(rows(factory, DELIVERIES)) == statuses[202]
    assert len(rows(factory, JOBS)) == statuses[202]


def test_without_a_webhook_secret_webhooks_are_refused(settings: Settings, factory: sessionmaker[Session]) -> None:
    unsigned = settings.model_copy(update={"github_webhook_secret": None})
    with TestClient(create_app(unsigned, run_worker=False)) as client:
        response = post(client, OPENED, headers_for(OPENED))
    assert response.status_code == 503
    assert "TOKENTRAIL_GITHUB_WEBHOOK_SECRET" in response.json()["detail"]
    assert_nothing_stored(factory)


def test_concurrent_deliveries_and_their_copies_are_stored_once_each(factory: sessionmaker[Session]) -> None:
    # Forty acknowledgements at once, each delivery twice: on SQLite they share transactions (the group commit),
    # on PostgreSQL they race; either way each delivery is new exactly once and has exactly one job.
    ids = [str(uuid.uuid4()) for _ in range(20)]
    answers: list[tuple[str, bool]] = []
    barrier = threading.Barrier(len(ids) * 2)

    def acknowledge(delivery_id: str) -> None:
        barrier.wait(timeout=30)
        stored = jobs.record_delivery(factory, delivery_id=delivery_id, event="ping", action=None, body=b"{}")
        answers.append((delivery_id, stored))

    threads = [threading.Thread(target=acknowledge, args=(delivery_id,)) for delivery_id in ids * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(d for d, stored in answers if stored) == sorted(ids)
    with factory() as session:
        queued = session.execute(sa.select(JOBS.c.key).where(JOBS.c.kind == "webhook")).scalars().all()
        stored_ids = session.execute(sa.select(DELIVERIES.c.delivery_id)).scalars().all()
    assert sorted(queued) == sorted(ids)
    assert sorted(stored_ids) == sorted(ids)
