"""The PR spend report (DESIGN §6, §9): the facts the worker gathered → one frozen `PullRequestReport`.

Pure: the shell loads a `ReportFacts` snapshot (the PR, its spend already aggregated, its pushes and reviews, the
repository's config), calls `build_report`, and renders or serialises the result. Nothing here reads a clock: the
shell passes `generated_at`, so a report is reproducible (and golden-file testable).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal, TypeAlias

from app.budget import BudgetVerdict, Limits, evaluate_budget
from app.cache_savings import NO_CACHE, CacheDay, CacheEfficiency, cache_efficiency, cache_json
from app.formatting import decimal_str, per_line_json, usd_json
from app.outcomes import RevertedBy, RevertTarget, revert_json
from app.repo_config import ConfigResult
from app.review_phases import NO_PHASES, ReviewPhases
from app.spend_rows import (  # the report's row types and merges, named from here too
    ActorSpend as ActorSpend,
)
from app.spend_rows import (
    ModelSpend as ModelSpend,
)
from app.spend_rows import (
    SourceSpend as SourceSpend,
)
from app.spend_rows import (
    costliest,
)
from app.spend_rows import (
    merge_actors as merge_actors,
)
from app.spend_rows import (
    merge_models as merge_models,
)

PrState: TypeAlias = Literal["open", "closed", "merged"]  # "closed" means closed without merge
ReviewState: TypeAlias = Literal["approved", "changes_requested", "commented", "dismissed"]
ReviewOutcome: TypeAlias = Literal["merged", "reverted", "closed", "approved", "changes_requested", "pending"]


@dataclass(frozen=True, slots=True)
class PullRequestInfo:
    repo: str  # "owner/name", the base repository
    number: int
    title: str
    author: str
    state: PrState
    draft: bool
    head_ref: str
    head_sha: str
    base_ref: str
    additions: int
    deletions: int
    changed_files: int
    labels: tuple[str, ...]
    created_at: datetime
    closed_at: datetime | None
    merged_at: datetime | None
    html_url: str


@dataclass(frozen=True, slots=True)
class SpendTotals:
    records: int
    unpriced_records: int  # records with unknown cost: not in cost_usd, never counted as 0
    cost_usd: Decimal
    input_tokens: int  # non-cached input
    cache_read_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int  # informational: part of output where the provider bills it so
    sessions: int
    agents: int

    @property
    def total_tokens(self) -> int:
        # Reasoning is left out: providers that bill it already count it in output_tokens.
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class Push:
    sha: str
    pushed_at: datetime


@dataclass(frozen=True, slots=True)
class SpendPoint:
    timestamp: datetime  # the usage's own time (a record, or a bucket of records aggregated by the shell)
    cost_usd: Decimal
    records: int


@dataclass(frozen=True, slots=True)
class ReviewInfo:
    reviewer: str
    state: ReviewState
    submitted_at: datetime


@dataclass(frozen=True, slots=True)
class ReportFacts:
    pr: PullRequestInfo
    totals: SpendTotals
    by_model: tuple[ModelSpend, ...]
    by_actor: tuple[ActorSpend, ...]
    pushes: tuple[Push, ...]
    spend_points: tuple[SpendPoint, ...]
    reviews: tuple[ReviewInfo, ...]
    repo_median_cost_per_line: Decimal | None  # over the repository's merged PRs; None when unknown
    config: ConfigResult
    limits: Limits  # config.budget with any overrides applied (budget.limits_with_overrides)
    generated_at: datetime  # tz-aware
    public_url: str
    by_source: tuple[SourceSpend, ...] = ()
    # The GitHub login of each actor that has one (the repository's `people:`, then what GitHub told us).
    logins: Mapping[str, str] = field(default_factory=dict)
    reverted_by: RevertedBy | None = None  # a merged PR reverted since (app.outcomes)
    reverts: RevertTarget | None = None  # the PR this one's body reverts
    phases: ReviewPhases = NO_PHASES  # the spend split at review verdicts (app.review_phases)
    cache_days: tuple[CacheDay, ...] = ()  # the PR's cache tokens by model and day (app.cache_savings)


@dataclass(frozen=True, slots=True)
class Diff:
    additions: int
    deletions: int
    changed_files: int

    @property
    def changed_lines(self) -> int:
        return self.additions + self.deletions


@dataclass(frozen=True, slots=True)
class ReviewSummary:
    approvals: tuple[str, ...]  # reviewers whose latest verdict (comments aside) is approved, by login
    changes_requested: int  # rounds: reviews that requested changes
    requesting_changes: tuple[str, ...]  # reviewers whose latest verdict still requests changes
    latest: tuple[tuple[str, ReviewState], ...]  # (reviewer, latest state), by login
    outcome: ReviewOutcome


@dataclass(frozen=True, slots=True)
class PushInterval:
    """Spend that led to one push: after the previous push (`start`, exclusive) up to this one (`end`)."""

    sha: str | None  # None: spent after the last push, not pushed yet
    start: datetime | None  # None: from the beginning of the work
    end: datetime | None  # the push time; None for the not-yet-pushed tail
    cost_usd: Decimal
    records: int


@dataclass(frozen=True, slots=True)
class PullRequestReport:
    pr: PullRequestInfo
    totals: SpendTotals
    diff: Diff
    by_model: tuple[ModelSpend, ...]  # costliest first
    by_actor: tuple[ActorSpend, ...]  # costliest first
    cost_per_changed_line: Decimal | None  # None when no line changed
    repo_median_cost_per_line: Decimal | None
    median_ratio: Decimal | None  # cost_per_changed_line / repo median, one decimal
    cache_read_share: Decimal | None  # cache reads / all input tokens (non-cached + cache read + cache write)
    review: ReviewSummary
    unmerged_spend: Decimal | None  # the spend of a PR closed without merge
    timeline: tuple[PushInterval, ...]  # chronological; empty when no push is known
    budget: BudgetVerdict
    limits: Limits
    config: ConfigResult
    generated_at: datetime
    details_url: str
    by_source: tuple[SourceSpend, ...] = ()  # most calls first
    reverted_by: RevertedBy | None = None
    reverts: RevertTarget | None = None
    phases: ReviewPhases = NO_PHASES
    reverted_spend: Decimal | None = None  # the spend of a merged PR reverted since
    cache: CacheEfficiency | None = None  # app.cache_savings; None when no call read or wrote a cache
    people_hidden: bool = False  # dashboard.people: aggregate (app.people_view): reviewers counted, not named

    @property
    def has_usage(self) -> bool:
        return self.totals.records > 0

    @property
    def tail_label(self) -> str:  # the `sha=None` interval: work to push on an open PR; none will come once closed
        return "not pushed yet" if self.pr.state == "open" else "after the last push"

    @property
    def is_comment_wanted(self) -> bool:
        """Whether `comment.behavior`/`min_cost` want a comment; unpriced calls count as spend worth showing."""
        comment = self.config.config.comment
        if comment.behavior == "off" or not self.has_usage:
            return False
        return self.totals.cost_usd >= comment.min_cost or self.totals.unpriced_records > 0

    def summary_json(self) -> dict[str, Any]:
        """The PR spend summary of DESIGN §9, key for key; money as decimal strings."""
        pr, t = self.pr, self.totals
        tokens = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
        return {
            **_pick(pr, "repo", "number", "title", "author", "state", "head_ref", "head_sha"),
            "diff": _pick(self.diff, "additions", "deletions", "changed_files", "changed_lines"),
            "usage": {"cost_usd": usd_json(t.cost_usd), **_pick(t, "records", "unpriced_records", *tokens)},
            "cost_per_changed_line_usd": per_line_json(self.cost_per_changed_line),
            "by_model": [
                {**_pick(m, "model", "provider", "records"), "cost_usd": usd_json(m.cost_usd)}
                | _pick(m, "input_tokens", "output_tokens")
                | ({"raw_models": list(m.raw_models)} if m.is_renamed else {})
                for m in self.by_model
            ],
            "by_actor": [
                {**_pick(a, "actor", "agent", "records"), "cost_usd": usd_json(a.cost_usd)} for a in self.by_actor
            ],
            # Each call counts once, under the source that reported it first (DESIGN §2 "One call, one record").
            "by_source": [
                {
                    **_pick(s, "source", "records"),
                    "cost_usd": usd_json(s.cost_usd),
                    "also_seen_by": dict(s.also_seen_by),
                }
                for s in self.by_source
            ],
            "review": {
                "approvals": len(self.review.approvals),
                "changes_requested": self.review.changes_requested,
                "outcome": self.review.outcome,
                **revert_json(self.reverted_by, self.reverts),
                "rounds": self.phases.round_count,
                "spend_in_rounds_usd": usd_json(self.phases.in_rounds),
            },
            "budget": {"status": self.budget.status, "reasons": list(self.budget.reasons)},
            "cache": cache_json(self.cache or NO_CACHE, self.cache_read_share),
        }

    def budget_json(self) -> dict[str, Any]:
        """`GET …/pulls/{number}/budget` (DESIGN §9): the verdict against `limits` (overrides included)."""
        limits = self.limits
        return {
            "status": self.budget.status,
            "cost_usd": usd_json(self.totals.cost_usd),
            "reasons": list(self.budget.reasons),
            "limits": {
                "max_cost_per_pr": decimal_str(limits.max_cost_per_pr),
                "max_cost_per_changed_line": decimal_str(limits.max_cost_per_changed_line),
                "max_tokens_per_pr": limits.max_tokens_per_pr,
                "warn_at": decimal_str(limits.warn_at),
            },
        }


def _pick(obj: object, *names: str) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in names}


def summarize_reviews(reviews: Iterable[ReviewInfo], *, state: PrState) -> ReviewSummary:
    """GitHub's rule: a reviewer's verdict is their latest approval, change request or dismissal; comments alone
    leave an earlier verdict standing."""
    ordered = sorted(reviews, key=lambda r: r.submitted_at)
    latest: dict[str, ReviewState] = {}
    for review in ordered:
        if review.state != "commented" or review.reviewer not in latest:
            latest[review.reviewer] = review.state
    approvals = tuple(sorted(login for login, s in latest.items() if s == "approved"))
    blocking = tuple(sorted(login for login, s in latest.items() if s == "changes_requested"))
    outcome: ReviewOutcome
    if state in ("merged", "closed"):
        outcome = state
    elif blocking:
        outcome = "changes_requested"  # one open change request blocks, whatever the approvals
    else:
        outcome = "approved" if approvals else "pending"
    return ReviewSummary(
        approvals=approvals,
        changes_requested=sum(1 for r in ordered if r.state == "changes_requested"),
        requesting_changes=blocking,
        latest=tuple(sorted(latest.items())),
        outcome=outcome,
    )


def bucket_by_push(points: Iterable[SpendPoint], pushes: Iterable[Push]) -> tuple[PushInterval, ...]:
    """Spend between pushes. A point belongs to the first push at or after it (the push its work led to), so the
    work before the first push is in the first interval; points after the last push form a final `sha=None` one."""
    ordered = sorted(pushes, key=lambda p: p.pushed_at)
    if not ordered:
        return ()
    times = [p.pushed_at for p in ordered]
    costs = [Decimal(0)] * (len(ordered) + 1)
    counts = [0] * (len(ordered) + 1)
    for point in points:
        index = bisect_left(times, point.timestamp)
        costs[index] += point.cost_usd
        counts[index] += point.records
    intervals = [
        PushInterval(push.sha, times[i - 1] if i else None, push.pushed_at, costs[i], counts[i])
        for i, push in enumerate(ordered)
    ]
    if counts[-1]:
        intervals.append(PushInterval(None, times[-1], None, costs[-1], counts[-1]))
    return tuple(intervals)


def build_report(facts: ReportFacts) -> PullRequestReport:
    pr, totals = facts.pr, facts.totals
    diff = Diff(pr.additions, pr.deletions, pr.changed_files)
    per_line = totals.cost_usd / diff.changed_lines if diff.changed_lines else None
    median = facts.repo_median_cost_per_line
    ratio = None
    if per_line is not None and median:
        ratio = (per_line / median).quantize(Decimal("0.1"), ROUND_HALF_UP)
    all_input = totals.input_tokens + totals.cache_read_tokens + totals.cache_write_tokens
    reverted_by = facts.reverted_by if pr.state == "merged" else None
    models = tuple(sorted(merge_models(facts.by_model), key=lambda m: (*costliest(m), m.model, m.provider or "")))
    cache = cache_efficiency(facts.cache_days)
    review = summarize_reviews(facts.reviews, state=pr.state)
    if reverted_by is not None:
        review = replace(review, outcome="reverted")
    verdict = evaluate_budget(
        cost=totals.cost_usd,
        tokens=totals.total_tokens,
        changed_lines=diff.changed_lines,
        labels=pr.labels,
        limits=facts.limits,
        exempt_labels=facts.config.config.budget.exempt_labels,
    )
    return PullRequestReport(
        pr=pr,
        totals=totals,
        diff=diff,
        by_model=models,
        by_actor=tuple(
            sorted(
                merge_actors(facts.by_actor, facts.logins), key=lambda a: (*costliest(a), a.actor or "", a.agent or "")
            )
        ),
        cost_per_changed_line=per_line,
        repo_median_cost_per_line=median,
        median_ratio=ratio,
        cache_read_share=Decimal(totals.cache_read_tokens) / all_input if all_input else None,
        review=review,
        unmerged_spend=totals.cost_usd if pr.state == "closed" and totals.records else None,
        timeline=bucket_by_push(facts.spend_points, facts.pushes),
        budget=verdict,
        limits=facts.limits,
        config=facts.config,
        generated_at=facts.generated_at,
        details_url=f"{facts.public_url.rstrip('/')}/dashboard/{pr.repo}/pulls/{pr.number}",
        by_source=tuple(sorted(facts.by_source, key=lambda s: (-s.records, s.source))),
        reverted_by=reverted_by,
        reverts=facts.reverts,
        phases=facts.phases,
        reverted_spend=totals.cost_usd if reverted_by is not None and totals.records else None,
        cache=cache if cache.has_cache else None,
    )
