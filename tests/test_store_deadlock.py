"""An ingest request that PostgreSQL picks as a deadlock's victim is written anyway, once.

Writing usage updates the daily rollup rows of its cells, and matching, running at the same time in another
transaction, updates rollup rows too. Here a second transaction plays matching's part: it holds the rollup row the
ingest statement takes last, waits until the ingest waits for it, then asks for the row the ingest took first. The
ingest's own deadlock check fires first (it has waited longer), so the ingest is the victim: it must be retried,
answered 200 and stored exactly once, never a 500."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.db import create_db_engine
from app.tables import USAGE, USAGE_DAYS
from tests.ingest_support import make_usage

DAYS = ("2026-11-02T10:00:00Z", "2026-11-03T10:00:00Z")  # two records, two rollup cells


def _records(first: int) -> list[dict[str, Any]]:
    return [make_usage(first + index, timestamp=moment) for index, moment in enumerate(DAYS)]


def _ingest_waits_for_a_lock(engine: sa.Engine, ingest_started: threading.Event) -> None:
    ingest_started.wait(10)
    deadline = time.monotonic() + 30
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        " AND pid <> pg_backend_pid()"  # its query text may be an earlier statement's: COPY is not shown
    )
    with engine.connect() as watcher:
        while time.monotonic() < deadline:
            if watcher.execute(query).scalar_one():
                return
            time.sleep(0.02)
    raise AssertionError("the ingest never waited for the rollup row held by the other transaction")


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)  # SQLite has one writer: no deadlock
def test_an_ingest_chosen_as_a_deadlock_victim_is_retried_and_stored_once(
    client: TestClient, auth: dict[str, str], factory: sessionmaker[Session], database_url: str
) -> None:
    assert client.post("/v1/usage", json=_records(1), headers=auth).status_code == 200
    with factory() as session:
        first_cell, last_cell = session.execute(sa.select(USAGE_DAYS.c.cell).order_by(USAGE_DAYS.c.cell)).scalars()

    answers: list[httpx.Response] = []
    ingest_started = threading.Event()

    def ingest() -> None:
        ingest_started.set()
        answers.append(client.post("/v1/usage", json=_records(3), headers=auth))

    engine = create_db_engine(database_url)
    try:
        with engine.connect() as matcher:
            lock = "SELECT cell FROM usage_days WHERE cell = :cell FOR UPDATE"
            matcher.execute(sa.text(lock), {"cell": last_cell})
            writer = threading.Thread(target=ingest)
            writer.start()
            _ingest_waits_for_a_lock(engine, ingest_started)
            matcher.execute(sa.text(lock), {"cell": first_cell})  # the cycle: PostgreSQL ends the ingest's try
            matcher.commit()
            writer.join(60)
    finally:
        engine.dispose()

    assert len(answers) == 1 and answers[0].status_code == 200, answers[0].text if answers else "no answer"
    assert answers[0].json()["accepted"] == 2
    with factory() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(USAGE)).scalar_one() == 4
        assert sorted(session.execute(sa.select(USAGE_DAYS.c.records)).scalars()) == [2, 2]
