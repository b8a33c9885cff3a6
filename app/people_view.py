"""No leaderboard of consumption (issue 15). Pure.

Per-person figures are sorted by name, never by spend, and always show what came of the spend (merged lines, cost
per merged line) beside it. With `dashboard.people: aggregate` no person is named at all: the per-person rows
leave the dashboard, the comment, the API and the CSV, and team medians stand in their place.

Why: "tokens used" as a per-person score rewards burning tokens (tokenmaxxing), the way lines of code once did.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from statistics import median
from typing import Literal, TypeAlias

from app.outcome_report import Analytics, NamedSpend
from app.repo_config import RepoConfig
from app.report import PullRequestReport

PeopleMode: TypeAlias = Literal["show", "aggregate"]


def people_mode(config: RepoConfig, default: PeopleMode) -> PeopleMode:
    return config.dashboard.people or default


@dataclass(frozen=True, slots=True)
class PersonOutcome:
    """One PR author over a period: spend on their PRs next to what was merged and stayed merged."""

    name: str
    pull_requests: int
    cost_usd: Decimal
    merged_pull_requests: int
    merged_changed_lines: int
    merged_cost_usd: Decimal
    unlinked_cost_usd: Decimal = Decimal(0)  # their usage linked to no PR (as the caller the records name)

    @property
    def total_cost_usd(self) -> Decimal:
        return self.cost_usd + self.unlinked_cost_usd

    @property
    def cost_per_merged_line(self) -> Decimal | None:
        return self.merged_cost_usd / self.merged_changed_lines if self.merged_changed_lines else None


@dataclass(frozen=True, slots=True)
class TeamMedians:
    people: int
    cost_usd: Decimal | None
    merged_changed_lines: Decimal | None
    cost_per_merged_line: Decimal | None


def _median(values: list[Decimal]) -> Decimal | None:
    return Decimal(median(values)) if values else None


def with_unlinked(people: tuple[PersonOutcome, ...], by_author: tuple[NamedSpend, ...]) -> tuple[PersonOutcome, ...]:
    """PR authors' outcomes plus each person's spend linked to no PR (`Analytics.by_author`), by name."""
    merged = {p.name: p for p in people}
    for named in by_author:
        unlinked = named.spend.cost_usd - named.on_pulls
        name = named.name or ""
        if name in merged:
            merged[name] = replace(merged[name], unlinked_cost_usd=unlinked)
        elif unlinked:
            merged[name] = PersonOutcome(name, 0, Decimal(0), 0, 0, Decimal(0), unlinked)
    return tuple(sorted(merged.values(), key=lambda p: (p.name.lower(), p.name)))


def team_medians(people: tuple[PersonOutcome, ...]) -> TeamMedians:
    return TeamMedians(
        people=len(people),
        cost_usd=_median([p.total_cost_usd for p in people]),
        merged_changed_lines=_median([Decimal(p.merged_changed_lines) for p in people]),
        cost_per_merged_line=_median([c for p in people if (c := p.cost_per_merged_line) is not None]),
    )


def hide_people_in_report(report: PullRequestReport) -> PullRequestReport:
    """The PR report with nobody named: no author, no per-person rows, reviewers counted instead of named."""
    review = report.review
    anonymous = replace(
        review,
        approvals=tuple("" for _ in review.approvals),
        requesting_changes=tuple("" for _ in review.requesting_changes),
        latest=tuple(("", state) for _, state in review.latest),
    )
    return replace(report, pr=replace(report.pr, author=""), by_actor=(), review=anonymous, people_hidden=True)


def visible_report(report: PullRequestReport, default: PeopleMode) -> PullRequestReport:
    """The report as the repository's `dashboard.people` (or the server's default) lets it be shown."""
    if people_mode(report.config.config, default) == "aggregate":
        return hide_people_in_report(report)
    return report


def hide_people_in_analytics(analytics: Analytics) -> Analytics:
    return replace(analytics, by_author=(), top_pulls=tuple(replace(p, author="") for p in analytics.top_pulls))
