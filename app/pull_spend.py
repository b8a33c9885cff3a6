"""A pull request's spend, the four aggregates the summary shows (totals, by model, by actor and source, between
pushes), read two ways that always give the same answer (tests/test_pull_rollup.py proves it on both databases):

- `rolled_pull_spend` reads the PR's rollup rows (`pull_spend`, kept by app.pull_rollup): a few dozen rows
  whatever the PR's size, so the summary stays flat at millions of records;
- `raw_pull_spend` aggregates the PR's usage records over the (pr_repo, pr_number) index. It answers while the
  rollup does not describe the PR's current pushes (a push arrived, the refresh that rewrites the rollup has
  not run yet) and is the reference the rollup is tested against.

Shell (SQLAlchemy Core); `pull_spend_of` picks the way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.counted_spend import TOKEN_NAMES, counted_rows, counted_totals, counted_usage, figure_columns
from app.db import as_utc
from app.exact_sum import exact_sum
from app.money import from_nanousd
from app.report import ActorSpend, ModelSpend, Push, SourceSpend, SpendPoint, SpendTotals
from app.tables import PULL_SPEND, USAGE

__all__ = ["TOKEN_NAMES", "counted_usage"]  # names other modules read from here


@dataclass(frozen=True, slots=True)
class PullSpend:
    totals: SpendTotals
    by_model: tuple[ModelSpend, ...]
    by_actor: tuple[ActorSpend, ...]
    by_source: tuple[SourceSpend, ...]
    spend_points: tuple[SpendPoint, ...]


def _usd(nanousd: Any) -> Decimal:
    return from_nanousd(int(nanousd or 0)) or Decimal(0)


def push_digest(pushed_at: Iterable[Any]) -> str:
    """Names the push times a rollup was split by: equal digests, equal intervals."""
    moments = sorted(as_utc(moment) for moment in pushed_at)
    return hashlib.sha256(",".join(moment.isoformat() for moment in moments).encode()).hexdigest()


def push_interval(bounds: Sequence[Any], at: Any = USAGE.c.timestamp) -> Any:
    """How many of the (sorted) push times come before a record (`at`: its time): its interval between pushes."""
    if not bounds:
        return sa.literal(0)
    return sa.case(*((at <= bound, index) for index, bound in enumerate(bounds)), else_=len(bounds))


def _sources(rows: Iterable[Any]) -> tuple[SourceSpend, ...]:
    """Spend by the source that reported each call first, with how many of its calls other sources saw too."""
    spend: dict[str, tuple[int, Decimal]] = {}
    confirmed: dict[str, dict[str, int]] = {}
    for row in rows:
        records, cost = spend.get(row.source, (0, Decimal(0)))
        spend[row.source] = (records + int(row.records), cost + _usd(row.cost))
        for other in filter(None, (row.also_seen_by or "").split(",")):
            seen = confirmed.setdefault(row.source, {})
            seen[other] = seen.get(other, 0) + int(row.records)
    return tuple(
        SourceSpend(source, records, cost, tuple(sorted(confirmed.get(source, {}).items())))
        for source, (records, cost) in sorted(spend.items())
    )


# -- from the rollup ---------------------------------------------------------------------------------------------------


_FIGURES = ("records", "unpriced", "cost_nanousd", *TOKEN_NAMES)
_INDEXES = tuple(list(PULL_SPEND.c.keys()).index(name) for name in _FIGURES)


class _Sum:
    """Sums of a group of rollup rows: the figures in `_FIGURES` order, and the earliest call."""

    __slots__ = ("first", "values")

    def __init__(self) -> None:
        self.values = [0] * len(_FIGURES)
        self.first: Any = None

    def add(self, values: tuple[int, ...], first: Any) -> None:
        self.values = [total + value for total, value in zip(self.values, values, strict=True)]
        self.first = first if self.first is None else min(self.first, first)

    def __getattr__(self, name: str) -> int:
        return self.values[_FIGURES.index("cost_nanousd" if name == "cost" else name)]


def _group(rows: Sequence[tuple[Any, tuple[int, ...], Any]], key: Any) -> dict[Any, _Sum]:
    sums: dict[Any, _Sum] = {}
    for row, values, first in rows:
        sums.setdefault(key(row), _Sum()).add(values, first)
    return dict(sorted(sums.items(), key=lambda item: repr(item[0])))


def rollup_rows(session: Session, *, repo: str, number: int) -> list[Any]:
    """The PR's rollup rows (one indexed read)."""
    return list(session.execute(sa.select(PULL_SPEND).where(PULL_SPEND.c.repo == repo, PULL_SPEND.c.number == number)))


