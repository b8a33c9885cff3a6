"""Migration 0019 numbers the calls stored before it: a Codex session that spans the upgrade still counts each
response once, whether its rollout was stored before the upgrade and its telemetry arrives after, or its
telemetry was waiting and its rollout arrives after. Both databases.

The state before the upgrade is made the way the earlier code left it: count-named call ids without their
occurrence number, and no numbers recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.db import alembic_config
from app.main import create_app
from app.settings import Settings
from app.tables import UNATTRIBUTED, USAGE, USAGE_CALLS
from tests.session_scene import NDJSON, auth_of, codex_events, codex_rollout, open_pull, post, pull_usage, waiting

SESSION = "0199e2a4-7b1c-7d3e-9f5a-6b8c0d2e4f61"
RESPONSE = (8000, 6000, 400, 256)
LOGS, ROLLOUTS = "/v1/ingest/otlp/v1/logs", "/v1/ingest/codex"


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings, run_worker=False)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def _unnumbered(call_id: str) -> str:
    return call_id.rsplit("#", 1)[0] if call_id.startswith("codex:") else call_id


def _as_before_the_upgrade(factory: sessionmaker[Session], database_url: str) -> None:
    """Strip the occurrence numbers as the earlier code stored call ids, then run 0019 down and up again."""
    with factory() as session, session.begin():
        for pk, call_id in session.execute(sa.select(USAGE.c.pk, USAGE.c.call_id)).all():
            if call_id:
                session.execute(sa.update(USAGE).where(USAGE.c.pk == pk).values(call_id=_unnumbered(call_id)))
        for owner, call_id in session.execute(sa.select(USAGE_CALLS.c.owner, USAGE_CALLS.c.call_id)).all():
            calls = USAGE_CALLS.c
            session.execute(
                sa.update(USAGE_CALLS)
                .where(calls.owner == owner, calls.call_id == call_id)
                .values(call_id=_unnumbered(call_id))
            )
        for pk, text in session.execute(sa.select(UNATTRIBUTED.c.pk, UNATTRIBUTED.c.record)).all():
            record = json.loads(text)
            record["call_ids"] = [_unnumbered(call) for call in record["call_ids"]]
            session.execute(sa.update(UNATTRIBUTED).where(UNATTRIBUTED.c.pk == pk).values(record=json.dumps(record)))
    config = alembic_config(database_url)
    before = ScriptDirectory.from_config(config).get_revision("0019").down_revision
    assert isinstance(before, str)
    command.downgrade(config, before)
    command.upgrade(config, "head")


def test_a_rollout_stored_before_the_upgrade_meets_its_telemetry_after_it_as_one_call(
    client: TestClient, app: FastAPI, factory: sessionmaker[Session], database_url: str
) -> None:
    auth = auth_of(factory)
    open_pull(client)
    assert post(client, ROLLOUTS, codex_rollout(SESSION, [RESPONSE]), {**auth, **NDJSON})["accepted"] == 1
    _as_before_the_upgrade(factory, database_url)
    with factory() as session:
        assert session.execute(sa.select(USAGE_CALLS.c.call_id)).scalars().all() == [
            f"codex:{SESSION}:" + ":".join(map(str, RESPONSE)) + "#1"
        ]
    events = post(client, LOGS, codex_events(SESSION, [RESPONSE]), auth)
    assert (events["accepted"], events["duplicates"]) == (0, 1)
    assert pull_usage(client, app, auth)["records"] == 1


def test_telemetry_waiting_before_the_upgrade_meets_its_rollout_after_it_as_one_call(
    client: TestClient, app: FastAPI, factory: sessionmaker[Session], database_url: str
) -> None:
    auth = auth_of(factory)
    open_pull(client)
    assert post(client, LOGS, codex_events(SESSION, [RESPONSE, RESPONSE]), auth)["accepted"] == 2
    assert waiting(factory) == 2
    _as_before_the_upgrade(factory, database_url)
    rollout = post(client, ROLLOUTS, codex_rollout(SESSION, [RESPONSE, RESPONSE]), {**auth, **NDJSON})
    assert rollout["accepted"] == 2
    assert waiting(factory) == 0
    usage = pull_usage(client, app, auth)
    assert usage["records"] == 2  # two identical responses: two calls, each counted once
    assert usage["output_tokens"] == 2 * RESPONSE[2]
