"""Per-person outcomes (issue 15): for each PR author, the spend on their PRs in the period next to what was
merged and stayed merged. Shell: one aggregate query per scope; folding in Python. Sorted by name, never by spend
(`app.people_view`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.books import usage_scope, usd, window
from app.exact_sum import exact_sum
from app.outcome_report import Period, Scope
from app.people_view import PersonOutcome
from app.reverts import reverted_pulls
from app.tables import PULLS, USAGE


def person_outcomes(session: Session, *, scope: Scope, period: Period) -> tuple[PersonOutcome, ...]:
    spend = (
        sa.select(
            USAGE.c.pr_repo, USAGE.c.pr_number, sa.func.coalesce(exact_sum(USAGE.c.cost_nanousd), 0).label("cost")
        )
        .where(usage_scope(scope), window(period), USAGE.c.pr_number.is_not(None), USAGE.c.pr_private.is_(False))
        .group_by(USAGE.c.pr_repo, USAGE.c.pr_number)
        .subquery()
    )
    rows = session.execute(
        sa.select(spend, PULLS.c.author, PULLS.c.merged, PULLS.c.additions, PULLS.c.deletions).select_from(
            spend.join(PULLS, sa.and_(PULLS.c.repo == spend.c.pr_repo, PULLS.c.number == spend.c.pr_number))
        )
    ).all()
    reverted = reverted_pulls(session, repos={row.pr_repo for row in rows})
    people: dict[str, list[Any]] = {}
    for row in rows:
        acc = people.setdefault(row.author or "", [0, Decimal(0), 0, 0, Decimal(0)])
        cost = usd(row.cost)
        acc[0] += 1
        acc[1] += cost
        if row.merged and (row.pr_repo, row.pr_number) not in reverted:
            acc[2] += 1
            acc[3] += int(row.additions or 0) + int(row.deletions or 0)
            acc[4] += cost
    return tuple(PersonOutcome(name, *acc) for name, acc in sorted(people.items(), key=lambda item: item[0].lower()))
