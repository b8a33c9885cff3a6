"""Attributing Codex telemetry by its rollout: the join of `conversation.id` to the rollout's git block.

Codex cannot put resource attributes on its OTLP events, so a `codex.sse_event` record arrives with no
repository. Its `conversation.id` is the rollout's `session_meta.id`, and the rollout's records carry that
session's `git` block (repository, branch, commit). So, within one owner (never across owners: another owner's
rollout with the same session id attributes nothing of mine):

- telemetry arriving after the rollout takes the rollout's attribution before it is stored;
- telemetry arriving first waits in `usage_unattributed` (counted nowhere: no repository, no tenant's books)
  until a rollout of its session arrives; then it is written with the rollout's attribution in the rollout's
  own batch, and matched like every record.

A waiting record that reports the same call as a record of the rollout (`agent_events.usage_call_id`) is that
call: the rollout's record stays. Only what a record lacks is filled; a record that names its repository keeps
it. Shell: runs inside the store's write transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, replace
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.attribution import Attribution
from app.db import utcnow
from app.parsing import to_datetime
from app.pricing import price_nanousd
from app.records import UsageRecord
from app.sources.agent_events import ROLLOUT_SOURCE, waits_for_session
from app.tables import UNATTRIBUTED, USAGE

_CHUNK = 500
Priced = tuple[int | None, bool]  # (cost in nano-dollars, reported by the source), as app.store writes it
Items = list[tuple[UsageRecord, Priced]]


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _rollout_attributions(records: Iterable[UsageRecord]) -> dict[str, Attribution]:
    """session id -> the git block of the rollout records among `records`."""
    found: dict[str, Attribution] = {}
    for record in records:
        if record.source == ROLLOUT_SOURCE and record.session_id and record.attribution.repo:
            found.setdefault(record.session_id, replace(record.attribution, pr=None))
    return found


def _stored_attributions(session: Session, owner: str, session_ids: Sequence[str]) -> dict[str, Attribution]:
    u = USAGE.c
    known: dict[str, Attribution] = {}
    for chunk in _chunks(session_ids):
        query = (
            sa.select(u.session_id, u.repo, u.branch, u.commit)
            .where(u.owner == owner, u.source == ROLLOUT_SOURCE, u.session_id.in_(chunk), u.repo.is_not(None))
            .order_by(u.pk)
        )
        for row in session.execute(query):
            known.setdefault(row.session_id, Attribution(repo=row.repo, branch=row.branch, commit=row.commit))
    return known


def _to_json(record: UsageRecord) -> str:
    data = asdict(record)
    data["timestamp"] = record.timestamp.isoformat()
    data["cost_usd"] = None if record.cost_usd is None else str(record.cost_usd)
    return json.dumps(data, separators=(",", ":"))


def _from_json(text: str) -> UsageRecord:
    data: dict[str, Any] = json.loads(text)
    data["timestamp"] = to_datetime(data["timestamp"])
    data["cost_usd"] = None if data["cost_usd"] is None else Decimal(data["cost_usd"])
    data["attribution"] = Attribution(**data["attribution"])
    data["call_ids"] = tuple(data["call_ids"])
    return UsageRecord(**data)


_PARK_ROWS = 500  # six parameters a row


def _park(session: Session, owner: str, records: Sequence[UsageRecord]) -> int:
    """Keep records that wait for their session; returns how many were new (a redelivery is a duplicate)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    received_at = utcnow()
    parked = 0
    rows = [
        {
            "owner": owner,
            "source": record.source,
            "record_id": record.id,
            "session_id": record.session_id,
            "record": _to_json(record),
            "received_at": received_at,
        }
        for record in records
    ]
    for start in range(0, len(rows), _PARK_ROWS):  # one statement a chunk, under the databases' parameter limits
        statement = (
            dialect.insert(UNATTRIBUTED)
            .values(rows[start : start + _PARK_ROWS])
            .on_conflict_do_nothing()
            .returning(UNATTRIBUTED.c.pk)  # rowcount is not reliable for this statement on every driver
        )
        parked += len(session.execute(statement).all())
    return parked


def _release(session: Session, owner: str, rollouts: dict[str, Attribution], calls: set[str]) -> Items:
    """The waiting records of these sessions, now attributed (and no longer waiting); those reporting a call the
    batch already holds are that call and are dropped."""
    u = UNATTRIBUTED.c
    released: Items = []
    for chunk in _chunks(sorted(rollouts)):
        rows = session.execute(
            sa.select(u.pk, u.session_id, u.record).where(u.owner == owner, u.session_id.in_(chunk))
        ).all()
        for row in rows:
            record = _from_json(row.record).with_attribution(rollouts[row.session_id])
            if not calls.intersection(record.call_ids):
                released.append((record, price_nanousd(record)))
        session.execute(sa.delete(UNATTRIBUTED).where(u.pk.in_([row.pk for row in rows])))
    return released


def _lock_sessions(session: Session, owner: str, session_ids: Iterable[str]) -> None:
    """On PostgreSQL, serialise the requests that join the same sessions: without it, telemetry and its rollout
    written at the same moment would each miss the other (the telemetry parked, the rollout releasing nothing).
    Sorted, so two requests locking overlapping sessions cannot deadlock; SQLite has a single writer already."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for session_id in sorted(set(session_ids)):
        key = f"session-join:{owner}:{session_id}"
        session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})


def join(session: Session, owner: str, items: Items) -> tuple[Items, int, Items]:
    """(the batch to write, how many of its records were parked to wait for their session, the waiting records
    this batch's rollouts release: the store writes them next, as a batch of their own)."""
    waiting = sorted({r.session_id for r, _ in items if waits_for_session(r) and r.session_id})
    _lock_sessions(session, owner, [*waiting, *_rollout_attributions(record for record, _ in items)])
    if waiting:
        known = _stored_attributions(session, owner, waiting)
        items = [
            (record.with_attribution(known[record.session_id]), priced)
            if waits_for_session(record) and record.session_id in known
            else (record, priced)
            for record, priced in items
        ]
    parked = _park(session, owner, [r for r, _ in items if r.attribution.repo is None and waits_for_session(r)])
    items = [(record, priced) for record, priced in items if record.attribution.repo is not None]
    rollouts = _rollout_attributions(record for record, _ in items)
    calls = {call for record, _ in items for call in record.call_ids}
    return items, parked, _release(session, owner, rollouts, calls) if rollouts else []
