"""The outcome report of a repository or an owner over a period (DESIGN §1, the dashboard): plain frozen data,
built by `app.analytics` from aggregate queries, shown by the dashboard and served as JSON by `app.report_api`.

Pure: no framework, no database. Money is Decimal; JSON money is a decimal string, dates are ISO 8601.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, TypeAlias

from app.formatting import per_line_json, usd_json

Outcome: TypeAlias = Literal["merged", "reverted", "closed", "open", "unmatched"]
# "reverted": merged, then reverted (app.outcomes); "merged" is merged work that stands.
OUTCOMES: tuple[Outcome, ...] = ("merged", "reverted", "closed", "open", "unmatched")


@dataclass(frozen=True, slots=True)
class Scope:
    owner: str
    repo: str | None = None  # "owner/name"; None: every repository of the owner

    @property
    def label(self) -> str:
        return self.repo or self.owner


@dataclass(frozen=True, slots=True)
class Period:
    since: datetime  # inclusive, UTC
    until: datetime  # exclusive, UTC

    @property
    def days(self) -> int:
        return max(1, (self.until - self.since + timedelta(seconds=86_399)).days)


@dataclass(frozen=True, slots=True)
class Spend:
    cost_usd: Decimal = Decimal(0)
    records: int = 0
    unpriced_records: int = 0  # records of unknown cost: not in cost_usd, never counted as 0

    def __add__(self, other: Spend) -> Spend:
        return Spend(
            self.cost_usd + other.cost_usd, self.records + other.records, self.unpriced_records + other.unpriced_records
        )


@dataclass(frozen=True, slots=True)
class Bucket:
    start: date  # a day, or the Monday of a week
    by_model: tuple[tuple[str, Decimal], ...]  # costliest first; models with cost only

    @property
    def cost_usd(self) -> Decimal:
        return sum((cost for _, cost in self.by_model), Decimal(0))


@dataclass(frozen=True, slots=True)
class MergedWeek:
    week: date  # Monday (UTC) of the week the PRs were merged
    pull_requests: int
    spend: Spend  # all the spend of those PRs, whenever it was made
    changed_lines: int

    @property
    def cost_per_changed_line(self) -> Decimal | None:
        return self.spend.cost_usd / self.changed_lines if self.changed_lines else None


@dataclass(frozen=True, slots=True)
class OutcomeSpend:
    outcome: Outcome
    spend: Spend
    pull_requests: int  # 0 for unmatched


@dataclass(frozen=True, slots=True)
class PullSpend:
    repo: str
    number: int
    title: str
    author: str
    outcome: Outcome
    spend: Spend  # within the period
    lifetime: Spend  # every record the PR holds
    changed_lines: int
    html_url: str

    @property
    def cost_per_changed_line(self) -> Decimal | None:
        return self.lifetime.cost_usd / self.changed_lines if self.changed_lines else None


@dataclass(frozen=True, slots=True)
class NamedSpend:
    """Spend of one author or agent. For authors, `on_pulls` is the matched part (as the PR's author)."""

    name: str | None
    spend: Spend
    on_pulls: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class BranchSpend:
    repo: str
    branch: str | None
    is_default: bool
    spend: Spend
    last_used_at: datetime


@dataclass(frozen=True, slots=True)
class RepoSpend:
    repo: str
    spend: Spend
    by_outcome: dict[Outcome, Decimal]
    pull_requests: int
    merged_cost_per_changed_line: Decimal | None


@dataclass(frozen=True, slots=True)
class LoopShare:
    """Spend of PRs closed in a span, and the part of it made in rounds of requested changes (app.review_loops)."""

    pull_requests: int
    rounds: int
    spend: Decimal
    in_rounds: Decimal

    @property
    def share(self) -> Decimal | None:
        return self.in_rounds / self.spend if self.spend else None


@dataclass(frozen=True, slots=True)
class RepoLoops:
    repo: str
    period: LoopShare
    previous: LoopShare  # the period of equal length before
    weeks: tuple[tuple[date, LoopShare], ...]  # Monday of each week with closed PRs


@dataclass(frozen=True, slots=True)
class Analytics:
    scope: Scope
    period: Period
    bucket: Literal["day", "week"]
    totals: Spend
    tokens: int
    by_bucket: tuple[Bucket, ...]  # every day (or week) of the period, empty ones included
    by_model: tuple[NamedSpend, ...]
    merged_weeks: tuple[MergedWeek, ...]
    merged: MergedWeek | None  # the whole period's merged PRs, `week` = the period's first day
    outcomes: tuple[OutcomeSpend, ...]  # merged, closed, open, unmatched
    top_pulls: tuple[PullSpend, ...]
    by_author: tuple[NamedSpend, ...]
    by_agent: tuple[NamedSpend, ...]
    unmatched_by_branch: tuple[BranchSpend, ...]
    repositories: tuple[RepoSpend, ...]

    def outcome(self, name: Outcome) -> OutcomeSpend:
        return next(o for o in self.outcomes if o.outcome == name)

    @property
    def wasted(self) -> Decimal:
        """Spend that produced nothing: on PRs closed without merge."""
        return self.outcome("closed").spend.cost_usd


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _spend(spend: Spend) -> dict[str, Any]:
    return {"cost_usd": usd_json(spend.cost_usd), "records": spend.records, "unpriced_records": spend.unpriced_records}


def _week(week: MergedWeek) -> dict[str, Any]:
    return {
        "pull_requests": week.pull_requests,
        **_spend(week.spend),
        "changed_lines": week.changed_lines,
        "cost_per_changed_line_usd": per_line_json(week.cost_per_changed_line),
    }


def _named(key: str, items: tuple[NamedSpend, ...]) -> list[dict[str, Any]]:
    return [{key: item.name, **_spend(item.spend)} for item in items]


def analytics_json(a: Analytics) -> dict[str, Any]:
    """`GET /v1/repos/{owner}/{repo}/report` and `GET /v1/orgs/{owner}/report` (DESIGN §9)."""
    return {
        "owner": a.scope.owner,
        "repo": a.scope.repo,
        "since": a.period.since.isoformat(),
        "until": a.period.until.isoformat(),
        **_spend(a.totals),
        "tokens": a.tokens,
        "outcomes": {o.outcome: {**_spend(o.spend), "pull_requests": o.pull_requests} for o in a.outcomes},
        "spend_that_produced_nothing_usd": usd_json(a.wasted),
        "merged": None if a.merged is None else _week(a.merged),
        "cost_per_merged_line_by_week": [{"week": w.week.isoformat(), **_week(w)} for w in a.merged_weeks],
        "bucket": a.bucket,
        "by_date": [
            {
                "date": b.start.isoformat(),
                "cost_usd": usd_json(b.cost_usd),
                "by_model": [{"model": model, "cost_usd": usd_json(cost)} for model, cost in b.by_model],
            }
            for b in a.by_bucket
        ],
        "by_model": _named("model", a.by_model),
        "top_pulls": [
            {
                "repo": p.repo,
                "number": p.number,
                "title": p.title,
                "author": p.author,
                "outcome": p.outcome,
                **_spend(p.spend),
                "total_cost_usd": usd_json(p.lifetime.cost_usd),
                "changed_lines": p.changed_lines,
                "cost_per_changed_line_usd": per_line_json(p.cost_per_changed_line),
                "html_url": p.html_url,
            }
            for p in a.top_pulls
        ],
        "by_author": [
            {
                "author": n.name,
                **_spend(n.spend),
                "on_pulls_cost_usd": usd_json(n.on_pulls),
                "unmatched_cost_usd": usd_json(n.spend.cost_usd - n.on_pulls),
            }
            for n in a.by_author
        ],
        "by_agent": _named("agent", a.by_agent),
        "unmatched_by_branch": [
            {
                "repo": b.repo,
                "branch": b.branch,
                "default_branch": b.is_default,
                **_spend(b.spend),
                "last_used_at": b.last_used_at.isoformat(),
            }
            for b in a.unmatched_by_branch
        ],
        "repositories": [
            {
                "repo": r.repo,
                **_spend(r.spend),
                "pull_requests": r.pull_requests,
                **{f"{outcome}_cost_usd": usd_json(cost) for outcome, cost in r.by_outcome.items()},
                "cost_per_merged_changed_line_usd": per_line_json(r.merged_cost_per_changed_line),
            }
            for r in a.repositories
        ],
    }
