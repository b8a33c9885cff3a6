"""Cache efficiency in SQL (issue 15): the cache tokens of a PR or a scope summed by model and UTC day, for
`app.cache_savings` to price each group at its own model's price on its own day; and the per-session shares that
name a PR's sessions with a cache-read share far below its repository's. Shell (SQLAlchemy Core, portable).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.books import as_date, usage_day, usage_scope, usd, window
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
from app.db import as_utc
from app.exact_sum import exact_sum
from app.outcome_report import Period, Scope
from app.pricing import canonical_model
from app.pull_spend import counted_usage
from app.tables import USAGE

MEDIAN_DAYS = 90  # the repository's sessions of the 90 days up to the PR's latest call make the median


def _sum(column: Any) -> Any:
    return sa.func.coalesce(exact_sum(column), 0)


def cache_days(session: Session, where: Any) -> tuple[CacheDay, ...]:
    """The cache tokens of the records `where` selects, by (model, provider, UTC day): one row per group that read
    or wrote a cache, so a PR or a month costs a few dozen price lookups, each cached."""
    day = usage_day(session)
    rows = session.execute(
        sa.select(
            USAGE.c.model,
            USAGE.c.provider,
            day.label("day"),
            _sum(USAGE.c.cache_read_tokens).label("reads"),
            _sum(USAGE.c.cache_write_tokens).label("writes"),
        )
        .where(where, sa.or_(USAGE.c.cache_read_tokens > 0, USAGE.c.cache_write_tokens > 0))
        .group_by(USAGE.c.model, USAGE.c.provider, day)
    ).all()
    groups = (CacheDay(r.model, r.provider, as_date(r.day), int(r.reads), int(r.writes)) for r in rows)
    return tuple(sorted(groups, key=lambda g: (g.day, g.model, g.provider or "")))


@dataclass(frozen=True, slots=True)
class ScopeCache:
    """A repository's (or an owner's) cache efficiency over a period."""

    efficiency: CacheEfficiency
    share: Decimal | None  # cache reads over all input; None without input


def scope_cache(session: Session, *, scope: Scope, period: Period) -> ScopeCache:
    where = sa.and_(usage_scope(scope), window(period))
    tokens = session.execute(
        sa.select(
            _sum(USAGE.c.input_tokens).label("input"),
            _sum(USAGE.c.cache_read_tokens).label("reads"),
            _sum(USAGE.c.cache_write_tokens).label("writes"),
        ).where(where)
    ).one()
    return ScopeCache(
        efficiency=cache_efficiency(cache_days(session, where)),
        share=read_share(int(tokens.input), int(tokens.reads), int(tokens.writes)),
    )


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
