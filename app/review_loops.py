"""Review loops per repository (issue 15): the share of spend that went into rounds of requested changes, and its
trend. Shell: reads the per-PR rollup every refresh keeps (`pull_requests.review_round_nanousd` beside
`spend_nanousd`, see `app.review_phases`), never the usage table.

A PR counts in the week it was closed (merged or not), when its review loops are over; the trend compares the
period with the one of equal length before it, and lists the period's weeks.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.books import pull_scope, usd
from app.db import as_utc
from app.formatting import usd_json
from app.outcome_report import LoopShare, Period, RepoLoops, Scope, monday
from app.tables import PULLS


def _share(rows: list[Any]) -> LoopShare:
    return LoopShare(
        pull_requests=len(rows),
        rounds=sum(int(r.review_rounds) for r in rows),
        spend=sum((usd(r.spend_nanousd) for r in rows), Decimal(0)),
        in_rounds=sum((usd(r.review_round_nanousd) for r in rows), Decimal(0)),
    )


def review_loops(session: Session, *, scope: Scope, period: Period) -> tuple[RepoLoops, ...]:
    previous_since = period.since - (period.until - period.since)
    rows = session.execute(
        sa.select(
            PULLS.c.repo, PULLS.c.closed_at, PULLS.c.spend_nanousd, PULLS.c.review_round_nanousd, PULLS.c.review_rounds
        ).where(
            pull_scope(scope),
            PULLS.c.state == "closed",
            PULLS.c.closed_at >= previous_since,
            PULLS.c.closed_at < period.until,
            PULLS.c.spend_nanousd > 0,
        )
    ).all()
    by_repo: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_repo[row.repo].append(row)
    result = []
    for repo, repo_rows in sorted(by_repo.items()):
        current = [r for r in repo_rows if as_utc(r.closed_at) >= period.since]
        weeks: dict[date, list[Any]] = defaultdict(list)
        for row in current:
            weeks[monday(as_utc(row.closed_at).date())].append(row)
        result.append(
            RepoLoops(
                repo=repo,
                period=_share(current),
                previous=_share([r for r in repo_rows if as_utc(r.closed_at) < period.since]),
                weeks=tuple((week, _share(week_rows)) for week, week_rows in sorted(weeks.items())),
            )
        )
    return tuple(result)


def _json(share: LoopShare) -> dict[str, Any]:
    return {
        "pull_requests": share.pull_requests,
        "rounds": share.rounds,
        "cost_usd": usd_json(share.spend),
        "in_rounds_cost_usd": usd_json(share.in_rounds),
        "share": None if share.share is None else str(share.share.quantize(Decimal("0.0001"))),
    }


def review_loops_json(loops: tuple[RepoLoops, ...]) -> list[dict[str, Any]]:
    """`review_loops` of the outcome report: per repository, PRs closed in the period (and the one before)."""
    return [
        {
            "repo": r.repo,
            **_json(r.period),
            "previous_period": _json(r.previous),
            "by_week": [{"week": week.isoformat(), **_json(share)} for week, share in r.weeks],
        }
        for r in loops
    ]
