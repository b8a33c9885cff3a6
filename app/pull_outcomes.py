"""Gather what came of one pull request (issue 15), for `app.facts`: whether it was reverted and by what, the PR
it reverts (with that PR's cost), and its spend split by review phase.

The phase split is one aggregate: records bucketed in SQL by the verdict boundaries (`app.review_phases`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.counted_spend import counted_rows
from app.db import as_utc
from app.exact_sum import exact_sum
from app.money import from_nanousd
from app.outcomes import RevertedBy, RevertTarget
from app.reverts import reverted_pulls
from app.review_phases import NO_PHASES, ReviewPhases, boundaries, split_phases
from app.tables import PULLS, REVIEWS


@dataclass(frozen=True, slots=True)
class PullOutcomeFacts:
    reverted_by: RevertedBy | None = None
    reverts: RevertTarget | None = None
    phases: ReviewPhases = NO_PHASES


def _usd(nanousd: Any) -> Decimal:
    return from_nanousd(int(nanousd or 0)) or Decimal(0)


def review_phases(session: Session, *, repo: str, number: int) -> ReviewPhases:
    """The PR's counted spend (its records and what pruning carried, app.counted_spend) split at its review
    verdicts."""
    reviews = session.execute(
        sa.select(REVIEWS.c.state, REVIEWS.c.submitted_at).where(REVIEWS.c.repo == repo, REVIEWS.c.number == number)
    ).all()
    bounds = boundaries((row.state, as_utc(row.submitted_at)) for row in reviews)
    rows = counted_rows(repo, number)
    if not bounds:
        total = session.execute(sa.select(sa.func.coalesce(exact_sum(rows.c.cost_nanousd), 0)))
        return ReviewPhases(_usd(total.scalar_one()), (), Decimal(0))
    # Phase i holds the records after verdict i up to and including verdict i+1 (app.review_phases.phase_index).
    bucketed = sa.select(
        sa.case(*((rows.c.at <= b.at, index) for index, b in enumerate(bounds)), else_=len(bounds)).label("phase"),
        rows.c.cost_nanousd,
    ).subquery()
    found = session.execute(
        sa.select(bucketed.c.phase, sa.func.coalesce(exact_sum(bucketed.c.cost_nanousd), 0).label("cost")).group_by(
            bucketed.c.phase
        )
    ).all()
    return split_phases(((int(row.phase), _usd(row.cost)) for row in found), bounds)


def _revert_target(session: Session, *, repo: str, number: int | None) -> RevertTarget | None:
    if number is None:
        return None
    row = session.execute(
        sa.select(PULLS.c.number, PULLS.c.title, PULLS.c.spend_nanousd, PULLS.c.html_url).where(
            PULLS.c.repo == repo, PULLS.c.number == number
        )
    ).first()
    if row is None:
        return RevertTarget(number=number, title="", cost_usd=Decimal(0), html_url="")
    return RevertTarget(number=row.number, title=row.title, cost_usd=_usd(row.spend_nanousd), html_url=row.html_url)


def pull_outcome_facts(session: Session, *, pull: Any) -> PullOutcomeFacts:
    """`pull` is the PR's stored row."""
    reverted_by = reverted_pulls(session, repos={pull.repo}).get((pull.repo, pull.number)) if pull.merged else None
    return PullOutcomeFacts(
        reverted_by=reverted_by,
        reverts=_revert_target(session, repo=pull.repo, number=pull.reverts_number),
        phases=review_phases(session, repo=pull.repo, number=pull.number),
    )
