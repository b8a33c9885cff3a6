"""Writing usage records: one bulk statement per batch, idempotent on (source, record_id).

This is the hot path of the product (every model call of a company passes here), so it skips what costs per row:
rows are plain tuples sent through the driver's executemany (SQLite) or COPY (PostgreSQL), not ORM objects and
not SQLAlchemy's per-row parameter processing; the number of rows written comes from the database itself.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from app import jobs
from app.db import utcnow, write_lock
from app.models import Usage
from app.money import to_nanousd
from app.pricing import price_record
from app.records import UsageRecord

USAGE = Usage.__table__  # type: ignore[attr-defined]
COLUMNS = (
    "source", "record_id", "timestamp", "provider", "model", "input_tokens", "cache_read_tokens",
    "cache_write_tokens", "output_tokens", "reasoning_tokens", "cost_nanousd", "cost_reported", "owner", "repo",
    "branch", "commit", "pr", "actor", "agent", "session_id", "received_at",
)  # fmt: skip
_QUOTED = ", ".join(f'"{name}"' for name in COLUMNS)
_TOKENS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")
_UPDATED = (*_TOKENS, "reasoning_tokens", "cost_nanousd", "cost_reported")


def _total(prefix: str) -> str:
    return " + ".join(f"{prefix}.{name}" for name in _TOKENS)


# A redelivery with the same tokens is a duplicate (no write). A later, larger version of the same record (a
# streamed transcript line, a gateway log completed after the fact) replaces the figures it carries.
_ON_CONFLICT = (
    "ON CONFLICT (source, record_id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _UPDATED)
    + f" WHERE {_total('excluded')} > {_total('usage')}"
)
_SQLITE_INSERT = f"INSERT INTO usage ({_QUOTED}) VALUES ({', '.join('?' * len(COLUMNS))}) {_ON_CONFLICT}"
_PG_STAGE = "CREATE TEMP TABLE IF NOT EXISTS usage_incoming (LIKE usage INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
_PG_INSERT = f"INSERT INTO usage ({_QUOTED}) SELECT {_QUOTED} FROM usage_incoming {_ON_CONFLICT}"


@dataclass(frozen=True, slots=True)
class Written:
    accepted: int
    duplicates: int


def _sqlite_time(moment: datetime) -> str:
    # The text form SQLAlchemy's SQLite DateTime type reads back (always UTC here).
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _row(record: UsageRecord, *, owner: str, received_at: Any, sqlite: bool) -> tuple[Any, ...]:
    cost, reported = price_record(record)
    attribution = record.attribution
    timestamp = _sqlite_time(record.timestamp) if sqlite else record.timestamp
    return (
        record.source, record.id, timestamp, record.provider, record.model, record.input_tokens,
        record.cache_read_tokens, record.cache_write_tokens, record.output_tokens, record.reasoning_tokens,
        to_nanousd(cost), reported, owner, attribution.repo, attribution.branch, attribution.commit, attribution.pr,
        record.actor, record.agent, record.session_id, received_at,
    )  # fmt: skip


def _keep_largest(records: list[UsageRecord]) -> list[UsageRecord]:
    """One record per (source, id) within a batch: the one with the most tokens (a streamed message is written
    several times as it grows). A single statement may not touch the same row twice on PostgreSQL."""
    best: dict[tuple[str, str], UsageRecord] = {}
    for record in records:
        key = (record.source, record.id)
        current = best.get(key)
        if current is None or record.total_tokens > current.total_tokens:
            best[key] = record
    return list(best.values())


def _write_sqlite(session: Session, rows: list[tuple[Any, ...]]) -> int:
    driver: Any = session.connection().connection.dbapi_connection
    # sqlite3 counts the rows each statement inserted or updated; a skipped conflict counts nothing.
    before = driver.total_changes
    session.connection().exec_driver_sql(_SQLITE_INSERT, rows)
    return int(driver.total_changes - before)


def _write_postgres(session: Session, rows: list[tuple[Any, ...]]) -> int:
    """COPY into a session-local staging table, then one INSERT … SELECT with the same conflict rule."""
    connection = session.connection()
    connection.exec_driver_sql(_PG_STAGE)
    driver: Any = connection.connection.dbapi_connection
    cursor = driver.cursor()
    with cursor.copy(f"COPY usage_incoming ({_QUOTED}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    result = connection.exec_driver_sql(_PG_INSERT)
    connection.exec_driver_sql("TRUNCATE usage_incoming")
    return int(result.rowcount)


@dataclass(eq=False)
class _Pending:
    rows: list[tuple[Any, ...]]
    repos: set[str]
    accepted: int | None = None
    error: BaseException | None = None


class GroupCommit:
    """SQLite has one writer at a time, and each commit writes every page the batch dirtied (seven indexes) to
    the WAL, so committing 1,000-row batches one by one costs more than writing them. Concurrent batches are
    therefore written together: the first request to take the writer's lock becomes the leader, writes every
    batch waiting at that moment in one transaction, and hands each its own count. Nobody is answered before
    that transaction committed, so an acknowledged record is a stored record.
    """

    def __init__(self) -> None:
        self._queue_lock = threading.Lock()
        self._queue: list[_Pending] = []

    def submit(self, factory: sessionmaker[Session], pending: _Pending) -> int:
        with self._queue_lock:
            self._queue.append(pending)
        with write_lock(factory):  # the leader is whoever takes the database's write lock first
            if pending.accepted is None and pending.error is None:
                with self._queue_lock:
                    group, self._queue = self._queue, []
                self._write(factory, group)
        if pending.error is not None:
            raise pending.error
        assert pending.accepted is not None
        return pending.accepted

    @staticmethod
    def _write(factory: sessionmaker[Session], group: list[_Pending]) -> None:
        try:
            with factory() as session, session.begin():
                counts = [_write_sqlite(session, item.rows) for item in group]
                repos = set().union(*(item.repos for item, count in zip(group, counts, strict=True) if count))
                jobs.enqueue_many(session, kind="match", keys=repos)
        except BaseException as error:
            for item in group:
                item.error = error
            raise
        for item, count in zip(group, counts, strict=True):
            item.accepted = count


_GROUPS: dict[int, GroupCommit] = {}
_GROUPS_LOCK = threading.Lock()


def _group_for(factory: sessionmaker[Session]) -> GroupCommit:
    """One group committer per database engine of this process."""
    key = id(factory.kw["bind"])
    with _GROUPS_LOCK:
        return _GROUPS.setdefault(key, GroupCommit())


def store_usage(factory: sessionmaker[Session], *, records: list[UsageRecord], owner: str) -> Written:
    """Store a batch durably; returns how many rows were written and how many were duplicates."""
    if not records:
        return Written(accepted=0, duplicates=0)
    unique = _keep_largest(records)
    sqlite = factory.kw["bind"].dialect.name == "sqlite"
    now = utcnow()
    received_at = _sqlite_time(now) if sqlite else now
    # Pricing and row building happen before any lock: only the statements themselves are serialised.
    rows = [_row(record, owner=owner, received_at=received_at, sqlite=sqlite) for record in unique]
    repos = {record.attribution.repo for record in unique if record.attribution.repo}
    if sqlite:
        accepted = _group_for(factory).submit(factory, _Pending(rows=rows, repos=repos))
    else:
        with factory() as session, session.begin():
            accepted = _write_postgres(session, rows)
            if accepted:
                # Matching to pull requests happens in the worker, under a per-repository lock (app.rematch);
                # the job is queued in the same transaction as the records, so neither exists without the other.
                jobs.enqueue_many(session, kind="match", keys=repos)
    return Written(accepted=accepted, duplicates=len(records) - accepted)


def count_usage(session: Session) -> int:
    return int(session.execute(sa.select(sa.func.count()).select_from(USAGE)).scalar_one())
