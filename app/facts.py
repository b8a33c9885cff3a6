"""Gather one pull request's facts from the database for the pure `build_report` (STYLE: fetch, decide, act).

Every figure is an aggregate over the (pr_repo, pr_number) index: the summary never scans all usage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from statistics import median
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.budget import limits_with_overrides
from app.db import as_utc, utcnow
from app.exact_sum import exact_sum
from app.money import from_nanousd
from app.people import logins_of
from app.pull_outcomes import pull_outcome_facts
from app.repo_config import ConfigResult, parse_repo_config
from app.repo_state import pull_labels
from app.report import (
    ActorSpend,
    ModelSpend,
    PrState,
    PullRequestInfo,
    Push,
    ReportFacts,
    ReviewInfo,
    SourceSpend,
    SpendPoint,
    SpendTotals,
)
from app.tables import PULLS, PUSHES, REPOSITORIES, REVIEWS, USAGE


class PullNotFound(LookupError):
    pass


def _usd(nanousd: Any) -> Decimal:
    return from_nanousd(int(nanousd or 0)) or Decimal(0)


def _tokens(prefix: str = "") -> list[Any]:
    names = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")
    return [sa.func.coalesce(exact_sum(USAGE.c[name]), 0).label(prefix + name) for name in names]


def _spend_columns() -> list[Any]:
    return [
        sa.func.count().label("records"),
        sa.func.count().filter(USAGE.c.cost_nanousd.is_(None)).label("unpriced"),
        sa.func.coalesce(exact_sum(USAGE.c.cost_nanousd), 0).label("cost"),
    ]


def pull_info(row: Any) -> PullRequestInfo:
    state: PrState = "merged" if row.merged else ("closed" if row.state == "closed" else "open")
    return PullRequestInfo(
        repo=row.repo,
        number=row.number,
        title=row.title,
        author=row.author,
        state=state,
        draft=row.draft,
        head_ref=row.head_ref,
        head_sha=row.head_sha,
        base_ref=row.base_ref,
        additions=row.additions,
        deletions=row.deletions,
        changed_files=row.changed_files,
        labels=pull_labels(row),
        created_at=as_utc(row.created_at),
        closed_at=None if row.closed_at is None else as_utc(row.closed_at),
        merged_at=None if row.merged_at is None else as_utc(row.merged_at),
        html_url=row.html_url,
    )


def repo_config(session: Session, repo: str) -> ConfigResult:
    row = session.execute(sa.select(REPOSITORIES.c.config_text).where(REPOSITORIES.c.full_name == repo)).first()
    return parse_repo_config(None if row is None else row.config_text)


def repo_median_cost_per_line(session: Session, repo: str) -> Decimal | None:
    """The median cost per changed line over the repository's merged PRs that had any spend.

    Reads the per-PR rollup (`pull_requests.spend_nanousd`, kept by every refresh), not the usage table: summing
    every PR's usage on each request grew with the repository's whole history (350 ms p99 at 1 M records).
    """
    lines = PULLS.c.additions + PULLS.c.deletions
    rows = session.execute(
        sa.select(PULLS.c.spend_nanousd, lines.label("lines")).where(
            PULLS.c.repo == repo, PULLS.c.merged.is_(True), lines > 0, PULLS.c.spend_nanousd > 0
        )
    ).all()
    per_line = [_usd(row.spend_nanousd) / row.lines for row in rows]
    return Decimal(median(per_line)) if per_line else None


def _spend_points(session: Session, where: Any, pushes: list[Push]) -> tuple[SpendPoint, ...]:
    """Spend grouped by push interval in SQL: one point per interval, at the interval's first record."""
    bounds = sorted(p.pushed_at for p in pushes)
    if bounds:
        bucket: Any = sa.case(
            *((USAGE.c.timestamp <= bound, index) for index, bound in enumerate(bounds)), else_=len(bounds)
        )
    else:
        bucket = sa.literal(0)
    rows = session.execute(
        sa.select(bucket.label("bucket"), sa.func.min(USAGE.c.timestamp).label("first"), *_spend_columns())
        .where(where)
        .group_by(bucket)
    ).all()
    return tuple(
        SpendPoint(timestamp=as_utc(row.first), cost_usd=_usd(row.cost), records=int(row.records)) for row in rows
    )


def _sources(rows: Sequence[Any]) -> tuple[SourceSpend, ...]:
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
        for source, (records, cost) in spend.items()
    )


