"""A scope's counted usage over a period, as cells of the daily rollup (app.daily_rollup): what the org and
repository pages and `/report` sum, instead of aggregating every record of the window.

The whole UTC days of the period come from `usage_days`; the hours at either end of a period that does not start
or end at midnight (the default period ends now) come from the records, grouped the same way, so the cells hold
exactly what the records of the period hold. The scope is the books' rule (app.books.usage_scope) on the rollup's
columns: a repository's PRs' usage plus its own usage that counts on none of them, an owner's over its
repositories. Shell (SQLAlchemy Core).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.books import as_date, usage_day, usage_scope, usd
from app.daily_rollup import SPLIT, SUMMED
from app.db import as_utc, chunks
from app.exact_sum import exact_sum
from app.outcome_report import Period, Scope, Spend
from app.tables import PULLS, USAGE, USAGE_DAYS

D = USAGE_DAYS.c


@dataclass(frozen=True, slots=True)
class Cell:
    """Counted usage of one day, repository, PR (or none), model, agent, and for unmatched usage actor and
    branch."""

    day: date
    repo: str
    pr_repo: str | None
    pr_number: int | None
    pr_private: bool
    model: str
    provider: str | None
    agent: str | None
    actor: str | None
    branch: str | None
    last_at: datetime
    records: int
    unpriced: int
    cost: int  # nano-dollars
    input: int
    cache_read: int
    cache_write: int
    output: int

    @property
    def spend(self) -> Spend:
        return Spend(usd(self.cost), self.records, self.unpriced)

    @property
    def pull(self) -> tuple[str, int] | None:
        return None if self.pr_repo is None or self.pr_number is None else (self.pr_repo, self.pr_number)


def _owner_pull_repos(owner: str) -> Any:
    return sa.select(PULLS.c.repo).where(PULLS.c.repo.startswith(owner + "/", autoescape=True)).distinct()


def rollup_scope(scope: Scope) -> Any:
    """`books.usage_scope` on the rollup (which holds counted records only)."""
    private = D.pr_private.is_(True)
    own = sa.or_(D.pr_number.is_(None), private)
    if scope.repo is not None:
        return sa.or_(sa.and_(D.pr_repo == scope.repo, ~private), sa.and_(D.repo == scope.repo, own))
    return sa.or_(
        sa.and_(D.pr_repo.in_(_owner_pull_repos(scope.owner)), ~private), sa.and_(D.owner == scope.owner, own)
    )


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


def whole_days(period: Period) -> tuple[date, date]:
    """[first, end) of the UTC days the period covers whole (first == end: none)."""
    since, until = as_utc(period.since), as_utc(period.until)
    first = since.date() if since == _midnight(since.date()) else since.date() + timedelta(days=1)
    end = until.date()
    return first, max(first, end)


def _rolled(session: Session, where: Any) -> list[Cell]:
    columns = [D.day, D.repo, D.pr_repo, D.pr_number, D.pr_private, D.model, D.provider, D.agent, D.actor]
    figures = [D[f"{name}_{part}"] for name, _ in SUMMED for part in ("hi", "lo")]
    rows = session.execute(sa.select(*columns, D.branch, D.last_at, D.records, D.unpriced, *figures).where(where))
    cells = []
    for row in rows:
        sums = [int(row[13 + 2 * i]) * SPLIT + int(row[14 + 2 * i]) for i in range(len(SUMMED))]
        cells.append(
            Cell(as_date(row[0]), *row[1:4], bool(row[4]), *row[5:10], as_utc(row[10]), int(row[11]), int(row.unpriced),
                 *sums)
        )  # fmt: skip
    return cells


def _raw(session: Session, scope: Scope, since: datetime, until: datetime) -> list[Cell]:
    """The records of [since, until) grouped as the rollup groups them (the ends of a period)."""
    unmatched = USAGE.c.pr_number.is_(None)
    day = usage_day(session)
    actor = sa.case((unmatched, USAGE.c.actor), else_=None)
    branch = sa.case((unmatched, USAGE.c.branch), else_=None)
    keys = [day, USAGE.c.repo, USAGE.c.pr_repo, USAGE.c.pr_number, USAGE.c.pr_private, USAGE.c.model,
            USAGE.c.provider, USAGE.c.agent, actor, branch]  # fmt: skip
    inner = (
        sa.select(*(key.label(f"k{i}") for i, key in enumerate(keys)), USAGE.c.timestamp, USAGE.c.cost_nanousd,
                  *(USAGE.c[column] for _, column in SUMMED))
        .where(usage_scope(scope), USAGE.c.timestamp >= since, USAGE.c.timestamp < until)
        .subquery()
    )  # fmt: skip
    grouped = [inner.c[f"k{i}"] for i in range(len(keys))]
    query = sa.select(
        *grouped,
        sa.func.max(inner.c.timestamp),
        sa.func.count(),
        sa.func.count().filter(inner.c.cost_nanousd.is_(None)),
        *(sa.func.coalesce(exact_sum(inner.c[column]), 0) for _, column in SUMMED),
    ).group_by(*grouped)
    return [
        Cell(as_date(row[0]), *row[1:4], bool(row[4]), *row[5:10], as_utc(row[10]), *(int(v) for v in row[11:]))
        for row in session.execute(query)
    ]


def window_cells(session: Session, *, scope: Scope, period: Period) -> list[Cell]:
    """The scope's counted usage in the period, as rollup cells (whole days) and record groups (the ends)."""
    first, end = whole_days(period)
    since, until = as_utc(period.since), as_utc(period.until)
    if first == end:
        return _raw(session, scope, since, until)
    cells = _rolled(session, sa.and_(rollup_scope(scope), D.day >= first, D.day < end))
    if since < _midnight(first):
        cells += _raw(session, scope, since, _midnight(first))
    if _midnight(end) < until:
        cells += _raw(session, scope, _midnight(end), until)
    return cells


