"""The org and repository analytics as they were computed before the daily rollup: every figure aggregated from the
usage records of the period. The reference the rollup-based pages are compared with (tests/test_daily_rollup.py);
kept as it was, so that a difference shows in the figures, not in a shared helper.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.books import as_date, pull_scope, spend_columns, spend_of, usage_day, usage_scope, usd, window
from app.db import as_utc
from app.exact_sum import exact_sum
from app.outcome_report import (
    OUTCOMES,
    Analytics,
    BranchSpend,
    Bucket,
    MergedWeek,
    NamedSpend,
    Outcome,
    OutcomeSpend,
    Period,
    PullSpend,
    RepoSpend,
    Scope,
    Spend,
    monday,
)
from app.people import learned_logins, login_of
from app.pricing import canonical_model
from app.repo_config import parse_repo_config
from app.repo_state import default_branches
from app.reverts import reverted_pulls
from app.tables import PULLS, REPOSITORIES, USAGE

MAX_DAILY_BUCKETS = 92  # past ~3 months the chart shows weeks
TOP_PULLS = 20


def _buckets(session: Session, scope: Scope, period: Period) -> tuple[Literal["day", "week"], tuple[Bucket, ...]]:
    day = usage_day(session)
    rows = session.execute(
        sa.select(day.label("day"), USAGE.c.model, USAGE.c.provider, *spend_columns())
        .where(usage_scope(scope), window(period))
        .group_by(day, USAGE.c.model, USAGE.c.provider)
    ).all()
    kind: Literal["day", "week"] = "day" if period.days <= MAX_DAILY_BUCKETS else "week"
    start = period.since.date() if kind == "day" else monday(period.since.date())
    last = (period.until - timedelta(microseconds=1)).date()
    step = timedelta(days=1 if kind == "day" else 7)
    costs: dict[date, dict[str, Decimal]] = {}
    cursor = start
    while cursor <= last:
        costs[cursor] = {}
        cursor += step
    for row in rows:
        key = as_date(row.day) if kind == "day" else monday(as_date(row.day))
        models = costs.setdefault(key, {})
        model = canonical_model(row.provider, row.model)
        models[model] = models.get(model, Decimal(0)) + usd(row.cost)
    return kind, tuple(
        Bucket(key, tuple(sorted(((m, c) for m, c in models.items() if c), key=lambda mc: (-mc[1], mc[0]))))
        for key, models in sorted(costs.items())
    )


def _by(session: Session, column: Any, where: Any) -> list[Any]:
    return list(session.execute(sa.select(column.label("name"), *spend_columns()).where(where).group_by(column)))


def _named(rows: list[Any]) -> tuple[NamedSpend, ...]:
    return tuple(sorted((NamedSpend(row.name, spend_of(row)) for row in rows), key=_costliest))


def _by_model(session: Session, where: Any) -> tuple[NamedSpend, ...]:
    """Spend per model, the spellings of one model (dated, routed, cloud ids) summed under its canonical name."""
    rows = session.execute(
        sa.select(USAGE.c.model, USAGE.c.provider, *spend_columns())
        .where(where)
        .group_by(USAGE.c.model, USAGE.c.provider)
    )
    spends: dict[str, Spend] = defaultdict(Spend)
    for row in rows:
        spends[canonical_model(row.provider, row.model)] += spend_of(row)
    return tuple(sorted((NamedSpend(name, spend) for name, spend in spends.items()), key=_costliest))


def _unmatched_by_person(session: Session, scope: Scope, unmatched: Any) -> dict[str | None, Spend]:
    """Unmatched spend by the usage's actor, shown as the GitHub login it belongs to where that is known (the
    `people:` of the record's repository, then what GitHub told the owner), so one person is one row."""
    rows = session.execute(
        sa.select(USAGE.c.repo, USAGE.c.actor, *spend_columns()).where(unmatched).group_by(USAGE.c.repo, USAGE.c.actor)
    ).all()
    configs = session.execute(
        sa.select(REPOSITORIES.c.full_name, REPOSITORIES.c.config_text).where(
            REPOSITORIES.c.full_name.in_(sorted({row.repo for row in rows}))
        )
    )
    people = {name: parse_repo_config(text).config.people for name, text in configs}
    learned = learned_logins(session, owner=scope.owner, actors={row.actor for row in rows})
    spends: dict[str | None, Spend] = defaultdict(Spend)
    for row in rows:
        login = login_of(row.actor, configured=people.get(row.repo, {}), learned=learned) if row.actor else None
        spends[login or row.actor or None] += spend_of(row)
    return spends


