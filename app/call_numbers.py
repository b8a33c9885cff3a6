"""Occurrence numbers of the calls agents name by their token counts (`agent_events.usage_call_id`).

Two responses of one session can report the very same counts (two short, identical turns), so the name alone
would make them one call and lose one. Each source numbers its records of the same name in the order it reports
them: the k-th record of the rollout or chat file is "…#k", and so is the k-th telemetry event of that session.
The numbers are counted per owner, source and name over every record ever numbered (`usage_call_numbers`), not
over what is stored: a telemetry event dropped because the file already held its call still takes its number, a
record sent again gets its own number back (and stays a duplicate), and a file that grew keeps the numbers of its
earlier lines, in however many requests it arrives. One query and one insert per batch; the caller holds the
sessions' advisory locks on PostgreSQL, so two requests never hand out the same number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db import chunks
from app.records import UsageRecord
from app.sources.agent_events import NUMBERED
from app.tables import CALL_NUMBERS

Priced = tuple[int | None, bool]
Items = list[tuple[UsageRecord, Priced]]
_INSERT_ROWS = 500  # five parameters a row, under both databases' limits


def sessions_to_number(items: Items) -> set[str]:
    """The sessions whose records carry a call id to number (their lock must be held first)."""
    return {r.session_id for r, _ in items if r.session_id and any(c.endswith(NUMBERED) for c in r.call_ids)}


def _stored(session: Session, owner: str, names: Sequence[str]) -> dict[tuple[str, str, str], int]:
    """(source, name, record id) -> number, of every record of `owner` numbered under one of `names`."""
    n = CALL_NUMBERS.c
    found: dict[tuple[str, str, str], int] = {}
    for chunk in chunks(sorted(set(names))):
        query = sa.select(n.source, n.call_id, n.record_id, n.number).where(n.owner == owner, n.call_id.in_(chunk))
        found.update(((row.source, row.call_id, row.record_id), row.number) for row in session.execute(query))
    return found


def number_calls(session: Session, owner: str, items: Items) -> Items:
    """The batch with every count-named call id numbered (records in the batch's order: the file's order)."""
    names = [c for record, _ in items for c in record.call_ids if c.endswith(NUMBERED)]
    if not names:
        return items
    known = _stored(session, owner, names)
    highest: dict[tuple[str, str], int] = {}
    for (source, name, _), number in known.items():
        highest[source, name] = max(highest.get((source, name), 0), number)
    new_rows: list[dict[str, object]] = []
    numbered: Items = []
    for record, priced in items:
        calls: list[str] = []
        for name in record.call_ids:
            if not name.endswith(NUMBERED):
                calls.append(name)
                continue
            key = (record.source, name, record.id)
            if key not in known:  # a record not numbered before: the next number of its name, from its source
                known[key] = highest[record.source, name] = highest.get((record.source, name), 0) + 1
                new_rows.append(
                    {
                        "owner": owner,
                        "source": record.source,
                        "call_id": name,
                        "record_id": record.id,
                        "number": known[key],
                    }
                )
            calls.append(f"{name}{known[key]}")
        numbered.append(
            (replace(record, call_ids=tuple(calls)), priced) if calls != list(record.call_ids) else (record, priced)
        )
    _insert(session, new_rows)
    return numbered


def _insert(session: Session, rows: list[dict[str, object]]) -> None:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    for start in range(0, len(rows), _INSERT_ROWS):
        session.execute(
            dialect.insert(CALL_NUMBERS).values(rows[start : start + _INSERT_ROWS]).on_conflict_do_nothing()
        )
