"""Retention: `tokentrail prune --before DATE` removes the raw usage records of old days, and every figure of a pull
request stays what it was.

- **Totals survive.** Before a record is removed, the PR it counts on gets its figures carried: `usage_pruned`
  holds them summed per model, actor, source, push interval and review phase (the same groups as the `pull_spend`
  rollup, split once more by review phase), `usage_pruned_sessions` the PR's sessions. Every reading of a PR's spend
  (app.counted_spend: the rollup rewrite, the raw reads, the review phases) adds these rows to its remaining
  records, so the summary, the comment and the budget verdict give the same figures after pruning, also after a
  re-match or a new push (a later push or review comes after the pruned records, so their interval and phase,
  found again from each group's first call, do not move).
- **Dedupe survives.** The key (owner, source, record_id) of every pruned record stays in `usage_keys`, and the
  ids of its call stay in `usage_calls`: the same record or the same call sent again is answered as a duplicate
  and cannot come back (app.store).
- **What is gone.** Records of pruned days can no longer be matched again to another PR, and their unmatched usage
  (and the usage matched to no PR) is gone from the per-branch and per-period views, which read raw records; the
  daily rollup keeps the days' totals. A record still waiting for matching is pruned like any other: prune days
  well behind the present.
- **Server-wide.** Prune is an operator's command for the whole database, by date: it removes every owner's
  records of those days alike, so no owner's data is kept or dropped at another's request.

On PostgreSQL `usage` is partitioned by month (app.partitions): prune drops whole months before DATE (a date that
is not the first of a month prunes only the whole months before it, and says so), carrying and detaching each in
one transaction. Rows in the DEFAULT partition (far-past or far-future times) and SQLite's records are deleted
in batches of `BATCH` rows, one transaction each, so writers wait at most one batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from app import partitions
from app.counted_spend import GROUPED, TOKEN_NAMES

BATCH = 10_000

_COUNTED = "u.pr_repo IS NOT NULL AND u.pr_number IS NOT NULL AND u.pr_private = :false"
_FIGURES = ", ".join(("records", "unpriced", "cost_nanousd", *TOKEN_NAMES))
# One group per PR, grouping columns, push interval and review phase; the interval (and phase) of a record is the
# number of the PR's pushes (reviews) strictly before it, as in app.pull_rollup.
_CARRY = f"""
INSERT INTO usage_pruned (repo, number, {", ".join(GROUPED)}, first_at, {_FIGURES})
SELECT pr_repo, pr_number, {", ".join(GROUPED)}, MIN("timestamp"), COUNT(*),
       SUM(CASE WHEN cost_nanousd IS NULL THEN 1 ELSE 0 END), COALESCE(SUM(cost_nanousd), 0),
       {", ".join(f"COALESCE(SUM({name}), 0)" for name in TOKEN_NAMES)}
FROM (SELECT u.*,
             (SELECT COUNT(*) FROM pushes p WHERE p.repo = u.pr_repo AND p.number = u.pr_number
              AND p.pushed_at < u."timestamp") AS push_interval,
             (SELECT COUNT(*) FROM reviews r WHERE r.repo = u.pr_repo AND r.number = u.pr_number
              AND r.submitted_at < u."timestamp") AS review_phase
      FROM {{table}} u WHERE {{scope}} AND {_COUNTED}) counted
GROUP BY pr_repo, pr_number, {", ".join(GROUPED)}, push_interval, review_phase
"""
_SESSIONS = f"""
INSERT INTO usage_pruned_sessions (repo, number, session_id)
SELECT DISTINCT u.pr_repo, u.pr_number, u.session_id FROM {{table}} u
WHERE {{scope}} AND {_COUNTED} AND u.session_id IS NOT NULL
ON CONFLICT DO NOTHING
"""
_KEYS = """
INSERT INTO usage_keys (owner, source, record_id, usage_pk, "timestamp")
SELECT u.owner, u.source, u.record_id, u.pk, u."timestamp" FROM {table} u WHERE {scope}
ON CONFLICT DO NOTHING
"""
# Batches carry the same group several times: one row per group again, keyed as a carry is (a group's interval and
# phase are those of its first call).
_COMPACT = f"""
INSERT INTO usage_pruned (repo, number, {", ".join(GROUPED)}, first_at, {_FIGURES})
SELECT repo, number, {", ".join(GROUPED)}, MIN(first_at), {", ".join(f"SUM({name})" for name in _FIGURES.split(", "))}
FROM (SELECT c.*,
             (SELECT COUNT(*) FROM pushes p WHERE p.repo = c.repo AND p.number = c.number
              AND p.pushed_at < c.first_at) AS push_interval,
             (SELECT COUNT(*) FROM reviews r WHERE r.repo = c.repo AND r.number = c.number
              AND r.submitted_at < c.first_at) AS review_phase
      FROM usage_pruned c WHERE c.id <= :last) carried