def _costliest(item: NamedSpend) -> tuple[Decimal, int, str]:
    return (-item.spend.cost_usd, -item.spend.records, item.name or "")


def _outcome(row: Any) -> Outcome:
    if row.merged:
        return "merged"
    return "closed" if row.state == "closed" else "open"


def _pull_rows(session: Session, scope: Scope, period: Period) -> list[Any]:
    """Spend in the period per PR, with the PR's facts (one row per PR that has any)."""
    spend = (
        sa.select(USAGE.c.pr_repo, USAGE.c.pr_number, *spend_columns())
        .where(usage_scope(scope), window(period), USAGE.c.pr_number.is_not(None))
        .group_by(USAGE.c.pr_repo, USAGE.c.pr_number)
        .subquery()
    )
    return list(
        session.execute(
            sa.select(
                spend,
                PULLS.c.title,
                PULLS.c.author,
                PULLS.c.state,
                PULLS.c.merged,
                PULLS.c.additions,
                PULLS.c.deletions,
                PULLS.c.html_url,
            ).select_from(
                spend.outerjoin(PULLS, sa.and_(PULLS.c.repo == spend.c.pr_repo, PULLS.c.number == spend.c.pr_number))
            )
        )
    )


def _lifetimes(session: Session, scope: Scope, keys: list[tuple[str, int]]) -> dict[tuple[str, int], Spend]:
    if not keys:
        return {}
    which = sa.and_(
        sa.or_(*(sa.and_(USAGE.c.pr_repo == repo, USAGE.c.pr_number == number) for repo, number in keys)),
        usage_scope(scope),
    )
    rows = session.execute(
        sa.select(USAGE.c.pr_repo, USAGE.c.pr_number, *spend_columns())
        .where(which)
        .group_by(USAGE.c.pr_repo, USAGE.c.pr_number)
    )
    return {(row.pr_repo, row.pr_number): spend_of(row) for row in rows}


def _merged_rows(session: Session, scope: Scope, period: Period) -> list[Any]:
    """PRs merged in the period that hold any spend, with all of it (whenever it was made)."""
    merged = (
        sa.select(
            PULLS.c.repo, PULLS.c.number, PULLS.c.merged_at, (PULLS.c.additions + PULLS.c.deletions).label("lines")
        )
        .where(
            pull_scope(scope),
            PULLS.c.merged.is_(True),
            PULLS.c.merged_at >= period.since,
            PULLS.c.merged_at < period.until,
        )
        .subquery()
    )
    return list(
        session.execute(
            sa.select(merged.c.repo, merged.c.merged_at, merged.c.lines, *spend_columns())
            .select_from(
                merged.join(
                    USAGE,
                    sa.and_(
                        USAGE.c.pr_repo == merged.c.repo,
                        USAGE.c.pr_number == merged.c.number,
                        USAGE.c.pr_private.is_(False),
                    ),
                )
            )
            .group_by(merged.c.repo, merged.c.number, merged.c.merged_at, merged.c.lines)
        )
    )


def _merged_week(week: date, rows: list[Any]) -> MergedWeek:
    spend = sum((spend_of(row) for row in rows), Spend())
    return MergedWeek(week, len(rows), spend, sum(int(row.lines or 0) for row in rows))


def _repositories(
    session: Session, scope: Scope, pulls: list[PullSpend], branches: list[BranchSpend], merged_rows: list[Any]
) -> tuple[RepoSpend, ...]:
    names = {p.repo for p in pulls} | {b.repo for b in branches}
    if scope.repo is not None:
        names.add(scope.repo)
    else:
        known = session.execute(
            sa.select(REPOSITORIES.c.full_name).where(
                REPOSITORIES.c.full_name.startswith(scope.owner + "/", autoescape=True),
                REPOSITORIES.c.removed.is_(False),
            )
        )
        names |= {name for (name,) in known}
    result = []
    for name in sorted(names):
        own = [p for p in pulls if p.repo == name]
        unmatched = sum((b.spend for b in branches if b.repo == name), Spend())
        by_outcome: dict[Outcome, Decimal] = dict.fromkeys(OUTCOMES, Decimal(0))
        for pull in own:
            by_outcome[pull.outcome] += pull.spend.cost_usd
        by_outcome["unmatched"] = unmatched.cost_usd
        merged = _merged_week(date.min, [row for row in merged_rows if row.repo == name])
        total = sum((p.spend for p in own), unmatched)
        result.append(RepoSpend(name, total, by_outcome, len(own), merged.cost_per_changed_line))
    return tuple(sorted(result, key=lambda r: (-r.spend.cost_usd, r.repo)))


