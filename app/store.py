"""Writing usage records: one bulk statement per batch, idempotent on (source, record_id)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from app import jobs
from app.db import utcnow
from app.models import Usage
from app.money import to_nanousd
from app.pricing import price_record
from app.records import UsageRecord

USAGE = Usage.__table__  # type: ignore[attr-defined]
_TOKEN_COLUMNS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")


@dataclass(frozen=True, slots=True)
class Written:
    accepted: int
    duplicates: int
    pks: tuple[int, ...] = ()


def _row(record: UsageRecord, *, owner: str, received_at: Any) -> dict[str, Any]:
    cost, reported = price_record(record)
    attribution = record.attribution
    return {
        "source": record.source,
        "record_id": record.id,
        "timestamp": record.timestamp,
        "provider": record.provider,
        "model": record.model,
        "input_tokens": record.input_tokens,
        "cache_read_tokens": record.cache_read_tokens,
        "cache_write_tokens": record.cache_write_tokens,
        "output_tokens": record.output_tokens,
        "reasoning_tokens": record.reasoning_tokens,
        "cost_nanousd": to_nanousd(cost),
        "cost_reported": reported,
        "owner": owner,
        "repo": attribution.repo,
        "branch": attribution.branch,
        "commit": attribution.commit,
        "pr": attribution.pr,
        "actor": record.actor,
        "agent": record.agent,
        "session_id": record.session_id,
        "received_at": received_at,
    }


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


@lru_cache(maxsize=4)
def _upsert(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(USAGE)
    excluded = statement.excluded

    def total(columns: Any) -> Any:
        return sum((columns[name] for name in _TOKEN_COLUMNS[1:]), columns[_TOKEN_COLUMNS[0]])

    # A redelivery with the same tokens is a duplicate (no write). A later, larger version of the same record
    # (a streamed transcript line, a gateway log completed after the fact) replaces the figures it carries.
    return statement.on_conflict_do_update(
        index_elements=["source", "record_id"],
        set_={name: excluded[name] for name in (*_TOKEN_COLUMNS, "reasoning_tokens", "cost_nanousd", "cost_reported")},
        where=total(excluded) > total(USAGE.c),
    ).returning(USAGE.c.pk)


def store_usage(factory: sessionmaker[Session], *, records: list[UsageRecord], owner: str) -> Written:
    """Store a batch in one transaction; returns how many rows were written and how many were duplicates."""
    if not records:
        return Written(accepted=0, duplicates=0)
    unique = _keep_largest(records)
    received_at = utcnow()
    rows = [_row(record, owner=owner, received_at=received_at) for record in unique]
    with factory() as session, session.begin():
        statement = _upsert(session.get_bind().dialect.name)
        pks = tuple(pk for (pk,) in session.execute(statement, rows))
        if pks:
            # Matching to pull requests happens in the worker, under a per-repository lock (app.rematch); the
            # job is queued in the same transaction as the records, so neither can exist without the other.
            for repo in sorted({row["repo"] for row in rows}):
                jobs.enqueue(session, kind="match", key=repo)
    return Written(accepted=len(pks), duplicates=len(records) - len(pks), pks=pks)


def count_usage(session: Session) -> int:
    return int(session.execute(sa.select(sa.func.count()).select_from(USAGE)).scalar_one())
