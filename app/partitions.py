"""Monthly partitions of `usage` on PostgreSQL (migration 0018): one partition per calendar month (UTC) named
`usage_pYYYYMM`, and `usage_default` for the rows of any month that has none (far-past or far-future times).

The worker creates the current month's and the next `AHEAD` months' partitions at start and daily, and so does
`tokentrail migrate`: idempotent, and safe with two workers (one transaction-scoped advisory lock). A month that
already has rows in the DEFAULT partition gets them moved into its new partition in the same transaction.
`drop_before` is `tokentrail prune`'s PostgreSQL half (app.retention). SQLite's `usage` is one table: nothing here
runs there.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

AHEAD = 2
DEFAULT = "usage_default"
_NAME = re.compile(r"^usage_p(\d{4})(\d{2})$")
_PARTITIONED = """
SELECT 1 FROM pg_partitioned_table t JOIN pg_class c ON c.oid = t.partrelid
WHERE c.relname = 'usage' AND c.relnamespace = current_schema()::regnamespace
"""
_PARTITIONS = """
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
WHERE p.relname = 'usage' AND p.relnamespace = current_schema()::regnamespace
"""


def name_of(month: date) -> str:
    return f"usage_p{month.year:04d}{month.month:02d}"


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _bound(month: date) -> str:
    return f"'{month.isoformat()} 00:00:00+00'"


def bounds_of(month: date) -> str:
    """The partition bound clause of a month (UTC)."""
    return f"FOR VALUES FROM ({_bound(month)}) TO ({_bound(next_month(month))})"


def is_partitioned(connection: Connection) -> bool:
    if connection.dialect.name != "postgresql":
        return False
    found = connection.execute(sa.text(_PARTITIONED)).first()
    return found is not None


def months(connection: Connection) -> list[date]:
    """The months that have a partition, in order."""
    rows = connection.execute(sa.text(_PARTITIONS))
    found = (_NAME.match(name) for (name,) in rows)
    return sorted(date(int(match[1]), int(match[2]), 1) for match in found if match)


def create_month(connection: Connection, month: date) -> bool:
    """Create the month's partition unless it exists; True when it was created. Rows of that month waiting in the
    DEFAULT partition move into it (attaching a range the DEFAULT partition holds rows of would fail)."""
    connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended('usage_partitions', 0))"))
    if month in months(connection):
        return False
    name, until = name_of(month), next_month(month)
    where = f'"timestamp" >= {_bound(month)} AND "timestamp" < {_bound(until)}'
    connection.execute(sa.text(f"CREATE TABLE {name} (LIKE usage INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"))
    connection.execute(
        sa.text(
            f"WITH moved AS (DELETE FROM {DEFAULT} WHERE {where} RETURNING *) INSERT INTO {name} SELECT * FROM moved"
        )
    )
    connection.execute(sa.text(f"ALTER TABLE usage ATTACH PARTITION {name} {bounds_of(month)}"))
    return True


def ensure_ahead(connection: Connection, *, today: date | None = None) -> list[date]:
    """Create the partitions of the current month and the `AHEAD` next ones that are missing (in the caller's
    transaction); returns the months created. Does nothing where `usage` is not partitioned."""
    if not is_partitioned(connection):
        return []
    month = (today or datetime.now(tz=UTC).date()).replace(day=1)
    created = []
    for _ in range(AHEAD + 1):
        if create_month(connection, month):
            created.append(month)
        month = next_month(month)
    return created


_DEFAULT_MONTHS = f"""
SELECT DISTINCT CAST(date_trunc('month', "timestamp" AT TIME ZONE 'UTC') AS date) FROM {DEFAULT}
WHERE "timestamp" >= '2000-01-01 00:00:00+00' AND "timestamp" < now() + interval '3 months'
"""


def adopt_default(connection: Connection) -> list[date]:
    """Give each month with rows waiting in the DEFAULT partition (a history loaded in bulk) its own partition."""
    found = sorted(month for (month,) in connection.execute(sa.text(_DEFAULT_MONTHS)))
    return [month for month in found if create_month(connection, month)]


Carry = Callable[..., None]


def drop_before(engine: Engine, pruned: Any, *, dry_run: bool, carry: Carry, params: dict[str, object]) -> None:
    """Carry, detach and drop each monthly partition wholly before `pruned.cutoff` (a month boundary), one
    transaction each. The SHARE lock taken first keeps writers out of the month while its figures are carried, so
    no row can arrive between the carry and the drop."""
    with engine.connect() as connection:
        if not is_partitioned(connection):
            return
        doomed = [month for month in months(connection) if next_month(month) <= pruned.cutoff.date()]
    for month in doomed:
        name = name_of(month)
        with engine.connect() as connection, connection.begin() as transaction:
            if not dry_run:
                connection.execute(sa.text(f"LOCK TABLE {name} IN SHARE MODE"))
            carry(connection, table=name, scope="TRUE", params=params, pruned=pruned)
            pruned.records += int(connection.execute(sa.text(f"SELECT COUNT(*) FROM {name}")).scalar_one())
            pruned.months.append(name)
            if dry_run:
                transaction.rollback()
                continue
            connection.execute(sa.text(f"ALTER TABLE usage DETACH PARTITION {name}"))
            connection.execute(sa.text(f"DROP TABLE {name}"))


# What autogenerate does not compare: the partitions (tables of their own to it), and the dedupe key that on
# PostgreSQL moved from `usage` to `usage_keys` (migration 0018; on SQLite it stays, and tests/test_store.py proves
# what it does on both).
_NOT_COMPARED = {"ix_usage_owner_source_record_id", "uq_usage_owner_source_record_id"}


def include_object(obj: Any, name: str | None, type_: str, _reflected: bool, _compare_to: Any) -> bool:
    """Alembic's `include_object` hook (migrations/env.py, tests/test_migrations.py)."""
    table = obj if type_ == "table" else getattr(obj, "table", None)
    table_name = str(getattr(table, "name", ""))
    if table_name == DEFAULT or _NAME.match(table_name):
        return False
    return name not in _NOT_COMPARED
