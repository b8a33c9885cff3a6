"""Review loops (issue 15): a PR's spend split by review phase. Pure.

Only verdicts mark phases: an approval or a change request. Comments alone do not (a reviewer's remark is not a
round), and a dismissed review no longer tells which verdict it was. The phases, in time order:

- before the first verdict;
- each round after changes were requested, up to the next verdict;
- after an approval, up to the next change request (which opens a new round).

Boundaries: a record made at the very instant of a verdict belongs to the phase before it (the reviewer saw the
work made up to then); a record one microsecond later belongs to the phase the verdict opens. Verdicts at the same
instant are one boundary; if any of them requests changes, that boundary opens a round.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal, TypeAlias

Verdict: TypeAlias = Literal["approved", "changes_requested"]
VERDICTS = ("approved", "changes_requested")


@dataclass(frozen=True, slots=True)
class Boundary:
    at: datetime
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class ReviewPhases:
    before_review: Decimal
    rounds: tuple[Decimal, ...]  # the spend of each round of requested changes, in order
    after_approval: Decimal

    @property
    def round_count(self) -> int:
        return len(self.rounds)

    @property
    def in_rounds(self) -> Decimal:
        return sum(self.rounds, Decimal(0))

    @property
    def total(self) -> Decimal:
        return self.before_review + self.in_rounds + self.after_approval


NO_PHASES = ReviewPhases(Decimal(0), (), Decimal(0))


def boundaries(reviews: Iterable[tuple[str, datetime]]) -> tuple[Boundary, ...]:
    """The phase boundaries of (state, submitted_at) reviews: verdicts only, one per instant, in time order."""
    at: dict[datetime, Verdict] = {}
    for state, submitted in reviews:
        if state == "changes_requested":
            at[submitted] = "changes_requested"
        elif state == "approved":
            at.setdefault(submitted, "approved")
    return tuple(Boundary(moment, verdict) for moment, verdict in sorted(at.items()))


def phase_index(timestamp: datetime, bounds: Sequence[Boundary]) -> int:
    """0 before (or at) the first verdict; i after verdict i, up to and including verdict i+1."""
    return bisect_left([b.at for b in bounds], timestamp)


def split_phases(spend_by_index: Iterable[tuple[int, Decimal]], bounds: Sequence[Boundary]) -> ReviewPhases:
    """Spend bucketed by `phase_index` (as the shell's SQL does) → the phases."""
    by_index: dict[int, Decimal] = {}
    for index, cost in spend_by_index:
        by_index[index] = by_index.get(index, Decimal(0)) + cost
    rounds: list[Decimal] = []
    after_approval = Decimal(0)
    for index, bound in enumerate(bounds, start=1):
        cost = by_index.get(index, Decimal(0))
        if bound.verdict == "changes_requested":
            rounds.append(cost)
        else:
            after_approval += cost
    return ReviewPhases(by_index.get(0, Decimal(0)), tuple(rounds), after_approval)


def split_records(records: Iterable[tuple[datetime, Decimal]], reviews: Iterable[tuple[str, datetime]]) -> ReviewPhases:
    """The phases of individual (timestamp, cost) records: what the SQL bucketing must equal."""
    bounds = boundaries(reviews)
    return split_phases(((phase_index(at, bounds), cost) for at, cost in records), bounds)
