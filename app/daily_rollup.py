"""Keeping the daily rollup (`usage_days`): counted usage summed per owner, UTC day, repository, pull request, model,
agent and, for unmatched records, actor and branch (the groups the org and repository pages show).

Every way a record starts or stops counting somewhere is a write to `usage`: stored (COPY, executemany, the
conflict rule that grows a record), filled in by a second report of its call, moved to a branch, matched, moved
to another PR, set aside. Database triggers apply each of those writes to the rollup in the same statement, so the
rollup cannot miss a path a later change adds and always equals the aggregation of the counted records:

- SQLite: row triggers (an upsert per inserted row; the old row out and the new row in per updated row, only when
  a column the rollup reads changed);
- PostgreSQL: statement triggers over the transition tables (one set-based upsert per statement, COPY included).

Deleting a usage row is not seen: pruning old records keeps their figures. The product's own deletions (metric
records superseded by their session's events, a record that lost a race for its call id) first mark the rows not
counted (`discount`), which the update trigger takes out. A cell's `last_at` is its latest record: raised on the
way in; when the latest leaves, read again from the cell's remaining records.

`rebuild` fills the rollup from the records in one INSERT … SELECT … GROUP BY (migration 0017, bench history).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.tables import USAGE

SPLIT = 1_000_000_000  # each sum is kept as hi (value / SPLIT) and lo (value % SPLIT): neither can overflow
KEYS = ("owner", "day", "repo", "pr_repo", "pr_number", "pr_private", "model", "provider", "agent", "actor", "branch")
SUMMED = (
    ("cost", "cost_nanousd"),
    ("input", "input_tokens"),
    ("cache_read", "cache_read_tokens"),
    ("cache_write", "cache_write_tokens"),
    ("output", "output_tokens"),
)
FIGURES = ("records", "unpriced", *(f"{name}_{part}" for name, _ in SUMMED for part in ("hi", "lo")))
COLUMNS = ("cell", *KEYS, "last_at", *FIGURES)
# The usage columns a row's place or figures in the rollup depend on.
WATCHED = (
    "owner", "timestamp", "repo", "pr_repo", "pr_number", "pr_private", "model", "provider", "agent", "actor",
    "branch", "match_error", "cost_nanousd", "input_tokens", "cache_read_tokens", "cache_write_tokens",
    "output_tokens",
)  # fmt: skip
NOT_COUNTED = "not counted"  # the match_error `discount` writes just before the product deletes rows


def _day(dialect: str, row: str) -> str:
    if dialect == "sqlite":
        return f'date({row}."timestamp")'
    return f"""({row}."timestamp" AT TIME ZONE 'UTC')::date"""


def _keys(dialect: str, row: str) -> dict[str, str]:
    unmatched = f"{row}.pr_number IS NULL"
    return {
        "owner": f"{row}.owner",
        "day": _day(dialect, row),
        "repo": f"{row}.repo",
        "pr_repo": f"{row}.pr_repo",
        "pr_number": f"{row}.pr_number",
        "pr_private": f"{row}.pr_private",
        "model": f"{row}.model",
        "provider": f"{row}.provider",
        "agent": f"{row}.agent",
        "actor": f"CASE WHEN {unmatched} THEN {row}.actor END",
        "branch": f"CASE WHEN {unmatched} THEN {row}.branch END",
    }


def _cell(dialect: str, row: str) -> str:
    values = ", ".join(_keys(dialect, row).values())
    if dialect == "sqlite":
        return f"json_array({values})"
    return f"encode(sha256(convert_to(json_build_array({values})::text, 'UTF8')), 'hex')"


def _figures(row: str) -> dict[str, str]:
    figures = {"records": "1", "unpriced": f"CASE WHEN {row}.cost_nanousd IS NULL THEN 1 ELSE 0 END"}
    for name, column in SUMMED:
        value = f"COALESCE({row}.{column}, 0)"
        figures[f"{name}_hi"] = f"{value} / {SPLIT}"
        figures[f"{name}_lo"] = f"{value} - {value} / {SPLIT} * {SPLIT}"  # no `%`: a placeholder to psycopg
    return figures


def _row_values(dialect: str, row: str) -> dict[str, str]:
    """One usage row's place (cell and keys), time and figures, as SQL over the row alias `row`."""
    return {"cell": _cell(dialect, row), **_keys(dialect, row), "last_at": f'{row}."timestamp"', **_figures(row)}


