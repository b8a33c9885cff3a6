"""Spend against outcomes for one repository or a whole owner over [since, until) (DESIGN §1, the dashboard).

Shell: a handful of aggregate queries (plain SQL, portable between SQLite and PostgreSQL: no scan per row), then
bucketing of the aggregated rows in Python. The figures:

- spend by day (by week past ~3 months) and model;
- cost per merged changed line by week of merge: all the spend of the PRs merged that week over their changed lines;
- spend on merged, closed-without-merge ("spend that produced nothing"), still-open PRs, and unmatched usage;
- top PRs by spend, by author (the PR's author for matched spend, the usage's actor for the rest) and by agent;
- unmatched spend by branch, the default branch included and flagged.

A repository's usage is what its PRs hold (`pr_repo`) plus the unmatched records made in it; an owner's is the sum
over its repositories, so the owner's figures always add up to its repositories' figures.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.books import pull_scope, usage_scope, usd
from app.daily_books import (
    Cell,
    PullGroup,
    latest_counted,
    pull_facts,
    pull_groups,
    pull_lifetimes,
    rollup_scope,
    window_cells,
)
from app.daily_rollup import SPLIT
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
from app.periods import check_period, parse_bound
from app.pricing import canonical_model
from app.repo_config import parse_repo_config
from app.repo_state import default_branches
from app.reverts import reverted_pulls
from app.tables import PULLS, REPOSITORIES, USAGE, USAGE_DAYS

DEFAULT_DAYS = 30
MAX_DAILY_BUCKETS = 92  # past ~3 months the chart shows weeks
TOP_PULLS = 20


def latest_usage(session: Session, scope: Scope, *, before: datetime) -> datetime | None:
    """The scope's latest usage before `before`: a row dated in the far future (stored before ingest checked
    timestamps) must not drag the default period there. The rollup answers unless its latest day holds records at or
    after `before`; then the records do."""
    try:
        return latest_counted(session, scope, before=before)
    except LookupError:
        pass
    latest = sa.select(sa.func.max(USAGE.c.timestamp)).where(usage_scope(scope), USAGE.c.timestamp < before)
    value = session.execute(latest).scalar_one()
    return None if value is None else as_utc(value)


def default_period(
    session: Session, scope: Scope, *, now: datetime, since: datetime | None = None, until: datetime | None = None
) -> Period:
    """The last 30 days up to now; when the scope has no usage in them, the 30 days up to its latest usage."""
    if until is None:
        latest = latest_usage(session, scope, before=now + timedelta(days=1)) if since is None else None
        until = now
        if latest is not None and not now - timedelta(days=DEFAULT_DAYS) <= latest < now:
            until = datetime.combine(latest.date() + timedelta(days=1), datetime.min.time(), UTC)
    if since is None:
        since = until - timedelta(days=DEFAULT_DAYS)
    return Period(as_utc(since), as_utc(until))


def _buckets(cells: list[Cell], period: Period) -> tuple[Literal["day", "week"], tuple[Bucket, ...]]:
    kind: Literal["day", "week"] = "day" if period.days <= MAX_DAILY_BUCKETS else "week"
    start = period.since.date() if kind == "day" else monday(period.since.date())
    last = (period.until - timedelta(microseconds=1)).date()
    step = timedelta(days=1 if kind == "day" else 7)
    costs: dict[date, dict[str, int]] = {}
    cursor = start
    while cursor <= last:
        costs[cursor] = {}
        cursor += step
    names: dict[tuple[str, str | None], str] = {}
    for cell in cells:
        key = cell.day if kind == "day" else monday(cell.day)
        models = costs.setdefault(key, {})
        model = names.get((cell.model, cell.provider))
        if model is None:
            model = names[(cell.model, cell.provider)] = canonical_model(cell.provider, cell.model)
        models[model] = models.get(model, 0) + cell.cost
    return kind, tuple(
        Bucket(key, tuple(sorted(((m, usd(c)) for m, c in models.items() if c), key=lambda mc: (-mc[1], mc[0]))))
        for key, models in sorted(costs.items())
    )


def _sums(cells: Iterable[Cell], key: Any) -> dict[Any, Spend]:
    """Spend per key(cell), summed in nano-dollars (exact) and made decimal once."""
    sums: dict[Any, list[int]] = {}
    for cell in cells:
        acc = sums.get(key(cell))
        if acc is None:
            acc = sums[key(cell)] = [0, 0, 0]
        acc[0] += cell.cost
        acc[1] += cell.records
        acc[2] += cell.unpriced
    return {name: Spend(usd(cost), records, unpriced) for name, (cost, records, unpriced) in sums.items()}


def _pull_spends(groups: dict[PullGroup, list[int]]) -> dict[tuple[str, int], Spend]:
    sums: dict[tuple[str, int], list[int]] = {}
    for (_, _, _, repo, number, _), (cost, records, unpriced, *_) in groups.items():
        acc = sums.setdefault((repo, number), [0, 0, 0])
        acc[0] += cost
        acc[1] += records
        acc[2] += unpriced
    return {key: Spend(usd(cost), records, unpriced) for key, (cost, records, unpriced) in sums.items()}


def _by_model(cells: list[Cell]) -> tuple[NamedSpend, ...]:
    """Spend per model, the spellings of one model (dated, routed, cloud ids) summed under its canonical name."""
    spends: dict[str, Spend] = defaultdict(Spend)
    for (model, provider), spend in _sums(cells, lambda c: (c.model, c.provider)).items():
        spends[canonical_model(provider, model)] += spend
    return tuple(sorted((NamedSpend(name, spend) for name, spend in spends.items()), key=_costliest))


def _unmatched_by_person(session: Session, scope: Scope, unmatched: list[Cell]) -> dict[str | None, Spend]:
    """Unmatched spend by the usage's actor, shown as the GitHub login it belongs to where that is known (the
    `people:` of the record's repository, then what GitHub told the owner), so one person is one row."""
    rows = _sums(unmatched, lambda c: (c.repo, c.actor))
    configs = session.execute(
        sa.select(REPOSITORIES.c.full_name, REPOSITORIES.c.config_text).where(
            REPOSITORIES.c.full_name.in_(sorted({repo for repo, _ in rows}))
        )
    )
    people = {name: parse_repo_config(text).config.people for name, text in configs}
    learned = learned_logins(session, owner=scope.owner, actors={actor for _, actor in rows})
    spends: dict[str | None, Spend] = defaultdict(Spend)
    for (repo, actor), spend in rows.items():
        login = login_of(actor, configured=people.get(repo, {}), learned=learned) if actor else None
        spends[login or actor or None] += spend
    return spends


