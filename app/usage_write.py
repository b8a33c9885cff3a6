"""Writing a batch of usage rows in one bulk statement per database, idempotent per owner (app.store decides what
the rows are; DESIGN §2).

- **SQLite**: one executemany INSERT; the unique key (owner, source, record_id) of `usage` answers the same record
  sent again: a redelivery writes nothing, a later, larger version replaces the figures.
- **PostgreSQL**: `usage` is partitioned by month (app.partitions), and a partitioned table's unique keys must
  hold the partition key, so (owner, source, record_id) would no longer be unique on its own: the same record
  re-sent with another time would be stored twice. The key lives in `usage_keys` instead, one unpartitioned row
  per record, kept when the record is pruned. A batch of new records is two COPYs, keys first. Otherwise it is
  COPied into a session-local staging table; one statement inserts the keys that are new and, for those alone, the
  rows; a second grows the stored records the staged ones outgrew. Two requests with the same key at once: the
  second's key insert waits for the first to commit and then fails (COPY) or writes nothing (the staging path),
  as the unique key did before.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from sqlalchemy.orm import Session

COLUMNS = (
    "source", "record_id", "timestamp", "provider", "model", "input_tokens", "cache_read_tokens",
    "cache_write_tokens", "output_tokens", "reasoning_tokens", "cost_nanousd", "cost_reported", "owner", "repo",
    "branch", "commit", "pr", "actor", "agent", "session_id", "received_at", "call_id", "share_upstream",
    "also_seen_by",
)  # fmt: skip
_QUOTED = ", ".join(f'"{name}"' for name in COLUMNS)
_TOKENS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")
_UPDATED = (*_TOKENS, "reasoning_tokens", "cost_nanousd", "cost_reported")


def _total(prefix: str) -> str:
    return " + ".join(f"{prefix}.{name}" for name in _TOKENS)


# A grown record is matched again (matched_at NULL): its pull request's totals changed, so the worker refreshes it.
_ON_CONFLICT = (
    "ON CONFLICT (owner, source, record_id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _UPDATED)
    + ", matched_at = NULL"
    + f" WHERE {_total('excluded')} > {_total('usage')}"
)
_SQLITE_INSERT = f"INSERT INTO usage ({_QUOTED}) VALUES ({', '.join('?' * len(COLUMNS))}) {_ON_CONFLICT}"

_COPY_KEYS = 'COPY usage_keys (owner, source, record_id, usage_pk, "timestamp") FROM STDIN'
_PG_STAGE = "CREATE TEMP TABLE IF NOT EXISTS usage_incoming (LIKE usage INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
_PG_INSERT = f"""
WITH new AS (
    INSERT INTO usage_keys (owner, source, record_id, usage_pk, "timestamp")
    SELECT owner, source, record_id, pk, "timestamp" FROM usage_incoming
    ON CONFLICT DO NOTHING RETURNING usage_pk
)
INSERT INTO usage (pk, {_QUOTED}) SELECT pk, {_QUOTED} FROM usage_incoming WHERE pk IN (SELECT usage_pk FROM new)
"""
# The key's time finds the stored row's partition; a key whose record was pruned finds none (a duplicate).
_PG_GROW = f"""
UPDATE usage SET {", ".join(f"{name} = i.{name}" for name in _UPDATED)}, matched_at = NULL
FROM usage_incoming i JOIN usage_keys k ON k.owner = i.owner AND k.source = i.source AND k.record_id = i.record_id
WHERE usage.pk = k.usage_pk AND usage."timestamp" = k."timestamp" AND k.usage_pk <> i.pk
AND {_total("i")} > {_total("usage")}
"""


def write_sqlite(session: Session, rows: list[tuple[Any, ...]]) -> int:
    """Returns the rows inserted or grown."""
    # The rows each statement inserted or updated (a skipped conflict counts nothing); unlike the connection's
    # total_changes, not the rows the daily rollup's triggers wrote (app.daily_rollup).
    return int(session.connection().exec_driver_sql(_SQLITE_INSERT, rows).rowcount)


def _copy(driver: Any, statement: str, rows: Iterable[tuple[Any, ...]]) -> None:
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


_KEY = tuple(COLUMNS.index(name) for name in ("owner", "source", "record_id", "timestamp"))


def write_postgres(session: Session, rows: list[tuple[Any, ...]]) -> int:
    """Returns the rows inserted or grown. When every record is new (the usual case) the rows take their pks from
    the sequence in one query and go in with two COPYs, keys first; when a key exists already, that COPY fails on
    it, is rolled back to its savepoint, and the batch goes through the staging table instead."""
    connection = session.connection()
    driver: Any = connection.connection.dbapi_connection
    pks = connection.exec_driver_sql(f"SELECT nextval('usage_pk_seq') FROM generate_series(1, {len(rows)})")
    keyed = [(pk, *row) for (pk,), row in zip(pks, rows, strict=True)]
    savepoint = connection.begin_nested()
    try:
        _copy(driver, _COPY_KEYS, ((*(row[i + 1] for i in _KEY[:3]), row[0], row[_KEY[3] + 1]) for row in keyed))
    except psycopg.errors.UniqueViolation:
        savepoint.rollback()
    else:
        _copy(driver, f"COPY usage (pk, {_QUOTED}) FROM STDIN", keyed)
        savepoint.commit()
        return len(rows)
    connection.exec_driver_sql(_PG_STAGE)
    _copy(driver, f"COPY usage_incoming ({_QUOTED}) FROM STDIN", rows)
    inserted = connection.exec_driver_sql(_PG_INSERT).rowcount
    grown = connection.exec_driver_sql(_PG_GROW).rowcount
    connection.exec_driver_sql("TRUNCATE usage_incoming")
    return int(inserted) + int(grown)
