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
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import ORMExecuteState, Session

from app.books import as_date, usage_day, usage_scope, usd
from app.daily_rollup import SPLIT, SUMMED
from app.db import as_utc, chunks
from app.exact_sum import exact_sum
from app.outcome_report import Period, Scope, Spend
from app.tables import PULLS, USAGE, USAGE_DAYS

D = USAGE_DAYS.c


class Cell(NamedTuple):
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
    latest: Any  # the latest record's time as the database returns it: `last_at` reads it
    records: int
    unpriced: int
    cost: int  # nano-dollars
    input: int
    cache_read: int
    cache_write: int
    output: int

    @property
    def last_at(self) -> datetime:
        return _as_time(self.latest)

    @property
    def spend(self) -> Spend:
        return Spend(usd(self.cost), self.records, self.unpriced)

    @property
    def pull(self) -> tuple[str, int] | None:
        return None if self.pr_repo is None or self.pr_number is None else (self.pr_repo, self.pr_number)


def _as_time(value: Any) -> datetime:
    return as_utc(value if isinstance(value, datetime) else datetime.fromisoformat(str(value)))


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
    """The rollup rows `where` admits. The day and time come as the database holds them (no conversion per row: a
    page reads tens of thousands of cells); days are read once each."""
    raw_day = sa.type_coerce(D.day, sa.String) if session.get_bind().dialect.name == "sqlite" else D.day
    raw_last = sa.type_coerce(D.last_at, sa.String) if session.get_bind().dialect.name == "sqlite" else D.last_at
    figures = [D[f"{name}_{part}"] for name, _ in SUMMED for part in ("hi", "lo")]
    query = sa.select(
        raw_day, D.repo, D.pr_repo, D.pr_number, D.pr_private, D.model, D.provider, D.agent, D.actor, D.branch,
        raw_last, D.records, D.unpriced, *figures,
    ).where(where)  # fmt: skip
    days: dict[Any, date] = {}
    cells = []
    for row in session.execute(query):
        day = days.get(row[0])
        if day is None:
            day = days[row[0]] = as_date(row[0])
        cells.append(
            Cell(day, row[1], row[2], row[3], bool(row[4]), row[5], row[6], row[7], row[8], row[9], row[10], row[11],
                 row[12], row[13] * SPLIT + row[14], row[15] * SPLIT + row[16], row[17] * SPLIT + row[18],
                 row[19] * SPLIT + row[20], row[21] * SPLIT + row[22])
        )  # fmt: skip
    return cells


def _raw(session: Session, scope: Scope, since: datetime, until: datetime) -> list[Cell]:
    """The records of [since, until) grouped as the rollup groups them (the ends of a period). The rollup names the
    repositories whose records the scope counted on those days: the records are read through the (repo, timestamp)
    index of those alone, not through the scope's OR'd conditions over every record."""
    days = sa.and_(D.day >= since.date(), D.day <= (until - timedelta(microseconds=1)).date())
    repos = sa.select(D.repo).where(rollup_scope(scope), days).distinct()
    unmatched = USAGE.c.pr_number.is_(None)
    day = usage_day(session)
    actor = sa.case((unmatched, USAGE.c.actor), else_=None)
    branch = sa.case((unmatched, USAGE.c.branch), else_=None)
    keys = [day, USAGE.c.repo, USAGE.c.pr_repo, USAGE.c.pr_number, USAGE.c.pr_private, USAGE.c.model,
            USAGE.c.provider, USAGE.c.agent, actor, branch]  # fmt: skip
    inner = (
        sa.select(*(key.label(f"k{i}") for i, key in enumerate(keys)), USAGE.c.timestamp, USAGE.c.cost_nanousd,
                  *(USAGE.c[column] for _, column in SUMMED))
        .where(USAGE.c.repo.in_(repos), USAGE.c.timestamp >= since, USAGE.c.timestamp < until, usage_scope(scope))
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
        Cell(as_date(row[0]), *row[1:4], bool(row[4]), *row[5:10], row[10], *(int(v) for v in row[11:]))
        for row in session.execute(query)
    ]


def window_cells(session: Session, *, scope: Scope, period: Period) -> list[Cell]:
    """The scope's counted usage in the period, as rollup cells (whole days) and record groups (the ends). A page
    reads them for several sections: they are kept on the session until it next writes or its transaction ends."""
    cells: list[Cell] = _kept(session, ("window_cells", scope, period), lambda: _window_cells(session, scope, period))
    return cells


PullGroup = tuple[str | None, str | None, str, str, int, bool]  # agent, provider, model, PR repo and number, private


def pull_groups(session: Session, *, scope: Scope, period: Period) -> dict[PullGroup, list[int]]:
    """The period's usage on PRs per agent, model spelling, PR and consent (pr_private): [cost, records, unpriced,
    input, cache read, cache write tokens]. What the PR list, the routing table and people's outcomes fold; kept on
    the session like the cells."""

    def fold() -> dict[PullGroup, list[int]]:
        groups: dict[PullGroup, list[int]] = {}
        for cell in window_cells(session, scope=scope, period=period):
            if cell.pr_repo is None or cell.pr_number is None:
                continue
            key = (cell.agent, cell.provider, cell.model, cell.pr_repo, cell.pr_number, cell.pr_private)
            acc = groups.get(key)
            if acc is None:
                groups[key] = [cell.cost, cell.records, cell.unpriced, cell.input, cell.cache_read, cell.cache_write]
            else:
                acc[0] += cell.cost
                acc[1] += cell.records
                acc[2] += cell.unpriced
                acc[3] += cell.input
                acc[4] += cell.cache_read
                acc[5] += cell.cache_write
        return groups

    groups: dict[PullGroup, list[int]] = _kept(session, ("pull_groups", scope, period), fold)
    return groups


def _kept(session: Session, key: tuple[Any, ...], compute: Any) -> Any:
    if key not in session.info:
        session.info[key] = compute()
        session.info.setdefault(_CACHED, set()).add(key)
    return session.info[key]


_CACHED = "window_cells_keys"


def _forget(session: Session) -> None:
    for key in session.info.pop(_CACHED, ()):
        session.info.pop(key, None)


@sa.event.listens_for(Session, "do_orm_execute")
def _forget_on_write(state: ORMExecuteState) -> None:
    if not state.is_select:
        _forget(state.session)


@sa.event.listens_for(Session, "after_transaction_end")
def _forget_at_end(session: Session, transaction: Any) -> None:
    _forget(session)


def _window_cells(session: Session, scope: Scope, period: Period) -> list[Cell]:
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


_FACTS = ("repo", "number", "title", "author", "state", "merged", "additions", "deletions", "html_url")


def pull_facts(session: Session, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], Any]:
    """The facts of these PRs (those known), by (repo, number); kept on the session like the cells."""
    known: dict[tuple[str, int], Any] = session.info.setdefault(_PULLS, {})
    session.info.setdefault(_CACHED, set()).add(_PULLS)
    keys = list(keys)
    numbers: dict[str, set[int]] = {}
    for repo, number in keys:
        if (repo, number) not in known:
            numbers.setdefault(repo, set()).add(number)
    for repo, wanted in numbers.items():
        for chunk in chunks(sorted(wanted)):
            query = sa.select(*(PULLS.c[name] for name in _FACTS)).where(
                PULLS.c.repo == repo, PULLS.c.number.in_(chunk)
            )
            known.update(((row.repo, row.number), row) for row in session.execute(query))
            known.update(((repo, number), None) for number in chunk if (repo, number) not in known)
    return {key: known[key] for key in keys if known[key] is not None}


_PULLS = "pull_facts"


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
