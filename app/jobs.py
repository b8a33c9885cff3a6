"""The jobs table as a queue (the outbox): enqueue with de-duplication, claim, finish, retry with backoff.

On PostgreSQL a job is claimed with `SELECT … FOR UPDATE SKIP LOCKED`, so any number of workers can poll the
same table without ever running one job twice. SQLite has one writer at a time, so a plain UPDATE claims.
A job whose worker died (state `running`, lock older than LEASE) is claimed again: nothing is lost on a crash.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.db import utcnow
from app.group_commit import group_for
from app.tables import DELIVERIES, JOBS

LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 12


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    id: int
    kind: str
    key: str
    attempts: int


def enqueue(session: Session, *, kind: str, key: str, delay: float = 0.0) -> None:
    """Queue a job unless the same (kind, key) is already waiting: then that one will see the newest state.

    This is the debounce: many events for one pull request within `delay` seconds cause one comment update.
    """
    now = utcnow()
    waiting = session.execute(
        sa.select(JOBS.c.id).where(JOBS.c.kind == kind, JOBS.c.key == key, JOBS.c.state == "queued").limit(1)
    ).first()
    if waiting is not None:
        return
    session.execute(
        sa.insert(JOBS).values(
            kind=kind,
            key=key,
            state="queued",
            attempts=0,
            run_after=now + timedelta(seconds=delay),
            created_at=now,
            updated_at=now,
        )
    )


def enqueue_many(session: Session, *, kind: str, keys: Iterable[str]) -> None:
    """`enqueue` for many keys with one read (the ingest path queues a match job per repository of a batch)."""
    wanted = sorted(set(keys))
    if not wanted:
        return
    waiting = {
        key
        for (key,) in session.execute(
            sa.select(JOBS.c.key).where(JOBS.c.kind == kind, JOBS.c.state == "queued", JOBS.c.key.in_(wanted))
        )
    }
    now = utcnow()
    rows = [
        {
            "kind": kind,
            "key": key,
            "state": "queued",
            "attempts": 0,
            "run_after": now,
            "created_at": now,
            "updated_at": now,
        }
        for key in wanted
        if key not in waiting
    ]
    if rows:
        session.execute(sa.insert(JOBS), rows)


def claim(session: Session, *, now: datetime | None = None) -> ClaimedJob | None:
    """Take the next due job (committing the claim is the caller's transaction)."""
    now = now or utcnow()
    due = sa.or_(
        sa.and_(JOBS.c.state == "queued", JOBS.c.run_after <= now),
        sa.and_(JOBS.c.state == "running", JOBS.c.locked_at < now - LEASE),
    )
    query = (
        sa.select(JOBS.c.id, JOBS.c.kind, JOBS.c.key, JOBS.c.attempts)
        .where(due)
        .order_by(JOBS.c.run_after, JOBS.c.id)
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    row = session.execute(query).first()
    if row is None:
        return None
    claimed = cast(
        CursorResult[Any],
        session.execute(
            sa.update(JOBS)
            .where(JOBS.c.id == row.id, sa.or_(JOBS.c.state == "queued", JOBS.c.locked_at < now - LEASE))
            .values(state="running", locked_at=now, attempts=JOBS.c.attempts + 1, updated_at=now)
        ),
    )
    if claimed.rowcount != 1:  # another worker took it between our read and write (SQLite)
        return None
    return ClaimedJob(id=row.id, kind=row.kind, key=row.key, attempts=row.attempts + 1)


def finish(session: Session, job: ClaimedJob) -> None:
    session.execute(
        sa.update(JOBS)
        .where(JOBS.c.id == job.id)
        .values(state="done", locked_at=None, last_error=None, updated_at=utcnow())
    )


def backoff_seconds(attempts: int) -> float:
    return float(min(2 ** max(attempts - 1, 0), 600))


def retry(session: Session, job: ClaimedJob, *, error: str, retry_after: float | None = None) -> None:
    """Put the job back with exponential backoff (or GitHub's Retry-After); give up after MAX_ATTEMPTS."""
    now = utcnow()
    values: dict[str, Any] = {"locked_at": None, "last_error": error[:2000], "updated_at": now}
    if job.attempts >= MAX_ATTEMPTS:
        values["state"] = "failed"
    else:
        delay = max(retry_after or 0.0, backoff_seconds(job.attempts))
        values.update(state="queued", run_after=now + timedelta(seconds=delay))
    session.execute(sa.update(JOBS).where(JOBS.c.id == job.id).values(**values))


def fail(session: Session, job: ClaimedJob, *, error: str) -> None:
    """A job that failed for a reason retrying cannot cure (a payload no database column can hold, a bug): set
    aside at once as `failed`, a dead letter counted in /metrics, instead of retried MAX_ATTEMPTS times."""
    session.execute(
        sa.update(JOBS)
        .where(JOBS.c.id == job.id)
        .values(state="failed", locked_at=None, last_error=error[:2000], updated_at=utcnow())
    )


def purge_done(session: Session, *, older_than: timedelta = timedelta(days=1)) -> int:
    """Forget finished jobs after a while: the outbox stays small (failed ones are kept for inspection)."""
    result = cast(
        CursorResult[Any],
        session.execute(sa.delete(JOBS).where(JOBS.c.state == "done", JOBS.c.updated_at < utcnow() - older_than)),
    )
    return int(result.rowcount)


def next_due_in(session: Session) -> float | None:
    """Seconds until the next queued job is due (None when nothing waits): how long the worker may sleep."""
    next_run = session.execute(sa.select(sa.func.min(JOBS.c.run_after)).where(JOBS.c.state == "queued")).scalar()
    if next_run is None:
        return None
    from app.db import as_utc

    return max((as_utc(next_run) - utcnow()).total_seconds(), 0.0)


def counts_by_state(session: Session) -> dict[str, int]:
    rows = session.execute(sa.select(JOBS.c.state, sa.func.count()).group_by(JOBS.c.state)).all()
    return {state: int(count) for state, count in rows}


# -- webhook deliveries: each is stored with its job in one transaction (the outbox's inbox) ----------------------


def record_delivery(
    factory: sessionmaker[Session], *, delivery_id: str, event: str, action: str | None, body: bytes
) -> bool:
    """Store the delivery and its job in one transaction; False when it was already stored (a redelivery).

    This is all the acknowledgement does, so it is one statement on PostgreSQL (the delivery, and its job only
    when the delivery is new) and two on SQLite, with no read first: the unique delivery id decides. On SQLite,
    deliveries arriving together share one transaction (app.group_commit).
    """
    pending = _Delivery(delivery_id=delivery_id, event=event, action=action, body=body)
    try:
        if factory.kw["bind"].dialect.name == "sqlite":  # deliveries arriving together share one transaction
            return group_for(factory, _insert_delivery).submit(factory, pending)
        with factory() as session, session.begin():
            return _insert_delivery(session, pending)
    except IntegrityError:  # the same delivery arriving twice at once: the other request stored it
        return False


@dataclass(frozen=True, slots=True)
class _Delivery:
    delivery_id: str
    event: str
    action: str | None
    body: bytes


def _insert_delivery(session: Session, pending: _Delivery) -> bool:
    now = utcnow()
    delivery_id = pending.delivery_id
    delivery = {
        "delivery_id": delivery_id,
        "event": pending.event,
        "action": pending.action,
        "payload": pending.body.decode("utf-8", errors="replace"),
        "received_at": now,
    }
    job_columns = ("kind", "key", "state", "attempts", "run_after", "created_at", "updated_at")
    if session.get_bind().dialect.name == "postgresql":
        stored = (
            postgresql.insert(DELIVERIES)
            .values(**delivery)
            .on_conflict_do_nothing(index_elements=["delivery_id"])
            .returning(DELIVERIES.c.delivery_id)
            .cte("stored")
        )
        job = sa.select(
            sa.literal("webhook"), stored.c.delivery_id, sa.literal("queued"), sa.literal(0),
            sa.literal(now), sa.literal(now), sa.literal(now),
        )  # fmt: skip
        queued = session.execute(sa.insert(JOBS).from_select(job_columns, job).returning(JOBS.c.id)).first()
        return queued is not None
    inserted = cast(
        CursorResult[Any],
        session.execute(sqlite.insert(DELIVERIES).values(**delivery).on_conflict_do_nothing()),
    )
    if inserted.rowcount != 1:
        return False
    values = ("webhook", delivery_id, "queued", 0, now, now, now)
    session.execute(sa.insert(JOBS).values(dict(zip(job_columns, values, strict=True))))
    return True


def load_delivery(session: Session, delivery_id: str) -> tuple[str, str] | None:
    """(event, payload text) of a stored delivery, or None."""
    row = session.execute(
        sa.select(DELIVERIES.c.event, DELIVERIES.c.payload).where(DELIVERIES.c.delivery_id == delivery_id)
    ).first()
    return None if row is None else (str(row.event), str(row.payload))
