"""Gemini CLI events and Copilot Chat spans that name no repository, through the real endpoints on SQLite and
PostgreSQL: they wait for the session's own file (`tokentrail import gemini|copilot`, which names the checkout) and
then land priced on its pull request, whichever arrives first; another owner's file of the same session id
attributes nothing of mine."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.local.agent_files import copilot_span_line
from app.main import create_app
from app.settings import Settings
from app.tables import USAGE
from tests.session_scene import (
    BRANCH,
    HEADERS,
    NDJSON,
    REPO,
    auth_of,
    copilot_spans,
    gemini_chat,
    gemini_events,
    open_pull,
    post,
    pull_usage,
    waiting,
)

GEMINI_SESSION = "7c1f9a52-3b0e-4d6a-9e8f-2a1b3c4d5e6f"
REPLIES = [(12480, 0, 310, 842, 0), (14100, 12000, 95, 0, 0), (15020, 14000, 210, 64, 0)]
LATER = (16000, 15000, 40, 0, 0)  # a reply made after the chat file was imported: in the telemetry only
CONVERSATION = "a1b2c3d4-5e6f-4a1b-8c2d-3e4f5a6b7c8d"
CALLS = [(1500, 250), (2300, 120), (2600, 410)]
LOGS, TRACES, CHATS = "/v1/ingest/otlp/v1/logs", "/v1/ingest/otlp/v1/traces", "/v1/ingest/gemini"
MALLORY = {"x-vcs-repository-url-full": "https://github.com/mallory/loot", "x-vcs-ref-head-name": BRANCH}


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings, run_worker=False)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def _copilot_request(calls: list[tuple[int, int]], service: str = "copilot-chat") -> bytes:
    """What `tokentrail import copilot` sends of the exporter's file, and also what the live OTLP export carries:
    the same spans, with no repository attribute."""
    spans = copilot_spans(CONVERSATION, calls, service=service).splitlines(True)
    return b"".join(line for raw in spans if (line := copilot_span_line(raw)))


def _rows(factory: sessionmaker[Session]) -> list[tuple[str, str, str | None, str | None]]:
    with factory() as session:
        query = sa.select(USAGE.c.owner, USAGE.c.source, USAGE.c.repo, USAGE.c.branch).order_by(USAGE.c.pk)
        return [tuple(row) for row in session.execute(query)]


def _assert_on_pull(client: TestClient, app: FastAPI, auth: dict[str, str], records: int, output: int) -> None:
    usage = pull_usage(client, app, auth)
    assert (usage["records"], usage["output_tokens"]) == (records, output)
    assert usage["unpriced_records"] == 0 and Decimal(usage["cost_usd"]) > 0


# --- Gemini CLI -----------------------------------------------------------------------------------------------------


def test_gemini_events_wait_for_the_chat_file_then_land_on_the_pull_request(
    client: TestClient, app: FastAPI, factory: sessionmaker[Session]
) -> None:
    auth = auth_of(factory)
    open_pull(client)
    events = post(client, LOGS, gemini_events(GEMINI_SESSION, [*REPLIES, LATER]), auth)
    assert (events["accepted"], events["rejected"]) == (4, [])  # waiting, not refused
    assert waiting(factory) == 4
    assert client.get(f"/v1/repos/{REPO}/usage", headers=auth).json()["records"] == 0  # counted nowhere yet
    again = post(client, LOGS, gemini_events(GEMINI_SESSION, [*REPLIES, LATER]), auth)
    assert (again["accepted"], again["duplicates"]) == (0, 4)

    chat = post(client, CHATS, gemini_chat(GEMINI_SESSION, REPLIES), {**auth, **HEADERS, **NDJSON})
    assert chat["accepted"] == 3
    assert waiting(factory) == 0
    _assert_on_pull(client, app, auth, 4, sum(r[2] + r[3] for r in [*REPLIES, LATER]))
    # The chat file's records stand for the three replies it holds; the later reply took its attribution.
    assert [row[1:] for row in _rows(factory)] == [("gemini", REPO, BRANCH)] * 3 + [("otlp", REPO, BRANCH)]


def test_a_gemini_chat_file_then_its_events_land_on_the_pull_request(
    client: TestClient, app: FastAPI, factory: sessionmaker[Session]
) -> None:
    auth = auth_of(factory)
    open_pull(client)
    assert post(client, CHATS, gemini_chat(GEMINI_SESSION, REPLIES), {**auth, **HEADERS, **NDJSON})["accepted"] == 3
    events = post(client, LOGS, gemini_events(GEMINI_SESSION, [*REPLIES, LATER]), auth)
    assert (events["accepted"], events["duplicates"]) == (1, 3)
    assert waiting(factory) == 0
    _assert_on_pull(client, app, auth, 4, sum(r[2] + r[3] for r in [*REPLIES, LATER]))


def test_another_owners_chat_file_never_attributes_my_gemini_events(
    client: TestClient, app: FastAPI, factory: sessionmaker[Session]
) -> None:
    mine, theirs = auth_of(factory), auth_of(factory, "mallory")
    post(client, LOGS, gemini_events(GEMINI_SESSION, REPLIES), mine)
    # mallory imports a chat file with my session id, naming mallory's repository.
    stolen = post(client, CHATS, gemini_chat(GEMINI_SESSION, REPLIES), {**theirs, **MALLORY, **NDJSON})
    assert stolen["accepted"] == 3
    assert waiting(factory) == 3  # mine still wait
    assert client.get("/v1/repos/mallory/loot/usage", headers=theirs).json()["records"] == 3
    assert client.get(f"/v1/repos/{REPO}/usage", headers=mine).json()["records"] == 0
    post(client, CHATS, gemini_chat(GEMINI_SESSION, REPLIES), {**mine, **HEADERS, **NDJSON})
    assert waiting(factory) == 0
    assert sorted({(owner, repo) for owner, _, repo, _ in _rows(factory)}) == [
        ("acme", REPO),
        ("mallory", "mallory/loot"),
    ]
    assert client.get(f"/v1/repos/{REPO}/usage", headers=mine).json()["records"] == 3


# --- Copilot Chat ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["copilot-chat", "github-copilot"])  # VS Code's Copilot Chat, the Copilot CLI
def test_copilot_spans_wait_for_the_imported_file_then_land_on_the_pull_request(
    client: TestClient, app: FastAPI, factory: sessionmaker[Session], service: str
) -> None:
    auth = auth_of(factory)
    open_pull(client)
    spans = post(client, TRACES, _copilot_request(CALLS, service), {**auth, **NDJSON})
    assert (spans["accepted"], spans["rejected"]) == (3, [])
    assert waiting(factory) == 3
    assert client.get(f"/v1/repos/{REPO}/usage", headers=auth).json()["records"] == 0
    # The exporter's file, imported in the checkout after the first two calls.
    imported = post(client, TRACES, _copilot_request(CALLS[:2], service), {**auth, **HEADERS, **NDJSON})
    assert imported["accepted"] == 2
    assert waiting(factory) == 0
    _assert_on_pull(client, app, auth, 3, sum(output for _, output in CALLS))
    again = post(client, TRACES, _copilot_request(CALLS, service), {**auth, **NDJSON})
    assert (again["accepted"], again["duplicates"]) == (0, 3)


def test_a_copilot_file_then_its_spans_land_on_the_pull_request(
    client: TestClient, app: FastAPI, factory: sessionmaker[Session]
) -> None:
    auth = auth_of(factory)
    open_pull(client)
    assert post(client, TRACES, _copilot_request(CALLS[:2]), {**auth, **HEADERS, **NDJSON})["accepted"] == 2
    spans = post(client, TRACES, _copilot_request(CALLS), {**auth, **NDJSON})
    assert (spans["accepted"], spans["duplicates"]) == (1, 2)
    assert waiting(factory) == 0
    _assert_on_pull(client, app, auth, 3, sum(output for _, output in CALLS))


def test_another_owners_copilot_file_never_attributes_my_spans(
    client: TestClient, app: FastAPI, factory: sessionmaker[Session]
) -> None:
    mine, theirs = auth_of(factory), auth_of(factory, "mallory")
    post(client, TRACES, _copilot_request(CALLS), {**mine, **NDJSON})
    stolen = post(client, TRACES, _copilot_request(CALLS), {**theirs, **MALLORY, **NDJSON})
    assert stolen["accepted"] == 3
    assert waiting(factory) == 3
    assert client.get(f"/v1/repos/{REPO}/usage", headers=mine).json()["records"] == 0
    post(client, TRACES, _copilot_request(CALLS), {**mine, **HEADERS, **NDJSON})
    assert waiting(factory) == 0
    assert client.get(f"/v1/repos/{REPO}/usage", headers=mine).json()["records"] == 3
    assert client.get("/v1/repos/mallory/loot/usage", headers=theirs).json()["records"] == 3