def _grouped(dialect: str, rows: str, where: str) -> str:
    """The rows of `rows` (aliased r) that `where` admits, summed per cell: a SELECT in COLUMNS order."""
    values = _row_values(dialect, "r")
    inner = ", ".join(f"{sql} AS {name}" for name, sql in values.items())
    keys = ", ".join(("cell", *KEYS))
    sums = ", ".join(f"SUM({name}) AS {name}" for name in FIGURES)
    return (
        f"SELECT {keys}, MAX(last_at) AS last_at, {sums} FROM (SELECT {inner} FROM {rows} r WHERE {where}) counted "
        f"WHERE day IS NOT NULL GROUP BY {keys} ORDER BY cell"  # cells locked in one order: no deadlock
    )


def _upsert_tail(dialect: str) -> str:
    greatest = "max" if dialect == "sqlite" else "GREATEST"
    added = ", ".join(f"{name} = usage_days.{name} + excluded.{name}" for name in FIGURES)
    return f"ON CONFLICT (cell) DO UPDATE SET {added}, last_at = {greatest}(usage_days.last_at, excluded.last_at)"


def _remaining_latest(dialect: str) -> str:
    """The latest counted record of the rollup row being updated (usage_days) still in `usage`."""
    if dialect == "sqlite":
        start, end = "usage_days.day", "date(usage_days.day, '+1 day')"
        same = "IS"
    else:
        start = "(usage_days.day::timestamp AT TIME ZONE 'UTC')"
        end = "((usage_days.day + 1)::timestamp AT TIME ZONE 'UTC')"
        same = "IS NOT DISTINCT FROM"
    same_keys = " AND ".join(
        f"u.{name} {same} usage_days.{name}" for name in ("pr_repo", "pr_number", "pr_private", "provider", "agent")
    )
    return (
        f'(SELECT MAX(u."timestamp") FROM usage u WHERE u.repo = usage_days.repo AND u."timestamp" >= {start} '
        f'AND u."timestamp" < {end} AND {_day(dialect, "u")} = usage_days.day AND u.owner = usage_days.owner '
        f"AND u.match_error IS NULL AND u.model = usage_days.model AND {same_keys} "
        f"AND (usage_days.pr_number IS NOT NULL OR (u.actor {same} usage_days.actor "
        f"AND u.branch {same} usage_days.branch)))"
    )


# -- SQLite: row triggers ----------------------------------------------------------------------------------------------


def _sqlite_add(row: str) -> str:
    values = _row_values("sqlite", row)
    return (
        f"INSERT INTO usage_days ({', '.join(COLUMNS)}) SELECT {', '.join(values[name] for name in COLUMNS)} "
        f"WHERE {row}.match_error IS NULL AND {_day('sqlite', row)} IS NOT NULL {_upsert_tail('sqlite')};"
    )


def _sqlite_remove() -> str:
    values = _row_values("sqlite", "OLD")
    cell = f"cell = {values['cell']} AND OLD.match_error IS NULL"
    taken = ", ".join(f"{name} = {name} - ({values[name]})" for name in FIGURES)
    latest = f"COALESCE({_remaining_latest('sqlite')}, last_at)"
    return (
        f'UPDATE usage_days SET {taken}, last_at = CASE WHEN last_at <= OLD."timestamp" THEN {latest} '
        f"ELSE last_at END WHERE {cell};\n"
        f"DELETE FROM usage_days WHERE {cell} AND records = 0;"
    )


