"""Gather one pull request's facts from the database for the pure `build_report` (STYLE: fetch, decide, act).

The spend figures come from the PR's rollup (app.pull_spend), a few rows whatever the PR's size; the rest are
the PR's own rows (pushes, reviews) and its repository's. One read touches the PR's usage records: their cache
tokens by model and day (app.cache_books, over the PR's index), which the rollup does not split by day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from statistics import median
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.budget import limits_with_overrides
from app.cache_books import pull_cache_days
from app.db import as_utc, utcnow
from app.money import from_nanousd
from app.people import logins_of
from app.pull_outcomes import pull_outcome_facts
from app.pull_spend import pull_spend_of
from app.repo_config import ConfigResult, parse_repo_config
from app.repo_state import pull_labels
from app.report import PrState, PullRequestInfo, Push, ReportFacts, ReviewInfo
from app.tables import PULLS, PUSHES, REPOSITORIES, REVIEWS, USAGE


class PullNotFound(LookupError):
    pass


def _usd(nanousd: Any) -> Decimal:
    return from_nanousd(int(nanousd or 0)) or Decimal(0)


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

    Reads the per-PR rollup (`pull_requests.spend_nanousd`, kept by every refresh), not the usage table, and lets
    the database sort the ratios and hand over the middle one or two: a repository's history of thousands of
    merged PRs costs one sort in SQL instead of a Decimal division per PR in Python on every request. The float
    only orders; the median itself is computed exactly from the middle rows.
    """
    lines = PULLS.c.additions + PULLS.c.deletions
    counted = sa.and_(PULLS.c.repo == repo, PULLS.c.merged.is_(True), lines > 0, PULLS.c.spend_nanousd > 0)
    count = int(session.execute(sa.select(sa.func.count()).where(counted)).scalar_one())
    if not count:
        return None
    middle = session.execute(
        sa.select(PULLS.c.spend_nanousd, lines.label("lines"))
        .where(counted)
        .order_by(sa.cast(PULLS.c.spend_nanousd, sa.Float) / lines)
        .offset((count - 1) // 2)
        .limit(2 - count % 2)
    ).all()
    return Decimal(median([_usd(row.spend_nanousd) / row.lines for row in middle]))


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
    spend = pull_spend_of(session, pull, pushes)
    config = repo_config(session, repo)
    outcome = pull_outcome_facts(session, pull=pull)
    return ReportFacts(
        pr=pull_info(pull),
        totals=spend.totals,
        by_model=spend.by_model,
        by_actor=spend.by_actor,
        by_source=spend.by_source,
        pushes=tuple(pushes),
        spend_points=spend.spend_points,
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
            actors=[actor.actor for actor in spend.by_actor],
        ),
        reverted_by=outcome.reverted_by,
        reverts=outcome.reverts,
        phases=outcome.phases,
        cache_days=pull_cache_days(session, repo, number),
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


def pending_usage(session: Session, *, repo: str, number: int) -> int:
    """Records of the PR's repository and of its head repository not yet examined by matching (they may still land
    on the PR). One statement, which also finds the head repository: read before the PR's spend, it makes "nothing
    pending" mean that the spend read after it includes every match committed so far (on PostgreSQL each statement
    sees what was committed when it began)."""
    head = sa.select(PULLS.c.head_repo).where(PULLS.c.repo == repo, PULLS.c.number == number).scalar_subquery()
    query = sa.select(sa.func.count()).where(
        sa.or_(USAGE.c.repo == repo, USAGE.c.repo == head), USAGE.c.matched_at.is_(None)
    )
    return int(session.execute(query).scalar_one())