def _costliest(item: NamedSpend) -> tuple[Decimal, int, str]:
    return (-item.spend.cost_usd, -item.spend.records, item.name or "")


def _outcome(row: Any) -> Outcome:
    """A PR not (yet) known counts as open."""
    if row is None:
        return "open"
    if row.merged:
        return "merged"
    return "closed" if row.state == "closed" else "open"


@dataclass(frozen=True, slots=True)
class _Merged:
    repo: str
    merged_at: datetime
    lines: int | None
    spend: Spend


def _merged_rows(session: Session, scope: Scope, period: Period) -> list[_Merged]:
    """PRs merged in the period that hold any spend, with all of it (whenever it was made), from the rollup."""
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
    days = USAGE_DAYS.c
    counted = sa.and_(days.pr_repo == merged.c.repo, days.pr_number == merged.c.number, days.pr_private.is_(False))
    rows = session.execute(
        sa.select(
            merged.c.repo,
            merged.c.merged_at,
            merged.c.lines,
            *(sa.func.coalesce(exact_sum(days[name]), 0) for name in ("records", "unpriced", "cost_hi", "cost_lo")),
        )
        .select_from(merged.join(USAGE_DAYS, counted))
        .group_by(merged.c.repo, merged.c.number, merged.c.merged_at, merged.c.lines)
    )
    return [
        _Merged(repo, merged_at, lines, Spend(usd(int(high) * SPLIT + int(low)), int(records), int(unpriced)))
        for repo, merged_at, lines, records, unpriced, high, low in rows
    ]