def gather_analytics(session: Session, *, scope: Scope, period: Period) -> Analytics:
    where = sa.and_(usage_scope(scope), window(period))
    unmatched = sa.and_(where, USAGE.c.pr_number.is_(None))
    kind, buckets = _buckets(session, scope, period)
    agents = _by(session, USAGE.c.agent, where)
    tokens = session.execute(
        sa.select(
            sa.func.coalesce(
                exact_sum(
                    USAGE.c.input_tokens
                    + USAGE.c.cache_read_tokens
                    + USAGE.c.cache_write_tokens
                    + USAGE.c.output_tokens
                ),
                0,
            )
        ).where(where)
    ).scalar_one()

    pull_rows = _pull_rows(session, scope, period)
    reverted = reverted_pulls(session, repos={row.pr_repo for row in pull_rows})
    ranked = sorted(pull_rows, key=lambda r: (-int(r.cost), -int(r.records), r.pr_repo, r.pr_number))
    lifetimes = _lifetimes(session, scope, [(r.pr_repo, r.pr_number) for r in ranked[:TOP_PULLS]])
    pulls = [
        PullSpend(
            repo=row.pr_repo,
            number=row.pr_number,
            title=row.title or "",
            author=row.author or "",
            outcome="reverted" if (row.pr_repo, row.pr_number) in reverted else _outcome(row),
            spend=spend_of(row),
            lifetime=lifetimes.get((row.pr_repo, row.pr_number), spend_of(row)),
            changed_lines=int(row.additions or 0) + int(row.deletions or 0),
            html_url=row.html_url or "",
        )
        for row in ranked
    ]

    branch_rows = session.execute(
        sa.select(USAGE.c.repo, USAGE.c.branch, sa.func.max(USAGE.c.timestamp).label("last"), *spend_columns())
        .where(unmatched)
        .group_by(USAGE.c.repo, USAGE.c.branch)
    ).all()
    defaults = default_branches(session, {row.repo for row in branch_rows})
    branches = sorted(
        (
            BranchSpend(row.repo, row.branch, row.branch == defaults.get(row.repo), spend_of(row), as_utc(row.last))
            for row in branch_rows
        ),
        key=lambda b: (-b.spend.cost_usd, -b.spend.records, b.repo, b.branch or ""),
    )

    outcomes = []
    for name in OUTCOMES:
        members = [p for p in pulls if p.outcome == name]
        parts = [b.spend for b in branches] if name == "unmatched" else [p.spend for p in members]
        spend = sum(parts, Spend())
        outcomes.append(OutcomeSpend(name, spend, len(members)))

    authors: dict[str | None, list[Any]] = defaultdict(lambda: [Spend(), Decimal(0)])
    for pull in pulls:
        authors[pull.author or None][0] += pull.spend
        authors[pull.author or None][1] += pull.spend.cost_usd
    for person, spend in _unmatched_by_person(session, scope, unmatched).items():
        authors[person][0] += spend

    merged_rows = _merged_rows(session, scope, period)
    weeks: dict[date, list[Any]] = defaultdict(list)
    for row in merged_rows:
        weeks[monday(as_utc(row.merged_at).date())].append(row)

    return Analytics(
        scope=scope,
        period=period,
        bucket=kind,
        totals=sum((spend_of(row) for row in agents), Spend()),
        tokens=int(tokens),
        by_bucket=buckets,
        by_model=_by_model(session, where),
        merged_weeks=tuple(_merged_week(week, rows) for week, rows in sorted(weeks.items())),
        merged=_merged_week(period.since.date(), merged_rows) if merged_rows else None,
        outcomes=tuple(outcomes),
        top_pulls=tuple(pulls[:TOP_PULLS]),
        by_author=tuple(
            sorted(
                (NamedSpend(name, spend, on_pulls) for name, (spend, on_pulls) in authors.items()),
                key=_costliest,
            )
        ),
        by_agent=_named(agents),
        unmatched_by_branch=tuple(branches),
        repositories=_repositories(session, scope, pulls, branches, merged_rows),
    )