def latest_counted(session: Session, scope: Scope, *, before: datetime) -> datetime | None:
    """The scope's latest counted record before `before`, from the rollup; None when it holds none. Raises
    LookupError when the latest day holds records at or after `before` (the caller asks the records)."""
    last = session.execute(
        sa.select(sa.func.max(D.last_at)).where(rollup_scope(scope), D.day <= as_utc(before).date())
    ).scalar_one()
    if last is None:
        return None
    if as_utc(last) >= before:
        raise LookupError("records at or after the bound on its day")
    return as_utc(last)


def pull_facts(session: Session, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], Any]:
    """The rows of these PRs (those known), by (repo, number)."""
    numbers: dict[str, set[int]] = {}
    for repo, number in keys:
        numbers.setdefault(repo, set()).add(number)
    found: dict[tuple[str, int], Any] = {}
    for repo, wanted in numbers.items():
        for chunk in chunks(sorted(wanted)):
            query = sa.select(PULLS).where(PULLS.c.repo == repo, PULLS.c.number.in_(chunk))
            found.update(((row.repo, row.number), row) for row in session.execute(query))
    return found


def pull_lifetimes(session: Session, where: Any, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], Spend]:
    """All the spend (any day) of these PRs that `where` admits, from the rollup."""
    numbers: dict[str, set[int]] = {}
    for repo, number in keys:
        numbers.setdefault(repo, set()).add(number)
    totals: dict[tuple[str, int], Spend] = {}
    for repo, wanted in numbers.items():
        for chunk in chunks(sorted(wanted)):
            query = (
                sa.select(
                    D.pr_number,
                    sa.func.coalesce(exact_sum(D.records), 0),
                    sa.func.coalesce(exact_sum(D.unpriced), 0),
                    sa.func.coalesce(exact_sum(D.cost_hi), 0),
                    sa.func.coalesce(exact_sum(D.cost_lo), 0),
                )
                .where(where, D.pr_repo == repo, D.pr_number.in_(chunk))
                .group_by(D.pr_number)
            )
            for number, records, unpriced, high, low in session.execute(query):
                totals[(repo, number)] = Spend(usd(int(high) * SPLIT + int(low)), int(records), int(unpriced))
    return totals
