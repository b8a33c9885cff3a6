"""Keeping the per-PR rollup (`pull_spend` rows).

A PR's figures change only when a record lands on it or leaves it, or a record on it is re-examined after it grew
or gained attribution: every one of those passes through matching (app.rematch), which rewrites the rollup of each
PR it touched in the same transaction as its answers. A new push changes only the split between pushes: the
refresh it queues (app.worker) rewrites the rollup, and until then the digest no longer matches the PR's pushes, so
reads aggregate the records instead (app.pull_spend). Each rewrite is one GROUP BY over the PR's records, once
per change instead of once per read. Only `pull_spend` is written, never `pull_requests`: a refresh holds the PR's
row lock while it waits for the repository's matching lock, so matching must not wait for that row (PostgreSQL).

`rebuild_all` fills every PR's rollup in a few set-based statements (migration 0014, bench/history.py) from the
records alone: it is for histories that were never pruned (`refresh_pull_spend` adds what pruning carried).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.counted_spend import GROUPED, TOKEN_NAMES, counted_rows, counted_totals
from app.exact_sum import MAX_BIGINT
from app.pull_spend import push_digest, push_interval
from app.tables import PULL_SPEND, PUSHES

_FIGURES = ("first_at", "records", "unpriced", "cost_nanousd", *TOKEN_NAMES)
_COLUMNS = ("repo", "number", *GROUPED, "push_interval", "pr_sessions", "pushes_digest", *_FIGURES)


def refresh_pull_spend(session: Session, keys: Iterable[tuple[str, int]]) -> None:
    """Rewrite the rollup of these PRs from their records and current pushes (in the caller's transaction)."""
    ordered = sorted(set(keys))
    _lock_pulls(session, ordered)
    for repo, number in ordered:
        bounds = sorted(
            row.pushed_at
            for row in session.execute(
                sa.select(PUSHES.c.pushed_at).where(PUSHES.c.repo == repo, PUSHES.c.number == number)
            )
        )
        session.execute(sa.delete(PULL_SPEND).where(PULL_SPEND.c.repo == repo, PULL_SPEND.c.number == number))
        rows = counted_rows(repo, number)  # the PR's records and what pruning carried for it (app.retention)
        inner = sa.select(
            *(rows.c[name] for name in GROUPED),
            push_interval(bounds, rows.c.at).label("push_interval"),
            *(rows.c[name] for name in ("at", "records", "unpriced", "cost_nanousd", *TOKEN_NAMES)),
        ).subquery()
        keys_of = [inner.c[name] for name in (*GROUPED, "push_interval")]
        total, sessions = counted_totals(session, repo=repo, number=number)
        if any(int(getattr(total, name)) > MAX_BIGINT for name in ("cost", *TOKEN_NAMES)):
            continue  # past what a bigint holds (records at the limits): no rollup, reads sum the records exactly
        grouped = sa.select(
            sa.literal(repo, sa.String),
            sa.literal(number, sa.Integer),
            *keys_of,
            sa.literal(sessions, sa.Integer),
            sa.literal(push_digest(bounds), sa.String),
            sa.func.min(inner.c.at),
            sa.func.sum(inner.c.records),
            sa.func.sum(inner.c.unpriced),
            sa.func.coalesce(sa.func.sum(inner.c.cost_nanousd), 0),
            *(sa.func.coalesce(sa.func.sum(inner.c[name]), 0) for name in TOKEN_NAMES),
        ).group_by(*keys_of)
        session.execute(sa.insert(PULL_SPEND).from_select(list(_COLUMNS), grouped))


def _lock_pulls(session: Session, keys: list[tuple[str, int]]) -> None:
    """On PostgreSQL, one rewriter per PR at a time, until the transaction ends. Matching (the worker) and a second
    source's report of a call (ingest) may rewrite the same PR at once; without the lock, the one whose snapshot is
    older could delete the other's rows and write its older sums over them. Taken in sorted order, all before the
    first rewrite, and only after any matching lock, so two rewriters cannot deadlock; each statement after it sees
    what the previous holder committed (READ COMMITTED). SQLite has one writer at a time already."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for repo, number in keys:
        session.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"pull_spend:{repo}#{number}"}
        )


def refresh_if_stale(session: Session, *, repo: str, number: int) -> None:
    """Rewrite the PR's rollup when its pushes changed since it was last written (the refresh after a push). A PR
    without rollup rows has no counted records: nothing to split."""
    row = session.execute(
        sa.select(PULL_SPEND.c.pushes_digest).where(PULL_SPEND.c.repo == repo, PULL_SPEND.c.number == number).limit(1)
    ).first()
    if row is None:
        return
    pushes = session.execute(sa.select(PUSHES.c.pushed_at).where(PUSHES.c.repo == repo, PUSHES.c.number == number))
    if row.pushes_digest != push_digest(moment for (moment,) in pushes):
        refresh_pull_spend(session, [(repo, number)])


# PRs whose sums may pass a bigint (records at the limits): summed in floating point, which cannot overflow, with a
# margin; they get no rollup (reads sum their records exactly), as `refresh_pull_spend` decides for one PR.
_OVER = " OR ".join(f"SUM(CAST({name} AS DOUBLE PRECISION)) > 9.0e18" for name in ("cost_nanousd", *TOKEN_NAMES))
_HUGE = f"""
SELECT pr_repo, pr_number FROM usage WHERE pr_repo IS NOT NULL AND pr_number IS NOT NULL AND pr_private = :false
GROUP BY pr_repo, pr_number HAVING {_OVER}
"""

# Every PR at once. The interval is the number of the PR's pushes strictly before the record: the same number the
# CASE of `push_interval` gives (the first push at or after the record).
_REBUILD = f"""
INSERT INTO pull_spend ({", ".join(_COLUMNS)})
SELECT pr_repo, pr_number, {", ".join(GROUPED)}, push_interval, 0, '', MIN("timestamp"), COUNT(*),
       SUM(CASE WHEN cost_nanousd IS NULL THEN 1 ELSE 0 END), COALESCE(SUM(cost_nanousd), 0),
       {", ".join(f"COALESCE(SUM({name}), 0)" for name in TOKEN_NAMES)}
FROM (SELECT u.*, (SELECT COUNT(*) FROM pushes p WHERE p.repo = u.pr_repo AND p.number = u.pr_number
                   AND p.pushed_at < u."timestamp") AS push_interval
      FROM usage u WHERE u.pr_repo IS NOT NULL AND u.pr_number IS NOT NULL AND u.pr_private = :false
      AND NOT EXISTS (SELECT 1 FROM ({_HUGE}) huge WHERE huge.pr_repo = u.pr_repo AND huge.pr_number = u.pr_number)
     ) counted
GROUP BY pr_repo, pr_number, {", ".join(GROUPED)}, push_interval
"""
_SESSIONS = """
SELECT pr_repo, pr_number, COUNT(DISTINCT session_id) FROM usage
WHERE pr_repo IS NOT NULL AND pr_number IS NOT NULL AND pr_private = :false GROUP BY pr_repo, pr_number
"""


def rebuild_all(connection: sa.Connection) -> None:
    """Rewrite every PR's rollup (set-based: a migration's backfill, or a generated benchmark history)."""
    connection.execute(sa.text("DELETE FROM pull_spend"))
    connection.execute(sa.text(_REBUILD), {"false": False})
    sessions = {
        (repo, number): count for repo, number, count in connection.execute(sa.text(_SESSIONS), {"false": False})
    }
    pushes: dict[tuple[str, int], list[Any]] = defaultdict(list)
    for repo, number, moment in connection.execute(sa.select(PUSHES.c.repo, PUSHES.c.number, PUSHES.c.pushed_at)):
        pushes[(repo, number)].append(moment)
    huge = {(repo, number) for repo, number in connection.execute(sa.text(_HUGE), {"false": False})}
    values = [
        {"r": repo, "n": number, "s": int(count), "d": push_digest(pushes.get((repo, number), []))}
        for (repo, number), count in sessions.items()
        if (repo, number) not in huge
    ]
    if values:
        connection.execute(
            sa.text("UPDATE pull_spend SET pr_sessions = :s, pushes_digest = :d WHERE repo = :r AND number = :n"),
            values,
        )
