"""The rows of the CSV exports (issue 15): one per PR with spend in the period, and a monthly summary by
repository and agent for finance. Shell: two aggregate queries over the scope's books (`app.books`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.books import as_date, spend_columns, usage_day, usage_scope, usd, window
from app.csv_export import Cell
from app.db import as_utc
from app.exact_sum import exact_sum
from app.outcome_report import Period, Scope
from app.reverts import reverted_pulls
from app.tables import PULLS, USAGE

TOKEN_KINDS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")
PULL_HEADER = (
    "repo", "number", "title", "author", "outcome", "created_at", "closed_at", "cost_usd", "records",
    "unpriced_records", *TOKEN_KINDS, "changed_lines", "total_cost_usd", "cost_per_changed_line_usd",
    "review_rounds", "spend_in_review_rounds_usd", "reverted", "reverted_by",
)  # fmt: skip
MONTHLY_HEADER = ("month", "repo", "agent", "cost_usd", "records", "unpriced_records", *TOKEN_KINDS, "pull_requests")


def _tokens() -> list[Any]:
    return [sa.func.coalesce(exact_sum(USAGE.c[kind]), 0).label(kind) for kind in TOKEN_KINDS]


def _outcome(row: Any, reverted: bool) -> str:
    if row.merged:
        return "reverted" if reverted else "merged"
    return "closed" if row.state == "closed" else ("open" if row.state == "open" else "unknown")


def pull_rows(session: Session, *, scope: Scope, period: Period, people: bool = True) -> Iterator[Sequence[Cell]]:
    """`people=False` (dashboard.people: aggregate) leaves the author column empty."""
    spend = (
        sa.select(USAGE.c.pr_repo, USAGE.c.pr_number, *spend_columns(), *_tokens())
        .where(usage_scope(scope), window(period), USAGE.c.pr_number.is_not(None), USAGE.c.pr_private.is_(False))
        .group_by(USAGE.c.pr_repo, USAGE.c.pr_number)
        .subquery()
    )
    rows = session.execute(
        sa.select(spend, PULLS)
        .select_from(
            spend.outerjoin(PULLS, sa.and_(PULLS.c.repo == spend.c.pr_repo, PULLS.c.number == spend.c.pr_number))
        )
        .order_by(spend.c.pr_repo, spend.c.pr_number)
    ).all()
    reverted = reverted_pulls(session, repos={row.pr_repo for row in rows})
    for row in rows:
        by = reverted.get((row.pr_repo, row.pr_number))
        lines = int(row.additions or 0) + int(row.deletions or 0)
        total = usd(row.spend_nanousd)
        yield (
            row.pr_repo, row.pr_number, row.title or "", (row.author or "") if people else "",
            _outcome(row, by is not None),
            None if row.created_at is None else as_utc(row.created_at).isoformat(),
            None if row.closed_at is None else as_utc(row.closed_at).isoformat(),
            usd(row.cost), int(row.records), int(row.unpriced), *(int(getattr(row, kind)) for kind in TOKEN_KINDS),
            lines, total, (total / lines).quantize(Decimal("0.000001")) if lines else None,
            int(row.review_rounds or 0), usd(row.review_round_nanousd), by is not None,
            None if by is None else (f"#{by.number}" if by.number is not None else by.sha),
        )  # fmt: skip


def monthly_rows(session: Session, *, scope: Scope, period: Period) -> Iterator[Sequence[Cell]]:
    """Spend by calendar month (UTC), repository (the one whose books hold it) and agent."""
    day = usage_day(session)
    repo = sa.case((sa.and_(USAGE.c.pr_repo.is_not(None), USAGE.c.pr_private.is_(False)), USAGE.c.pr_repo),
                   else_=USAGE.c.repo)  # fmt: skip
    pull = sa.case((USAGE.c.pr_private.is_(False), USAGE.c.pr_number), else_=None)
    rows = session.execute(
        sa.select(day.label("day"), repo.label("books_repo"), USAGE.c.agent, *spend_columns(), *_tokens())
        .where(usage_scope(scope), window(period))
        .group_by(day, repo, USAGE.c.agent)
    ).all()
    months: dict[tuple[str, str, str], list[Any]] = {}
    for row in rows:
        key = (as_date(row.day).strftime("%Y-%m"), row.books_repo, row.agent or "")
        acc = months.setdefault(key, [Decimal(0), 0, 0, 0, 0, 0, 0, set()])
        acc[0] += usd(row.cost)
        acc[1] += int(row.records)
        acc[2] += int(row.unpriced)
        for index, kind in enumerate(TOKEN_KINDS):
            acc[3 + index] += int(getattr(row, kind))
    # distinct PRs per month, not per day: counted apart
    for (month, books_repo, agent), number in _month_pulls(session, scope, period, day, repo, pull):
        if (month, books_repo, agent) in months:
            months[(month, books_repo, agent)][7].add(number)
    for (month, books_repo, agent), acc in sorted(months.items()):
        yield (month, books_repo, agent or None, acc[0], *acc[1:7], len(acc[7]))


def _month_pulls(
    session: Session, scope: Scope, period: Period, day: Any, repo: Any, pull: Any
) -> Iterator[tuple[tuple[str, str, str], int]]:
    rows = session.execute(
        sa.select(day.label("day"), repo.label("books_repo"), USAGE.c.agent, pull.label("pr"))
        .where(usage_scope(scope), window(period), pull.is_not(None))
        .group_by(day, repo, USAGE.c.agent, pull)
    )
    for row in rows:
        yield (as_date(row.day).strftime("%Y-%m"), row.books_repo, row.agent or ""), int(row.pr)
