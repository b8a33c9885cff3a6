"""Per-person outcomes (issue 15): for each PR author, the spend on their PRs in the period next to what was
merged and stayed merged. Shell: the scope's rollup cells (app.daily_books), folded in Python. Sorted by name,
never by spend (`app.people_view`)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from app.books import usd
from app.daily_books import pull_facts, pull_groups
from app.outcome_report import Period, Scope
from app.people_view import PersonOutcome
from app.reverts import reverted_pulls


@dataclass(frozen=True, slots=True)
class _Row:
    """A known PR's spend in the period (nano-dollars) and its facts."""

    pr_repo: str
    pr_number: int
    cost: int
    pull: Any

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pull, name)


def person_outcomes(session: Session, *, scope: Scope, period: Period) -> tuple[PersonOutcome, ...]:
    spend: dict[tuple[str, int], int] = {}
    for (_, _, _, repo, number, private), sums in pull_groups(session, scope=scope, period=period).items():
        if not private:
            spend[(repo, number)] = spend.get((repo, number), 0) + sums[0]
    facts = pull_facts(session, spend)
    rows = [
        _Row(repo, number, cost, facts[(repo, number)])
        for (repo, number), cost in spend.items()
        if (repo, number) in facts
    ]
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
