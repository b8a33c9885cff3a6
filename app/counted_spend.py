"""What counts on a pull request, as one set of rows: its counted records (one row each) and the totals that
`tokentrail prune` carried for its pruned records (`usage_pruned`, app.retention). Every figure of a PR (the rollup
rewrite, the raw reads, the review phases) aggregates these rows, so pruning raw records never changes them.

Shell (SQLAlchemy Core).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.exact_sum import exact_sum
from app.tables import PRUNED_SESSIONS, PRUNED_SPEND, USAGE

TOKEN_NAMES = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
GROUPED = ("model", "provider", "actor", "agent", "source", "also_seen_by")


def counted_usage(repo: str, number: int) -> Any:
    """The records a PR's figures hold: a record matched without its owner's consent to another owner's PR never
    counts on it (DESIGN §5)."""
    return sa.and_(USAGE.c.pr_repo == repo, USAGE.c.pr_number == number, USAGE.c.pr_private.is_(False))


def counted_rows(repo: str, number: int) -> sa.Subquery:
    """The PR's records and carried groups in one shape: the grouping columns, `at` (a record's time, a group's
    first), `records`, `unpriced`, `cost_nanousd` and the token counts."""
    u, p = USAGE.c, PRUNED_SPEND.c
    records = sa.select(
        *(u[name] for name in GROUPED),
        u.timestamp.label("at"),
        sa.literal(1, sa.BigInteger).label("records"),
        sa.case((u.cost_nanousd.is_(None), 1), else_=0).label("unpriced"),
        u.cost_nanousd,
        *(u[name] for name in TOKEN_NAMES),
    ).where(counted_usage(repo, number))
    carried = sa.select(
        *(p[name] for name in GROUPED),
        p.first_at.label("at"),
        p.records,
        p.unpriced,
        p.cost_nanousd,
        *(p[name] for name in TOKEN_NAMES),
    ).where(p.repo == repo, p.number == number)
    return sa.union_all(records, carried).subquery("counted")


def figure_columns(rows: Any) -> list[Any]:
    """records, unpriced, cost and the token counts of `rows` (a `counted_rows` subquery), exact past 2^63."""
    return [
        sa.func.coalesce(exact_sum(rows.c.records), 0).label("records"),
        sa.func.coalesce(exact_sum(rows.c.unpriced), 0).label("unpriced"),
        sa.func.coalesce(exact_sum(rows.c.cost_nanousd), 0).label("cost"),
        *(sa.func.coalesce(exact_sum(rows.c[name]), 0).label(name) for name in TOKEN_NAMES),
    ]


def counted_totals(session: Session, *, repo: str, number: int) -> Any:
    """The PR's totals: the figures, its distinct sessions (records' and pruned records') and agents."""
    rows = counted_rows(repo, number)
    total = session.execute(
        sa.select(*figure_columns(rows), sa.func.count(sa.distinct(rows.c.agent)).label("agents"))
    ).one()
    return total, pr_sessions(session, repo=repo, number=number)


def pr_sessions(session: Session, *, repo: str, number: int) -> int:
    """The PR's distinct sessions, counting those of its pruned records once."""
    ids = sa.union(
        sa.select(USAGE.c.session_id).where(counted_usage(repo, number), USAGE.c.session_id.is_not(None)),
        sa.select(PRUNED_SESSIONS.c.session_id).where(
            PRUNED_SESSIONS.c.repo == repo, PRUNED_SESSIONS.c.number == number
        ),
    ).subquery()
    return int(session.execute(sa.select(sa.func.count()).select_from(ids)).scalar_one())