def rolled_pull_spend(found: Sequence[Any]) -> PullSpend:
    """The four aggregates from a PR's rollup rows."""
    rows = [(row, tuple(int(row[i]) for i in _INDEXES), as_utc(row.first_at)) for row in found]
    total = _Sum()
    for _, values, first in rows:
        total.add(values, first)
    models = _group(rows, lambda row: (row.model, row.provider))
    actors = _group(rows, lambda row: (row.actor, row.agent))
    sources = _group(rows, lambda row: (row.source, row.also_seen_by))
    intervals = _group(rows, lambda row: row.push_interval)
    return PullSpend(
        totals=SpendTotals(
            records=total.records,
            unpriced_records=total.unpriced,
            cost_usd=_usd(total.cost),
            input_tokens=total.input_tokens,
            cache_read_tokens=total.cache_read_tokens,
            cache_write_tokens=total.cache_write_tokens,
            output_tokens=total.output_tokens,
            reasoning_tokens=total.reasoning_tokens,
            sessions=int(found[0].pr_sessions) if found else 0,
            agents=len({row.agent for row, _, _ in rows if row.agent is not None}),
        ),
        by_model=tuple(
            ModelSpend(
                model,
                provider,
                s.records,
                s.unpriced,
                _usd(s.cost),
                s.input_tokens,
                s.cache_read_tokens,
                s.cache_write_tokens,
                s.output_tokens,
            )
            for (model, provider), s in models.items()
        ),
        by_actor=tuple(ActorSpend(actor, agent, s.records, _usd(s.cost)) for (actor, agent), s in actors.items()),
        by_source=_sources(
            _Row(source=source, also_seen_by=seen, records=s.records, cost=s.cost)
            for (source, seen), s in sources.items()
        ),
        spend_points=tuple(
            sorted(
                (SpendPoint(timestamp=s.first, cost_usd=_usd(s.cost), records=s.records) for s in intervals.values()),
                key=lambda point: point.timestamp,
            )
        ),
    )


@dataclass(frozen=True, slots=True)
class _Row:
    source: str
    also_seen_by: str | None
    records: int
    cost: int


# -- from the records --------------------------------------------------------------------------------------------------


def raw_pull_spend(session: Session, *, repo: str, number: int, pushes: Sequence[Push]) -> PullSpend:
    """The four aggregates straight from the PR's usage records (and what pruning carried for it)."""
    rows = counted_rows(repo, number)
    total, sessions = counted_totals(session, repo=repo, number=number)
    by_model = session.execute(
        sa.select(rows.c.model, rows.c.provider, *figure_columns(rows))
        .group_by(rows.c.model, rows.c.provider)
        .order_by(rows.c.model, rows.c.provider)
    ).all()
    by_actor = session.execute(
        sa.select(rows.c.actor, rows.c.agent, *figure_columns(rows))
        .group_by(rows.c.actor, rows.c.agent)
        .order_by(rows.c.actor, rows.c.agent)
    ).all()
    by_source = session.execute(
        sa.select(rows.c.source, rows.c.also_seen_by, *figure_columns(rows)).group_by(
            rows.c.source, rows.c.also_seen_by
        )
    ).all()
    return PullSpend(
        totals=SpendTotals(
            records=int(total.records),
            unpriced_records=int(total.unpriced),
            cost_usd=_usd(total.cost),
            input_tokens=int(total.input_tokens),
            cache_read_tokens=int(total.cache_read_tokens),
            cache_write_tokens=int(total.cache_write_tokens),
            output_tokens=int(total.output_tokens),
            reasoning_tokens=int(total.reasoning_tokens),
            sessions=sessions,
            agents=int(total.agents),
        ),
        by_model=tuple(
            ModelSpend(
                row.model,
                row.provider,
                int(row.records),
                int(row.unpriced),
                _usd(row.cost),
                int(row.input_tokens),
                int(row.cache_read_tokens),
                int(row.cache_write_tokens),
                int(row.output_tokens),
            )
            for row in by_model
        ),
        by_actor=tuple(ActorSpend(row.actor, row.agent, int(row.records), _usd(row.cost)) for row in by_actor),
        by_source=_sources(by_source),
        spend_points=_spend_points(session, rows, pushes),
    )


def _spend_points(session: Session, rows: Any, pushes: Sequence[Push]) -> tuple[SpendPoint, ...]:
    """Spend grouped by push interval in SQL: one point per interval, at the interval's first record. (A subquery
    names the interval: PostgreSQL would not see two renderings of the bound CASE as one GROUP BY expression.)"""
    bucketed = sa.select(
        push_interval(sorted(p.pushed_at for p in pushes), rows.c.at).label("bucket"),
        rows.c.at,
        rows.c.records,
        rows.c.cost_nanousd,
    ).subquery()
    found = session.execute(
        sa.select(
            sa.func.min(bucketed.c.at).label("first"),
            sa.func.coalesce(exact_sum(bucketed.c.records), 0).label("records"),
            sa.func.coalesce(exact_sum(bucketed.c.cost_nanousd), 0).label("cost"),
        ).group_by(bucketed.c.bucket)
    ).all()
    points = (
        SpendPoint(timestamp=as_utc(row.first), cost_usd=_usd(row.cost), records=int(row.records)) for row in found
    )
    return tuple(sorted(points, key=lambda point: point.timestamp))


def pull_spend_of(session: Session, pull: Any, pushes: Sequence[Push]) -> PullSpend:
    """The PR's spend from its rollup when the rollup was split by the PR's current pushes, else from the records
    (a PR without rollup rows has no counted records, so that costs one empty index probe)."""
    rows = rollup_rows(session, repo=pull.repo, number=pull.number)
    if rows and rows[0].pushes_digest == push_digest(p.pushed_at for p in pushes):
        return rolled_pull_spend(rows)
    return raw_pull_spend(session, repo=pull.repo, number=pull.number, pushes=pushes)