def gather_facts(
    session: Session,
    *,
    repo: str,
    number: int,
    public_url: str,
    overrides: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> ReportFacts:
    pull = session.execute(sa.select(PULLS).where(PULLS.c.repo == repo, PULLS.c.number == number)).first()
    if pull is None:
        raise PullNotFound(f"{repo}#{number}")
    # A record matched without its owner's consent to another owner's PR never counts on it (DESIGN §5).
    where = sa.and_(USAGE.c.pr_repo == repo, USAGE.c.pr_number == number, USAGE.c.pr_private.is_(False))
    total = session.execute(
        sa.select(
            *_spend_columns(),
            *_tokens(),
            sa.func.coalesce(exact_sum(USAGE.c.reasoning_tokens), 0).label("reasoning_tokens"),
            sa.func.count(sa.distinct(USAGE.c.session_id)).label("sessions"),
            sa.func.count(sa.distinct(USAGE.c.agent)).label("agents"),
        ).where(where)
    ).one()
    by_model = session.execute(
        sa.select(USAGE.c.model, USAGE.c.provider, *_spend_columns(), *_tokens())
        .where(where)
        .group_by(USAGE.c.model, USAGE.c.provider)
    ).all()
    by_actor = session.execute(
        sa.select(USAGE.c.actor, USAGE.c.agent, *_spend_columns()).where(where).group_by(USAGE.c.actor, USAGE.c.agent)
    ).all()
    by_source = session.execute(
        sa.select(USAGE.c.source, USAGE.c.also_seen_by, *_spend_columns())
        .where(where)
        .group_by(USAGE.c.source, USAGE.c.also_seen_by)
    ).all()
    pushes = [
        Push(sha=row.sha, pushed_at=as_utc(row.pushed_at))
        for row in session.execute(
            sa.select(PUSHES.c.sha, PUSHES.c.pushed_at)
            .where(PUSHES.c.repo == repo, PUSHES.c.number == number)
            .order_by(PUSHES.c.pushed_at)
        )
    ]
    reviews = tuple(
        ReviewInfo(reviewer=row.reviewer, state=row.state, submitted_at=as_utc(row.submitted_at))
        for row in session.execute(
            sa.select(REVIEWS.c.reviewer, REVIEWS.c.state, REVIEWS.c.submitted_at)
            .where(REVIEWS.c.repo == repo, REVIEWS.c.number == number)
            .order_by(REVIEWS.c.submitted_at, REVIEWS.c.review_id)
        )
    )
    config = repo_config(session, repo)
    outcome = pull_outcome_facts(session, pull=pull, where=where)
    return ReportFacts(
        pr=pull_info(pull),
        totals=SpendTotals(
            records=int(total.records),
            unpriced_records=int(total.unpriced),
            cost_usd=_usd(total.cost),
            input_tokens=int(total.input_tokens),
            cache_read_tokens=int(total.cache_read_tokens),
            cache_write_tokens=int(total.cache_write_tokens),
            output_tokens=int(total.output_tokens),
            reasoning_tokens=int(total.reasoning_tokens),
            sessions=int(total.sessions),
            agents=int(total.agents),
        ),
        by_model=tuple(
            ModelSpend(
                model=row.model,
                provider=row.provider,
                records=int(row.records),
                unpriced_records=int(row.unpriced),
                cost_usd=_usd(row.cost),
                input_tokens=int(row.input_tokens),
                cache_read_tokens=int(row.cache_read_tokens),
                cache_write_tokens=int(row.cache_write_tokens),
                output_tokens=int(row.output_tokens),
            )
            for row in by_model
        ),
        by_actor=tuple(
            ActorSpend(actor=row.actor, agent=row.agent, records=int(row.records), cost_usd=_usd(row.cost))
            for row in by_actor
        ),
        by_source=_sources(by_source),
        pushes=tuple(pushes),
        spend_points=_spend_points(session, where, pushes),
        reviews=reviews,
        repo_median_cost_per_line=repo_median_cost_per_line(session, repo),
        config=config,
        limits=limits_with_overrides(config.config, **(overrides or {})),
        generated_at=now or utcnow(),
        public_url=public_url,
        logins=logins_of(
            session,
            owner=repo.split("/")[0],
            configured=config.config.people,
            actors=[row.actor for row in by_actor],
        ),
        reverted_by=outcome.reverted_by,
        reverts=outcome.reverts,
        phases=outcome.phases,
    )


@dataclass(frozen=True, slots=True)
class Published:
    """What the last refresh of a PR rendered and stored (and, in App mode, posted)."""

    comment_id: int | None
    comment_body: str | None
    generated_at: datetime | None
    check_title: str | None
    check_conclusion: str | None
    check_summary: str | None
    check_run_sha: str | None
    head_repo: str | None
    check_run_id: int | None = None  # None: not posted (dry-run, or check runs turned off)

    def check_run_json(self) -> dict[str, Any] | None:
        """The check run the last refresh rendered: what it says, when, and whether it was posted to GitHub."""
        if self.check_title is None or self.generated_at is None:
            return None
        return {
            "title": self.check_title,
            "conclusion": self.check_conclusion,
            "summary": self.check_summary,
            "rendered_at": self.generated_at.isoformat(),
            "posted": self.check_run_id is not None,
            "id": self.check_run_id,
            "head_sha": self.check_run_sha,
        }


def published(session: Session, *, repo: str, number: int) -> Published:
    columns = ("comment_id", "comment_body", "comment_generated_at", "check_title", "check_conclusion",
               "check_summary", "check_run_sha", "head_repo", "check_run_id")  # fmt: skip
    row = session.execute(
        sa.select(*(PULLS.c[name] for name in columns)).where(PULLS.c.repo == repo, PULLS.c.number == number)
    ).one()
    generated = row.comment_generated_at
    return Published(
        comment_id=row.comment_id,
        comment_body=row.comment_body,
        generated_at=None if generated is None else as_utc(generated),
        check_title=row.check_title,
        check_conclusion=row.check_conclusion,
        check_summary=row.check_summary,
        check_run_sha=row.check_run_sha,
        head_repo=row.head_repo,
        check_run_id=row.check_run_id,
    )


def pending_usage(session: Session, *, repos: set[str]) -> int:
    """Records of these repositories not yet examined by matching (they may still land on a PR)."""
    query = sa.select(sa.func.count()).where(USAGE.c.repo.in_(repos), USAGE.c.matched_at.is_(None))
    return int(session.execute(query).scalar_one())
