"""People by name with outcomes, and team medians (issue 15, `app.people_view`)."""

from __future__ import annotations

from decimal import Decimal

from app.outcome_report import NamedSpend, Spend
from app.people_view import PersonOutcome, team_medians, with_unlinked

D = Decimal


def test_people_by_name_with_their_unlinked_spend_and_team_medians() -> None:
    people = (PersonOutcome("bob", 2, D(6), 1, 100, D(2)), PersonOutcome("Alice", 1, D(1), 1, 50, D(1)))
    by_author = (
        NamedSpend("bob", Spend(D(7)), on_pulls=D(6)),
        NamedSpend("erin", Spend(D("0.5")), on_pulls=D(0)),
        NamedSpend("Alice", Spend(D(1)), on_pulls=D(1)),
    )
    merged = with_unlinked(people, by_author)
    assert [p.name for p in merged] == ["Alice", "bob", "erin"]  # by name, never by spend
    assert [p.total_cost_usd for p in merged] == [D(1), D(7), D("0.5")]
    medians = team_medians(merged)
    assert (medians.people, medians.cost_usd, medians.merged_changed_lines) == (3, D(1), D(50))
    assert medians.cost_per_merged_line == (D(1) / 50 + D(2) / 100) / 2
    assert team_medians(()).cost_usd is None
