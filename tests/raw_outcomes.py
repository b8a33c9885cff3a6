"""The routing table's groups and people's outcomes as they were computed before the daily rollup, from the usage
records of the period: the reference tests/test_daily_rollup.py compares the rollup-based sections with."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.books import usage_scope, usd, window
from app.exact_sum import exact_sum
from app.outcome_report import Period, Scope
from app.people_view import PersonOutcome
from app.pricing import canonical_model
from app.reverts import reverted_pulls
from app.routing_table import AgentModelRow, _pull_outcome
from app.tables import PULLS, USAGE


def agent_model_table(session: Session, *, scope: Scope, period: Period) -> tuple[AgentModelRow, ...]:
    grouped = (
        sa.select(
            USAGE.c.agent,
            USAGE.c.provider,
            USAGE.c.model,
            USAGE.c.pr_repo,
            USAGE.c.pr_number,
            sa.func.coalesce(exact_sum(USAGE.c.cost_nanousd), 0).label("cost"),
            sa.func.count().label("records"),
            sa.func.count().filter(USAGE.c.cost_nanousd.is_(None)).label("unpriced"),
            sa.func.coalesce(exact_sum(USAGE.c.input_tokens), 0).label("input"),
            sa.func.coalesce(exact_sum(USAGE.c.cache_read_tokens), 0).label("cache_read"),
            sa.func.coalesce(exact_sum(USAGE.c.cache_write_tokens), 0).label("cache_write"),
        )
        .where(usage_scope(scope), window(period), USAGE.c.pr_number.is_not(None), USAGE.c.pr_private.is_(False))
        .group_by(USAGE.c.agent, USAGE.c.provider, USAGE.c.model, USAGE.c.pr_repo, USAGE.c.pr_number)
        .subquery()
    )
    rows = session.execute(
        sa.select(grouped, PULLS.c.merged, PULLS.c.state, PULLS.c.additions, PULLS.c.deletions).select_from(
            grouped.outerjoin(PULLS, sa.and_(PULLS.c.repo == grouped.c.pr_repo, PULLS.c.number == grouped.c.pr_number))
        )
    ).all()
    reverted = reverted_pulls(session, repos={row.pr_repo for row in rows})
    sums: dict[tuple[str | None, str], dict[str, Any]] = {}
    for row in rows:
        key = (row.agent, canonical_model(row.provider, row.model))
        acc = sums.setdefault(key, {"cost": Decimal(0), "records": 0, "unpriced": 0, "input": 0, "cache_read": 0,
                                    "pulls": {}})  # fmt: skip
        cost = usd(row.cost)
        acc["cost"] += cost
        acc["records"] += int(row.records)
        acc["unpriced"] += int(row.unpriced)
        acc["input"] += int(row.input) + int(row.cache_read) + int(row.cache_write)
        acc["cache_read"] += int(row.cache_read)
        pull = (row.pr_repo, row.pr_number)
        outcome = _pull_outcome(row, pull in reverted)
        lines = int(row.additions or 0) + int(row.deletions or 0)
        spent, _, _ = acc["pulls"].get(pull, (Decimal(0), outcome, lines))
        acc["pulls"][pull] = (spent + cost, outcome, lines)
    table = []
    for (agent, model), acc in sums.items():
        pulls: dict[Any, tuple[Decimal, str, int]] = acc["pulls"]
        merged = [p for p in pulls.values() if p[1] == "merged"]
        wasted = [p for p in pulls.values() if p[1] in ("closed", "reverted")]
        table.append(
            AgentModelRow(
                agent=agent,
                model=model,
                cost_usd=acc["cost"],
                records=acc["records"],
                unpriced_records=acc["unpriced"],
                pull_requests=len(pulls),
                merged_pull_requests=len(merged),
                merged_changed_lines=sum(p[2] for p in merged),
                merged_cost_usd=sum((p[0] for p in merged), Decimal(0)),
                wasted_pull_requests=len(wasted),
                wasted_cost_usd=sum((p[0] for p in wasted), Decimal(0)),
                input_tokens=acc["input"],
                cache_read_tokens=acc["cache_read"],
            )
        )
    # Alphabetical, not by spend: this is evidence for routing, not a ranking of consumption.
    return tuple(sorted(table, key=lambda r: (r.agent is None, r.agent or "", r.model)))


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