def _merged_week(week: date, rows: list[_Merged]) -> MergedWeek:
    spend = sum((row.spend for row in rows), Spend())
    return MergedWeek(week, len(rows), spend, sum(int(row.lines or 0) for row in rows))


def _repositories(
    session: Session, scope: Scope, pulls: list[PullSpend], branches: list[BranchSpend], merged_rows: list[_Merged]
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
    cells = window_cells(session, scope=scope, period=period)
    unmatched = [cell for cell in cells if cell.pr_number is None]
    kind, buckets = _buckets(cells, period)
    agents = _sums(cells, lambda c: c.agent)
    tokens = sum(cell.input + cell.cache_read + cell.cache_write + cell.output for cell in cells)

    by_pull = _pull_spends(pull_groups(session, scope=scope, period=period))
    facts = pull_facts(session, by_pull)
    reverted = reverted_pulls(session, repos={repo for repo, _ in by_pull})
    ranked = sorted(by_pull.items(), key=lambda item: (-item[1].cost_usd, -item[1].records, *item[0]))
    lifetimes = pull_lifetimes(session, rollup_scope(scope), [key for key, _ in ranked[:TOP_PULLS]])
    pulls = []
    for key, spend in ranked:
        row = facts.get(key)
        pulls.append(
            PullSpend(
                repo=key[0],
                number=key[1],
                title=(row.title if row is not None else None) or "",
                author=(row.author if row is not None else None) or "",
                outcome="reverted" if key in reverted else _outcome(row),
                spend=spend,
                lifetime=lifetimes.get(key, spend),
                changed_lines=int(row.additions or 0) + int(row.deletions or 0) if row is not None else 0,
                html_url=(row.html_url if row is not None else None) or "",
            )
        )

    branch_spend = _sums(unmatched, lambda c: (c.repo, c.branch))
    last: dict[tuple[str, str | None], datetime] = {}
    for cell in unmatched:
        seen = last.get((cell.repo, cell.branch))
        if seen is None or cell.last_at > seen:
            last[(cell.repo, cell.branch)] = cell.last_at
    defaults = default_branches(session, {repo for repo, _ in branch_spend})
    branches = sorted(
        (
            BranchSpend(repo, branch, branch == defaults.get(repo), spend, last[(repo, branch)])
            for (repo, branch), spend in branch_spend.items()
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
    weeks: dict[date, list[_Merged]] = defaultdict(list)
    for merged in merged_rows:
        weeks[monday(as_utc(merged.merged_at).date())].append(merged)

    return Analytics(
        scope=scope,
        period=period,
        bucket=kind,
        totals=sum(agents.values(), Spend()),
        tokens=int(tokens),
        by_bucket=buckets,
        by_model=_by_model(cells),
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
        by_agent=tuple(sorted((NamedSpend(name, spend) for name, spend in agents.items()), key=_costliest)),
        unmatched_by_branch=tuple(branches),
        repositories=_repositories(session, scope, pulls, branches, merged_rows),
    )


def build_analytics(
    session: Session, *, scope: Scope, since: str | None, until: str | None, now: datetime
) -> Analytics:
    """The report of `scope` over the requested period (default: the last 30 days, or the data's last 30 days).
    Raises periods.BadPeriod for an unreadable, empty, reversed or over-long period."""
    start, end = parse_bound(since, end=False), parse_bound(until, end=True)
    period = check_period(default_period(session, scope, now=now, since=start, until=end))
    return gather_analytics(session, scope=scope, period=period)
