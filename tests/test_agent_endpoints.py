"""Codex, Gemini CLI and Copilot through their endpoints, on SQLite and PostgreSQL: priced from tokens, counted
once when a transcript and the telemetry report the same calls, and Codex telemetry attributed by the rollout of
its conversation whichever arrives first, never by another owner's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.local.agent_files import copilot_span_line
from app.main import create_app
from app.pricing import price_record
from app.settings import Settings
from app.sources import codex, gemini, otlp
from app.tables import UNATTRIBUTED, USAGE
from tests.conftest import FIXTURES, make_token
from tests.github_payloads import make_pull_request_event, webhook_headers

REPO = "acme/widgets"
ROLLOUT = (FIXTURES / "codex/rollout_model_switch.jsonl").read_bytes()
CODEX_EVENTS = (FIXTURES / "codex/otel_sse_events.json").read_bytes()
GEMINI_EVENTS = (FIXTURES / "gemini/otel_api_response.json").read_bytes()
GEMINI_JSON = (FIXTURES / "gemini/session-2025-10-15T09-00-7c1f9a52.json").read_bytes()
GEMINI_JSONL = (FIXTURES / "gemini/session-2025-10-16T14-00-9d2e8b41.jsonl").read_bytes()
COPILOT_FILE = FIXTURES / "copilot/otel_file_exporter.jsonl"
HEADERS = {"x-vcs-repository-url-full": "https://github.com/acme/widgets", "x-vcs-ref-head-name": "feat/agents"}
NDJSON = {"content-type": "application/x-ndjson"}


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings, run_worker=False)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def _auth(factory: sessionmaker[Session], owner: str = "acme") -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(factory, owner)}"}


def _copilot_body() -> bytes:
    return b"".join(line for raw in COPILOT_FILE.read_bytes().splitlines(True) if (line := copilot_span_line(raw)))


def _post(client: TestClient, path: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    response = client.post(path, content=body, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


CASES = [
    ("/v1/ingest/otlp/v1/logs", CODEX_EVENTS, otlp.parse_logs, False, 4),
    ("/v1/ingest/otlp/v1/logs", GEMINI_EVENTS, otlp.parse_logs, False, 3),
    ("/v1/ingest/gemini", GEMINI_JSON, gemini.parse, False, 3),
    ("/v1/ingest/gemini", GEMINI_JSONL, gemini.parse, True, 3),
    ("/v1/ingest/otlp/v1/traces", _copilot_body(), otlp.parse_traces, True, 2),
]


@pytest.mark.parametrize(("path", "body", "parse", "ndjson", "records"), CASES)
def test_each_format_lands_priced_from_its_tokens(
    client: TestClient, factory: sessionmaker[Session], path: str, body: bytes, parse: Any, ndjson: bool, records: int
) -> None:
    auth = _auth(factory)
    headers = {**auth, **HEADERS, **(NDJSON if ndjson else {"content-type": "application/json"})}
    answer = _post(client, path, body, headers)
    assert (answer["accepted"], answer["rejected"]) == (records, [])
    expected = parse(body, ndjson=ndjson).records
    assert len(expected) == records
    totals = client.get(f"/v1/repos/{REPO}/usage", headers=auth).json()
    assert totals["records"] == records and totals["unpriced_records"] == 0
    for field in ("input_tokens", "cache_read_tokens", "output_tokens", "reasoning_tokens"):
        assert totals[field] == sum(getattr(r, field) for r in expected), field
    costs = [price_record(r) for r in expected]
    assert all(cost is not None and not reported for cost, reported in costs)  # computed: no source reports cost
    assert Decimal(totals["cost_usd"]) == pytest.approx(sum(c for c, _ in costs if c is not None), abs=Decimal("1e-8"))
    again = _post(client, path, body, headers)
    assert (again["accepted"], again["duplicates"]) == (0, records)


def test_a_gemini_chat_and_its_telemetry_count_each_response_once(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    auth = _auth(factory)
    _post(client, "/v1/ingest/gemini", GEMINI_JSON, {**auth, **HEADERS})
    events = _post(client, "/v1/ingest/otlp/v1/logs", GEMINI_EVENTS, {**auth, **HEADERS})
    assert (events["accepted"], events["duplicates"]) == (0, 3)
    assert client.get(f"/v1/repos/{REPO}/usage", headers=auth).json()["records"] == 3


def _open_pull(client: TestClient) -> None:
    event = make_pull_request_event(head_ref="feat/cache-layer", created_at=datetime(2025, 10, 15, tzinfo=UTC))
    body = json.dumps(event).encode()
    response = client.post("/github/webhook", content=body, headers=webhook_headers("pull_request", body))
    assert response.status_code == 202, response.text


def _pull_usage(client: TestClient, app: FastAPI, auth: dict[str, str]) -> dict[str, Any]:
    app.state.worker.run_until_idle()
    usage: dict[str, Any] = client.get(f"/v1/repos/{REPO}/pulls/12", headers=auth).json()["usage"]
    return usage


def _expected_pull_usage() -> dict[str, int]:
    """The rollout's three responses plus the telemetry's fourth, later one: each counted once."""
    rollout = codex.parse(ROLLOUT).records
    later = otlp.parse_logs(CODEX_EVENTS).records[3]
    records = [*rollout, later]
    return {
        "records": len(records),
        "input_tokens": sum(r.input_tokens for r in records),
        "cache_read_tokens": sum(r.cache_read_tokens for r in records),
        "output_tokens": sum(r.output_tokens for r in records),
    }


def _waiting(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return int(session.execute(sa.select(sa.func.count()).select_from(UNATTRIBUTED)).scalar_one())


def test_codex_events_then_a_later_rollout_land_on_the_pull_request(
    client: TestClient, app: FastAPI, factory: sessionmaker[Session]
) -> None:
    auth = _auth(factory)
    _open_pull(client)
    events = _post(client, "/v1/ingest/otlp/v1/logs", CODEX_EVENTS, auth)  # Codex sends no repository
    assert (events["accepted"], events["rejected"]) == (4, [])
    assert _waiting(factory) == 4
    assert client.get(f"/v1/repos/{REPO}/usage", headers=auth).json()["records"] == 0  # waiting: counted nowhere
    again = _post(client, "/v1/ingest/otlp/v1/logs", CODEX_EVENTS, auth)
    assert (again["accepted"], again["duplicates"]) == (0, 4)

    rollout = _post(client, "/v1/ingest/codex", ROLLOUT, {**auth, **NDJSON})
    assert rollout["accepted"] == 3
    assert _waiting(factory) == 0
    usage = _pull_usage(client, app, auth)
    assert {key: usage[key] for key in _expected_pull_usage()} == _expected_pull_usage()
    assert usage["unpriced_records"] == 0 and Decimal(usage["cost_usd"]) > 0
    with factory() as session:
        rules = dict(session.execute(sa.select(USAGE.c.source, USAGE.c.match_rule)).all())
    assert rules == {"codex": "branch", "otlp": "branch"}
    # Telemetry sent again after the rollout: every response is already counted.
    late = _post(client, "/v1/ingest/otlp/v1/logs", CODEX_EVENTS, auth)
    assert (late["accepted"], late["duplicates"]) == (0, 4)
    assert _pull_usage(client, app, auth)["records"] == 4


def test_a_rollout_then_codex_events_land_on_the_pull_request(
    client: TestClient, app: FastAPI, factory: sessionmaker[Session]
) -> None:
    auth = _auth(factory)
    _open_pull(client)
    assert _post(client, "/v1/ingest/codex", ROLLOUT, {**auth, **NDJSON})["accepted"] == 3
    events = _post(client, "/v1/ingest/otlp/v1/logs", CODEX_EVENTS, auth)
    assert (events["accepted"], events["duplicates"]) == (1, 3)  # the three responses the rollout holds
    assert _waiting(factory) == 0
    usage = _pull_usage(client, app, auth)
    assert {key: usage[key] for key in _expected_pull_usage()} == _expected_pull_usage()
    with factory() as session:
        later = session.execute(sa.select(USAGE).where(USAGE.c.source == "otlp")).one()
    assert (later.repo, later.branch, later.commit) == (
        REPO,
        "feat/cache-layer",
        codex.parse(ROLLOUT).records[0].attribution.commit,
    )
    assert later.actor == "alice@acme.test"


def test_another_owners_rollout_never_attributes_my_codex_events(
    client: TestClient, app: FastAPI, factory: sessionmaker[Session]
) -> None:
    mine, theirs = _auth(factory), _auth(factory, "mallory")
    _post(client, "/v1/ingest/otlp/v1/logs", CODEX_EVENTS, mine)
    # The same conversation id in mallory's rollout, naming mallory's repository.
    forged = ROLLOUT.replace(b"git@github.com:Acme/Widgets.git", b"git@github.com:mallory/loot.git")
    stolen = _post(client, "/v1/ingest/codex", forged, {**theirs, **NDJSON})
    assert stolen["accepted"] == 3
    assert _waiting(factory) == 4  # mine still wait
    assert client.get("/v1/repos/mallory/loot/usage", headers=theirs).json()["records"] == 3
    # mallory's telemetry of that id is attributed by mallory's rollout only, and mine by mine.
    _post(client, "/v1/ingest/codex", ROLLOUT, {**mine, **NDJSON})
    assert _waiting(factory) == 0
    assert client.get(f"/v1/repos/{REPO}/usage", headers=mine).json()["records"] == 4
    assert client.get("/v1/repos/mallory/loot/usage", headers=theirs).json()["records"] == 3
    with factory() as session:
        owners = sorted(session.execute(sa.select(USAGE.c.owner, USAGE.c.repo).distinct()).all())
    assert owners == [("acme", REPO), ("mallory", "mallory/loot")]