def _sqlite_triggers() -> list[str]:
    changed = " OR ".join(f'OLD."{name}" IS NOT NEW."{name}"' for name in WATCHED)
    watched = ", ".join(f'"{name}"' for name in WATCHED)
    return [
        f"CREATE TRIGGER usage_days_insert AFTER INSERT ON usage BEGIN {_sqlite_add('NEW')} END",
        f"CREATE TRIGGER usage_days_update AFTER UPDATE OF {watched} ON usage WHEN {changed} BEGIN "
        f"{_sqlite_remove()} {_sqlite_add('NEW')} END",
    ]


# -- PostgreSQL: statement triggers over the transition tables ---------------------------------------------------------


def _pg_functions() -> list[str]:
    add = f"INSERT INTO usage_days ({', '.join(COLUMNS)}) {{select}} {_upsert_tail('postgresql')};"
    differs = " OR ".join(f'o."{name}" IS DISTINCT FROM n."{name}"' for name in WATCHED)
    moved = "r.match_error IS NULL AND r.pk = ANY(moved)"
    gone = _grouped("postgresql", "old_rows", moved)
    taken = ", ".join(f"{name} = usage_days.{name} - g.{name}" for name in FIGURES)
    latest = f"COALESCE({_remaining_latest('postgresql')}, usage_days.last_at)"
    return [
        f"""CREATE OR REPLACE FUNCTION usage_days_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  {add.format(select=_grouped("postgresql", "new_rows", "r.match_error IS NULL"))}
  RETURN NULL;
END $$""",
        f"""CREATE OR REPLACE FUNCTION usage_days_updated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE moved bigint[];
BEGIN
  SELECT array_agg(o.pk) INTO moved FROM old_rows o JOIN new_rows n ON n.pk = o.pk WHERE {differs};
  IF moved IS NULL THEN RETURN NULL; END IF;
  -- The cells this statement takes records out of, locked in the order every writer locks them.
  PERFORM 1 FROM usage_days WHERE cell IN (SELECT g.cell FROM ({gone}) g) ORDER BY cell FOR UPDATE;
  UPDATE usage_days SET {taken},
    last_at = CASE WHEN usage_days.last_at <= g.last_at THEN {latest} ELSE usage_days.last_at END
    FROM ({gone}) g WHERE usage_days.cell = g.cell;
  DELETE FROM usage_days WHERE records = 0 AND cell IN (SELECT g.cell FROM ({gone}) g);
  {add.format(select=_grouped("postgresql", "new_rows", moved))}
  RETURN NULL;
END $$""",
    ]


def _pg_triggers() -> list[str]:
    return [
        *_pg_functions(),
        "CREATE TRIGGER usage_days_insert AFTER INSERT ON usage REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION usage_days_inserted()",
        "CREATE TRIGGER usage_days_update AFTER UPDATE ON usage REFERENCING OLD TABLE AS old_rows "
        "NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION usage_days_updated()",
    ]


def create_triggers(connection: sa.Connection) -> None:
    """Install the triggers that keep the rollup (migration 0017; after a bulk load without them)."""
    statements = _sqlite_triggers() if connection.dialect.name == "sqlite" else _pg_triggers()
    for statement in statements:
        connection.exec_driver_sql(statement)


def drop_triggers(connection: sa.Connection) -> None:
    """Remove the triggers (a bulk load that rebuilds the rollup afterwards: bench/history.py)."""
    for name in ("usage_days_insert", "usage_days_update"):
        connection.exec_driver_sql(
            f"DROP TRIGGER IF EXISTS {name}" + ("" if connection.dialect.name == "sqlite" else " ON usage")
        )


def rebuild(connection: sa.Connection) -> None:
    """Rewrite the whole rollup from the counted records (set-based)."""
    connection.exec_driver_sql("DELETE FROM usage_days")
    select = _grouped(connection.dialect.name, "usage", "r.match_error IS NULL")
    connection.exec_driver_sql(f"INSERT INTO usage_days ({', '.join(COLUMNS)}) {select}")


def discount(session: Session, where: Any) -> None:
    """Take these records out of the rollup before the product deletes them (a plain DELETE, as pruning does,
    leaves the rollup alone)."""
    session.execute(sa.update(USAGE).where(where, USAGE.c.match_error.is_(None)).values(match_error=NOT_COUNTED))