GROUP BY repo, number, {", ".join(GROUPED)}, push_interval, review_phase
"""
_PULLS = f"SELECT DISTINCT u.pr_repo, u.pr_number FROM {{table}} u WHERE {{scope}} AND {_COUNTED}"
_BATCH_SCOPE = 'u."timestamp" < :cutoff AND u.pk <= :last'


@dataclass(slots=True)
class Pruned:
    """What a prune removed (or, dry, would remove)."""

    cutoff: datetime
    records: int = 0
    pulls: set[tuple[str, int]] = field(default_factory=set)  # PRs whose figures were carried
    months: list[str] = field(default_factory=list)  # monthly partitions dropped (PostgreSQL)


def cutoff_of(before: date, *, dialect: str) -> datetime:
    """Where pruning stops: midnight UTC of `before` on SQLite; on PostgreSQL the first of its month (whole
    partitions only)."""
    if dialect == "postgresql":
        before = before.replace(day=1)
    return datetime(before.year, before.month, before.day, tzinfo=UTC)


def _params(cutoff: datetime, **more: object) -> dict[str, object]:
    return {"cutoff": cutoff, "false": False, **more}


def _carry(connection: Connection, *, table: str, scope: str, params: dict[str, object], pruned: Pruned) -> None:
    """Carry the figures, sessions and keys of the records `scope` selects in `table` (the caller deletes them)."""
    pruned.pulls.update((repo, number) for repo, number in connection.execute(_text(_PULLS, table, scope), params))
    for statement in (_CARRY, _SESSIONS, _KEYS):
        connection.execute(_text(statement, table, scope), params)


def _survey(connection: Connection, *, table: str, scope: str, params: dict[str, object], pruned: Pruned) -> None:
    """A dry run's carry: which PRs would have figures carried."""
    pruned.pulls.update((repo, number) for repo, number in connection.execute(_text(_PULLS, table, scope), params))


def _text(statement: str, table: str, scope: str) -> sa.TextClause:
    # The bound time is typed, so SQLite compares it in the text form it stores times in.
    clause = sa.text(statement.format(table=table, scope=scope))
    if ":cutoff" not in clause.text:
        return clause
    return clause.bindparams(sa.bindparam("cutoff", type_=sa.DateTime(timezone=True)))


def _prune_batches(engine: Engine, pruned: Pruned, *, dry_run: bool, batch: int) -> None:
    """Delete the records before the cutoff, `batch` at a time (lowest pk first), each batch carried and deleted in
    one short transaction: in `usage` on SQLite, in the DEFAULT partition on PostgreSQL (what is left before the
    cutoff once its months are dropped)."""
    table = partitions.DEFAULT if engine.dialect.name == "postgresql" else "usage"
    find = _text(f'SELECT u.pk FROM {table} u WHERE u."timestamp" < :cutoff ORDER BY u.pk LIMIT :n', "", "")
    delete = _text(f'DELETE FROM {table} WHERE "timestamp" < :cutoff AND pk <= :last', "", "")
    if dry_run:
        with engine.connect() as connection:
            scope, params = 'u."timestamp" < :cutoff', _params(pruned.cutoff)
            count = _text(f"SELECT COUNT(*) FROM {table} u WHERE {scope}", "", "")
            pruned.records += int(connection.execute(count, params).scalar_one())
            _survey(connection, table=table, scope=scope, params=params, pruned=pruned)
        return
    while True:
        with engine.begin() as connection:
            if table == partitions.DEFAULT:
                # Writers wait for this batch, so no row can arrive between its carry and its delete. (On SQLite
                # the carry, the first write, takes the one write lock for the rest of the transaction.)
                connection.execute(sa.text(f"LOCK TABLE {table} IN SHARE MODE"))
            pks = [pk for (pk,) in connection.execute(find, {"cutoff": pruned.cutoff, "n": batch})]
            if not pks:
                return
            params = _params(pruned.cutoff, last=pks[-1])
            _carry(connection, table=table, scope=_BATCH_SCOPE, params=params, pruned=pruned)
            pruned.records += int(connection.execute(delete, params).rowcount)


def _compact(engine: Engine) -> None:
    """Merge the carried rows of one group (app.counted_spend reads the sum either way: fewer rows, same figures)."""
    with engine.begin() as connection:
        last = connection.execute(sa.text("SELECT MAX(id) FROM usage_pruned")).scalar()
        if last is None:
            return
        connection.execute(sa.text(_COMPACT), {"last": last})
        connection.execute(sa.text("DELETE FROM usage_pruned WHERE id <= :last"), {"last": last})


def prune(engine: Engine, before: date, *, dry_run: bool = False, batch: int = BATCH) -> Pruned:
    """Remove the usage records before `before` (see the module's text for what is kept)."""
    pruned = Pruned(cutoff=cutoff_of(before, dialect=engine.dialect.name))
    if engine.dialect.name == "postgresql":
        carry = _survey if dry_run else _carry
        partitions.drop_before(engine, pruned, dry_run=dry_run, carry=carry, params=_params(pruned.cutoff))
    _prune_batches(engine, pruned, dry_run=dry_run, batch=batch)
    if pruned.records and not dry_run:
        _compact(engine)
    return pruned
