"""Attributing agent telemetry that names no repository by the agent's own file of the same session.

Some agents cannot put repository attributes on their OTLP telemetry, or are not configured to: Codex
(`codex.sse_event`, keyed by `conversation.id`), Gemini CLI (`gemini_cli.api_response`, by `session.id`) and Copilot
Chat (`chat` spans, by `session.id` or `gen_ai.conversation.id`). The same sessions are later read from the agent's
own files with their repository: the Codex rollout (its `session_meta.git` block), the Gemini CLI chat file and
Copilot's OTel file, which `tokentrail import` attributes to the checkout it runs in. `agent_events.SESSION_SOURCES`
maps each such agent to the source of those records: one table, one join. Within one owner (never across owners:
another owner's file with the same session id attributes nothing of mine):

- telemetry arriving after the file takes the file's attribution before it is stored;
- telemetry arriving first waits in `usage_unattributed` (counted nowhere: no repository, no tenant's books)
  until a record of its session from the file arrives; then it is written with that attribution in the file's
  own batch, and matched like every record.

A waiting record that reports the same call as a record of the file (`agent_events.usage_call_id`, numbered by
`app.call_numbers`; Copilot's response id) is that call: the file's record stays. Only what a record lacks is
filled; a record that names its repository keeps it. Shell: runs inside the store's write transaction.
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
from app.call_numbers import number_calls, sessions_to_number
from app.db import utcnow
from app.parsing import to_datetime
from app.pricing import price_nanousd
from app.records import UsageRecord
from app.sources.agent_events import SESSION_SOURCES, attributes_session, waits_for_session
from app.tables import UNATTRIBUTED, USAGE

_CHUNK = 500
Priced = tuple[int | None, bool]  # (cost in nano-dollars, reported by the source), as app.store writes it
Items = list[tuple[UsageRecord, Priced]]
SessionKey = tuple[str, str]  # (agent, session id): the same id under another agent is another session


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _key(record: UsageRecord) -> SessionKey:
    return (record.agent or "", record.session_id or "")


def _file_attributions(records: Iterable[UsageRecord]) -> dict[SessionKey, Attribution]:
    """(agent, session) -> the git block of the agent's own file records among `records`."""
    found: dict[SessionKey, Attribution] = {}
    for record in records:
        if attributes_session(record):
            found.setdefault(_key(record), replace(record.attribution, pr=None))
    return found


def _stored_attributions(session: Session, owner: str, keys: Sequence[SessionKey]) -> dict[SessionKey, Attribution]:
    u = USAGE.c
    own_files = sa.or_(*(sa.and_(u.agent == agent, u.source == source) for agent, source in SESSION_SOURCES.items()))
    wanted = set(keys)
    known: dict[SessionKey, Attribution] = {}
    for chunk in _chunks(sorted({session_id for _, session_id in wanted})):
        query = (
            sa.select(u.agent, u.session_id, u.repo, u.branch, u.commit)
            .where(u.owner == owner, u.session_id.in_(chunk), u.repo.is_not(None), own_files)
            .order_by(u.pk)
        )
        for row in session.execute(query):
            if (row.agent, row.session_id) in wanted:
                known.setdefault(
                    (row.agent, row.session_id), Attribution(repo=row.repo, branch=row.branch, commit=row.commit)
                )
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


def _release(session: Session, owner: str, files: dict[SessionKey, Attribution], calls: set[str]) -> Items:
    """The waiting records of these sessions, now attributed (and no longer waiting); those reporting a call the
    batch already holds are that call and are dropped."""
    u = UNATTRIBUTED.c
    released: Items = []
    for chunk in _chunks(sorted({session_id for _, session_id in files})):
        rows = session.execute(
            sa.select(u.pk, u.session_id, u.record).where(u.owner == owner, u.session_id.in_(chunk))
        ).all()
        done: list[int] = []
        for row in rows:
            record = _from_json(row.record)
            attribution = files.get(_key(record))
            if attribution is None:
                continue  # the same session id under another agent: still waiting for its own file
            done.append(row.pk)
            record = record.with_attribution(attribution)
            if not calls.intersection(record.call_ids):
                released.append((record, price_nanousd(record)))
        if done:
            session.execute(sa.delete(UNATTRIBUTED).where(u.pk.in_(done)))
    return released


def _lock_sessions(session: Session, owner: str, session_ids: Iterable[str]) -> None:
    """On PostgreSQL, serialise the requests that join or number the same sessions: without it, telemetry and its
    file written at the same moment would each miss the other (the telemetry parked, the file releasing nothing),
    and two requests could give two calls the same number. Taken once, for every session of the batch, sorted, so
    two requests locking overlapping sessions cannot deadlock; SQLite has a single writer already."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for session_id in sorted(set(session_ids)):
        key = f"session-join:{owner}:{session_id}"
        session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})


def join(session: Session, owner: str, items: Items) -> tuple[Items, int, Items]:
    """(the batch to write, its count-named calls numbered, how many of its records were parked to wait for their
    session, the waiting records this batch's file records release: the store writes them next, as a batch of its
    own)."""
    waiting = sorted({_key(r) for r, _ in items if waits_for_session(r)})
    files = _file_attributions(record for record, _ in items)
    _lock_sessions(session, owner, [*sessions_to_number(items), *(s for _, s in waiting), *(s for _, s in files)])
    items = number_calls(session, owner, items)
    if waiting:
        known = _stored_attributions(session, owner, waiting)
        items = [
            (record.with_attribution(known[_key(record)]), priced)
            if waits_for_session(record) and _key(record) in known
            else (record, priced)
            for record, priced in items
        ]
    parked = _park(session, owner, [r for r, _ in items if waits_for_session(r)])
    items = [(record, priced) for record, priced in items if record.attribution.repo is not None]
    calls = {call for record, _ in items for call in record.call_ids}
    return items, parked, _release(session, owner, files, calls) if files else []
