"""Two responses of one agent session that report identical token counts are two calls, on SQLite and PostgreSQL:
the k-th of them in the session's file is the k-th in its telemetry, whichever arrives first, in however many
requests, and a redelivered event or a re-imported file still counts nothing twice."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from app.main import create_app
from app.settings import Settings
from app.tables import USAGE
from tests.session_scene import (
    HEADERS,
    NDJSON,
    auth_of,
    codex_events,
    codex_rollout,
    gemini_chat,
    gemini_events,
    open_pull,
    post,
    pull_usage,
    waiting,
)

SESSION = "0199e2a4-7b1c-7d3e-9f5a-6b8c0d2e4f61"
SAME = (8000, 6000, 400, 256)  # a short turn, answered twice with the very same counts
OTHER = (9100, 8000, 120, 0)
LOGS, ROLLOUTS = "/v1/ingest/otlp/v1/logs", "/v1/ingest/codex"


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings, run_worker=False)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def _sources(factory: sessionmaker[Session]) -> list[str]:
    with factory() as session:
        return sorted(session.execute(sa.select(USAGE.c.source)).scalars())


def _assert_pull_has(client: TestClient, app: FastAPI, auth: dict[str, str], responses: list[tuple[int, ...]]) -> None:
    usage = pull_usage(client, app, auth)
    assert usage["records"] == len(responses)
    assert usage["output_tokens"] == sum(r[2] for r in responses)
    assert usage["cache_read_tokens"] == sum(r[1] for r in responses)


def test_telemetry_then_rollout_of_two_identical_responses_are_two_calls(
    client: TestClient, app: FastAPI, factory: sessionmaker[Session]
) -> None:
    auth = auth_of(factory)
    open_pull(client)
    events = post(client, LOGS, codex_events(SESSION, [SAME, SAME]), auth)
    assert (events["accepted"], events["duplicates"]) == (2, 0)
    assert waiting(factory) == 2
    rollout = post(client, ROLLOUTS, codex_rollout(SESSION, [SAME, SAME]), {**auth, **NDJSON})
    assert rollout["accepted"] == 2
    assert waiting(factory) == 0
    _assert_pull_has(client, app, auth, [SAME, SAME])  # not one, not four
    assert _sources(factory) == ["codex", "codex"]  # the rollout's records win


def test_rollout_then_telemetry_of_two_identical_responses_are_two_calls(
    client: TestClient, app: FastAPI, factory: sessionmaker[Session]
) -> None:
    auth = auth_of(factory)
    open_pull(client)
    assert post(client, ROLLOUTS, codex_rollout(SESSION, [SAME, SAME]), {**auth, **NDJSON})["accepted"] == 2
    events = post(client, LOGS, codex_events(SESSION, [SAME, SAME]), auth)
    assert (events["accepted"], events["duplicates"]) == (0, 2)
    _assert_pull_has(client, app, auth, [SAME, SAME])


def test_events_one_request_each_around_a_growing_rollout_count_each_response_once(
    client: TestClient, app: FastAPI, factory: sessionmaker[Session]
) -> None:
    auth = auth_of(factory)
    open_pull(client)
    # The rollout is imported after the first response; the second, identical one is reported by telemetry only.
    assert post(client, ROLLOUTS, codex_rollout(SESSION, [SAME]), {**auth, **NDJSON})["accepted"] == 1
    first = post(client, LOGS, codex_events(SESSION, [SAME]), auth)
    assert (first["accepted"], first["duplicates"]) == (0, 1)  # the rollout holds it
    second = post(client, LOGS, codex_events(SESSION, [SAME], first=1), auth)
    assert (second["accepted"], second["duplicates"]) == (1, 0)  # the second call, not the first again
    _assert_pull_has(client, app, auth, [SAME, SAME])
    # Both events sent again, then the grown rollout imported again: nothing is new.
    again = post(client, LOGS, codex_events(SESSION, [SAME, SAME]), auth)
    assert (again["accepted"], again["duplicates"]) == (0, 2)
    grown = post(client, ROLLOUTS, codex_rollout(SESSION, [SAME, SAME, OTHER]), {**auth, **NDJSON})
    assert (grown["accepted"], grown["duplicates"]) == (1, 2)  # only the third response is new
    _assert_pull_has(client, app, auth, [SAME, SAME, OTHER])


def test_a_redelivered_waiting_event_stays_one_call(
    client: TestClient, app: FastAPI, factory: sessionmaker[Session]
) -> None:
    auth = auth_of(factory)
    open_pull(client)
    assert post(client, LOGS, codex_events(SESSION, [SAME]), auth)["accepted"] == 1
    again = post(client, LOGS, codex_events(SESSION, [SAME]), auth)
    assert (again["accepted"], again["duplicates"]) == (0, 1)
    assert waiting(factory) == 1
    later = post(client, LOGS, codex_events(SESSION, [SAME], first=1), auth)  # a new response, same counts
    assert later["accepted"] == 1
    post(client, ROLLOUTS, codex_rollout(SESSION, [SAME, SAME]), {**auth, **NDJSON})
    assert waiting(factory) == 0
    _assert_pull_has(client, app, auth, [SAME, SAME])


def test_another_owners_events_of_my_conversation_never_shift_my_call_numbers(
    client: TestClient, app: FastAPI, factory: sessionmaker[Session]
) -> None:
    mine, theirs = auth_of(factory), auth_of(factory, "mallory")
    open_pull(client)
    # mallory sends two responses of my conversation id with my counts first: numbers 1 and 2 of mallory's own.
    assert post(client, LOGS, codex_events(SESSION, [SAME, SAME]), theirs)["accepted"] == 2
    assert post(client, LOGS, codex_events(SESSION, [SAME]), mine)["accepted"] == 1  # still my first
    post(client, ROLLOUTS, codex_rollout(SESSION, [SAME, SAME]), {**mine, **NDJSON})
    _assert_pull_has(client, app, mine, [SAME, SAME])  # not three: my event is my rollout's first response
    assert waiting(factory) == 2  # mallory's wait for a rollout of mallory's


def test_two_identical_gemini_replies_are_two_calls_from_chat_and_telemetry(
    client: TestClient, app: FastAPI, factory: sessionmaker[Session]
) -> None:
    auth = auth_of(factory)
    open_pull(client)
    reply = (12480, 0, 310, 842, 0)
    chat = post(client, "/v1/ingest/gemini", gemini_chat("7c1f9a52", [reply, reply]), {**auth, **HEADERS, **NDJSON})
    assert chat["accepted"] == 2
    events = post(client, LOGS, gemini_events("7c1f9a52", [reply, reply]), {**auth, **HEADERS})
    assert (events["accepted"], events["duplicates"]) == (0, 2)
    assert pull_usage(client, app, auth)["records"] == 2


@st.composite
def _deliveries(draw: st.DrawFn) -> tuple[list[tuple[int, int, int, int]], list[tuple[str, int, int]]]:
    """Responses (often identical), and the order things reach the server: telemetry chunks in order, some sent
    again, and the rollout imported as it grew (each import a longer prefix), the whole rollout last."""
    responses = draw(st.lists(st.sampled_from([SAME, OTHER]), min_size=1, max_size=5))
    cuts = sorted(draw(st.sets(st.integers(1, len(responses)), max_size=3)) | {len(responses)})
    chunks = list(zip([0, *cuts[:-1]], cuts, strict=True))
    steps: list[tuple[str, int, int]] = []
    sent = 0
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["events", "again", "rollout"]))
        if kind == "events" and sent < len(chunks):
            steps.append(("events", *chunks[sent]))
            sent += 1
        elif kind == "again" and sent:
            steps.append(("events", *chunks[draw(st.integers(0, sent - 1))]))
        elif kind == "rollout":
            steps.append(("rollout", 0, draw(st.integers(1, len(responses)))))
    steps += [("events", *chunk) for chunk in chunks[sent:]]
    steps.append(("rollout", 0, len(responses)))
    return responses, steps


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=_deliveries())
def test_every_response_counts_once_in_any_order_of_arrival(
    client: TestClient,
    factory: sessionmaker[Session],
    scenario: tuple[list[tuple[int, ...]], list[tuple[str, int, int]]],
) -> None:
    responses, steps = scenario
    owner = f"o{uuid.uuid4().hex[:10]}"  # each example its own tenant and conversation
    session, auth = str(uuid.uuid4()), auth_of(factory, owner)
    remote = f"git@github.com:{owner}/widgets.git"
    for kind, start, end in steps:
        if kind == "events":
            post(client, LOGS, codex_events(session, responses[start:end], first=start), auth)
        else:
            post(client, ROLLOUTS, codex_rollout(session, responses[:end], remote=remote), {**auth, **NDJSON})
        counted = client.get(f"/v1/repos/{owner}/widgets/usage", headers=auth).json()
        assert counted["records"] <= len(responses)  # never a response twice, whatever arrived so far
    counted = client.get(f"/v1/repos/{owner}/widgets/usage", headers=auth).json()
    assert counted["records"] == len(responses)
    assert counted["output_tokens"] == sum(r[2] for r in responses)
