"""Cache efficiency in SQL (issue 15): the cache tokens of a PR or a scope summed by model and UTC day, for
`app.cache_savings` to price each group at its own model's price on its own day; and the per-session shares that
name a PR's sessions with a cache-read share far below its repository's. Shell (SQLAlchemy Core, portable).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.books import as_date, usage_scope, usd, window
from app.cache_savings import (
    MIN_SESSION_INPUT,
    CacheDay,
    CacheEfficiency,
    LowCacheSessions,
    SessionCache,
    cache_efficiency,
    low_cache_sessions,
    read_share,
)
from app.daily_books import Cell, window_cells
from app.daily_rollup import SPLIT
from app.db import as_utc
from app.exact_sum import exact_sum
from app.outcome_report import Period, Scope
from app.pricing import canonical_model
from app.pull_spend import counted_usage
from app.tables import USAGE, USAGE_DAYS

D = USAGE_DAYS.c

MEDIAN_DAYS = 90  # the repository's sessions of the 90 days up to the PR's latest call make the median


def _sum(column: Any) -> Any:
    return sa.func.coalesce(exact_sum(column), 0)


def _cache_day(cell: Cell) -> CacheDay:
    return CacheDay(cell.model, cell.provider, cell.day, cell.cache_read, cell.cache_write)


def _by_model_and_day(days: Iterable[CacheDay]) -> tuple[CacheDay, ...]:
    """One group per (model, provider, UTC day) that read or wrote a cache, so a PR or a month costs a few dozen
    price lookups, each cached."""
    groups: dict[tuple[str, str | None, date], list[int]] = {}
    for group in days:
        if group.cache_read_tokens or group.cache_write_tokens:
            acc = groups.setdefault((group.model, group.provider, group.day), [0, 0])
            acc[0] += group.cache_read_tokens
            acc[1] += group.cache_write_tokens
    ordered = sorted(groups.items(), key=lambda item: (item[0][2], item[0][0], item[0][1] or ""))
    return tuple(CacheDay(model, provider, day, reads, writes) for (model, provider, day), (reads, writes) in ordered)


def pull_cache_days(session: Session, repo: str, number: int) -> tuple[CacheDay, ...]:
    """A PR's cache tokens by model and day, from the daily rollup (its counted records: app.pull_spend's rule),
    not from every record of a heavy PR."""
    figures = [D[f"{name}_{part}"] for name in ("cache_read", "cache_write") for part in ("hi", "lo")]
    rows = session.execute(
        sa.select(D.model, D.provider, D.day, *figures).where(
            D.pr_repo == repo, D.pr_number == number, D.pr_private.is_(False)
        )
    ).all()
    return _by_model_and_day(
        CacheDay(row[0], row[1], as_date(row[2]), row[3] * SPLIT + row[4], row[5] * SPLIT + row[6]) for row in rows
    )


@dataclass(frozen=True, slots=True)
class ScopeCache:
    """A repository's (or an owner's) cache efficiency over a period."""

    efficiency: CacheEfficiency
    share: Decimal | None  # cache reads over all input; None without input


def scope_cache(session: Session, *, scope: Scope, period: Period) -> ScopeCache:
    """From the period's rollup cells, which the page's other sections read too."""
    cells = window_cells(session, scope=scope, period=period)
    totals = (sum(c.input for c in cells), sum(c.cache_read for c in cells), sum(c.cache_write for c in cells))
    return ScopeCache(efficiency=cache_efficiency(_by_model_and_day(map(_cache_day, cells))), share=read_share(*totals))


def _session_rows(session: Session, where: Any) -> list[Any]:
    return list(
        session.execute(
            sa.select(
                USAGE.c.session_id,
                USAGE.c.agent,
                USAGE.c.model,
                USAGE.c.provider,
                sa.func.count().label("records"),
                sa.func.count().filter(USAGE.c.cost_nanousd.is_(None)).label("unpriced"),
                _sum(USAGE.c.cost_nanousd).label("cost"),
                _sum(USAGE.c.input_tokens).label("input"),
                _sum(USAGE.c.cache_read_tokens).label("reads"),
                _sum(USAGE.c.cache_write_tokens).label("writes"),
            )
            .where(where, USAGE.c.session_id.is_not(None))
            .group_by(USAGE.c.session_id, USAGE.c.agent, USAGE.c.model, USAGE.c.provider)
        )
    )


def _ranked(costs: dict[str, Decimal]) -> tuple[str, ...]:
    return tuple(sorted(costs, key=lambda name: (-costs[name], name)))


def _sessions(rows: list[Any]) -> list[SessionCache]:
    """One `SessionCache` per session from its (agent, model) rows: agents and models costliest first."""
    grouped: dict[str, list[Any]] = {}
    for row in rows:
        grouped.setdefault(row.session_id, []).append(row)
    result = []
    for session_id, members in sorted(grouped.items()):
        agents: dict[str, Decimal] = {}
        models: dict[str, Decimal] = {}
        for row in members:
            if row.agent:
                agents[row.agent] = agents.get(row.agent, Decimal(0)) + usd(row.cost)
            name = canonical_model(row.provider, row.model)
            models[name] = models.get(name, Decimal(0)) + usd(row.cost)
        result.append(
            SessionCache(
                session_id=session_id,
                agents=_ranked(agents),
                models=_ranked(models),
                records=sum(int(r.records) for r in members),
                cost_usd=sum((usd(r.cost) for r in members), Decimal(0)),
                unpriced_records=sum(int(r.unpriced) for r in members),
                input_tokens=sum(int(r.input) for r in members),
                cache_read_tokens=sum(int(r.reads) for r in members),
                cache_write_tokens=sum(int(r.writes) for r in members),
            )
        )
    return result


def repo_session_shares(session: Session, *, repo: str, period: Period) -> list[Decimal]:
    """The cache-read share of each of the repository's sessions in the period with enough input to compare (the
    repository's books: its PRs' counted records and its own unmatched ones, app.books)."""
    where = sa.and_(usage_scope(Scope(owner=repo.split("/", 1)[0], repo=repo)), window(period))
    rows = session.execute(
        sa.select(_sum(USAGE.c.input_tokens).label("input"), _sum(USAGE.c.cache_read_tokens).label("reads"),
                  _sum(USAGE.c.cache_write_tokens).label("writes"))
        .where(where, USAGE.c.session_id.is_not(None))
        .group_by(USAGE.c.session_id)
    ).all()  # fmt: skip
    # Filtered here, not in HAVING: SQLite's exact sum is text, which compares above every number.
    totals = ((int(r.input), int(r.reads), int(r.writes)) for r in rows)
    return [read_share(*t) or Decimal(0) for t in totals if sum(t) >= MIN_SESSION_INPUT]


def pull_low_cache_sessions(session: Session, *, repo: str, number: int) -> LowCacheSessions:
    """The PR's sessions whose cache-read share is far below the median of the repository's sessions over the
    `MEDIAN_DAYS` days up to the PR's latest call (app.cache_savings says how far)."""
    where = counted_usage(repo, number)
    pr_sessions = _sessions(_session_rows(session, where))
    latest = session.execute(sa.select(sa.func.max(USAGE.c.timestamp)).where(where)).scalar_one()
    if latest is None or not pr_sessions:
        return low_cache_sessions((), ())
    until: datetime = as_utc(latest) + timedelta(microseconds=1)
    shares = repo_session_shares(session, repo=repo, period=Period(until - timedelta(days=MEDIAN_DAYS), until))
    return low_cache_sessions(pr_sessions, shares)
