"""Review loops in the database (issue 15): the SQL bucketing of a PR's spend at its verdicts equals the
record-by-record split (`app.review_phases`) on SQLite and PostgreSQL; the comment, the rollup and the
per-repository share show it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from app.db import utcnow
from app.facts import gather_facts
from app.money import to_nanousd
from app.outcome_report import Period, Scope
from app.publish import rendered_values
from app.pull_outcomes import review_phases
from app.render import render
from app.report import build_report
from app.review_loops import review_loops
from app.review_phases import split_records
from app.tables import PULLS, REVIEWS, USAGE

REPO = "acme/widgets"
T = datetime(2026, 10, 5, 12, tzinfo=UTC)
US = timedelta(microseconds=1)
D = Decimal


def _seed(
    factory: sessionmaker[Session], records: list[tuple[datetime, str]], reviews: list[tuple[str, datetime]]
) -> None:
    now = utcnow()
    with factory() as session, session.begin():
        session.execute(sa.insert(PULLS).values(
            repo=REPO, number=7, title="Retry", author="alice", state="closed", merged=True, additions=40,
            deletions=2, created_at=T - timedelta(days=1), closed_at=T + timedelta(days=1),
            merged_at=T + timedelta(days=1), updated_at=now, head_sha="a" * 40,
        ))  # fmt: skip
        for index, (state, at) in enumerate(reviews):
            session.execute(sa.insert(REVIEWS).values(
                repo=REPO, number=7, review_id=index + 1, reviewer="bob", state=state, submitted_at=at
            ))  # fmt: skip
        for index, (at, cost) in enumerate(records):
            session.execute(sa.insert(USAGE).values(
                source="api", record_id=f"r{index}", timestamp=at, model="gpt-5", owner="acme", repo=REPO,
                received_at=now, pr_repo=REPO, pr_number=7, cost_nanousd=to_nanousd(D(cost)), agent="codex",
            ))  # fmt: skip


RECORDS = [
    (T - US, "1.00"),
    (T, "2.00"),
    (T + US, "1.10"),
    (T + timedelta(hours=1), "2.00"),
    (T + timedelta(hours=1) + US, "1.00"),
    (T + timedelta(hours=3), "1.26"),
    (T + timedelta(hours=3, seconds=1), "1.00"),
]
REVIEWS_ = [
    ("changes_requested", T),
    ("commented", T + timedelta(minutes=30)),
    ("changes_requested", T + timedelta(hours=1)),
    ("approved", T + timedelta(hours=3)),
]


def test_sql_buckets_equal_the_record_by_record_split(factory: sessionmaker[Session]) -> None:
    _seed(factory, RECORDS, REVIEWS_)
    with factory() as session:
        found = review_phases(session, repo=REPO, number=7)
    expected = split_records([(at, D(cost)) for at, cost in RECORDS], REVIEWS_)
    assert found == expected
    assert (found.before_review, found.rounds, found.after_approval) == (D(3), (D("3.1"), D("2.26")), D(1))


def test_the_comment_and_the_rollup_show_the_rounds(factory: sessionmaker[Session]) -> None:
    _seed(factory, RECORDS, REVIEWS_)
    with factory() as session:
        report = build_report(gather_facts(session, repo=REPO, number=7, public_url="http://t"))
    rendered = render(report)
    assert "| **Review loops** | $5.36 of $9.36 went into 2 rounds of changes · $1.00 after approval |" in rendered.body
    assert report.summary_json()["review"]["rounds"] == 2
    assert report.summary_json()["review"]["spend_in_rounds_usd"] == "5.36"
    values = rendered_values(report, rendered)
    with factory() as session, session.begin():
        session.execute(sa.update(PULLS).where(PULLS.c.number == 7).values(
            spend_nanousd=values["spend_nanousd"], review_rounds=values["review_rounds"],
            review_round_nanousd=values["review_round_nanousd"],
        ))  # fmt: skip
    with factory() as session:
        loops = review_loops(session, scope=Scope("acme"), period=Period(T, T + timedelta(days=7)))
    assert [(r.repo, r.period.rounds, r.period.in_rounds, r.period.spend) for r in loops] == [
        (REPO, 2, D("5.36"), D("9.36"))
    ]
    assert loops[0].period.share == D("5.36") / D("9.36") and loops[0].previous.pull_requests == 0
