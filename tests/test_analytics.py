"""app.analytics on SQLite and PostgreSQL: the figures of a seeded history (tests/dashboard_seed.py), equal to
what the seed's table gives by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.analytics import default_period, gather_analytics
from app.outcome_report import Analytics, Period, Scope, analytics_json
from app.settings import Settings
from tests.dashboard_seed import (
    ACME_EXPECTED,
    GATEWAY,
    OTHER,
    PERIOD,
    PERIOD_SINCE,
    PERIOD_UNTIL,
    WIDGETS,
    WIDGETS_EXPECTED,
    seeded_client,
)

D = Decimal


@pytest.fixture
def seeded(settings: Settings, factory: sessionmaker[Session]) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with seeded_client(settings, factory) as pair:
        yield pair


def _analytics(factory: sessionmaker[Session], scope: Scope, since: datetime, until: datetime) -> Analytics:
    with factory() as session:
        return gather_analytics(session, scope=scope, period=Period(since, until))


def test_repository_figures(seeded: object, factory: sessionmaker[Session]) -> None:
    a = _analytics(factory, Scope("acme", WIDGETS), PERIOD_SINCE, PERIOD_UNTIL)
    e = WIDGETS_EXPECTED
    assert (a.totals.cost_usd, a.totals.records, a.totals.unpriced_records) == (D(e["cost_usd"]), 10, 2)
    assert a.tokens == 10 * 1200
    assert {o.outcome: (o.spend.cost_usd, o.pull_requests) for o in a.outcomes} == {
        name: (D(cost), prs) for name, (cost, prs) in e["outcomes"].items()
    }
    assert a.wasted == D("3")  # the spend that produced nothing: PR #2, closed without merge
    assert sum((o.spend.cost_usd for o in a.outcomes), D(0)) == a.totals.cost_usd

    # Cost per merged changed line by week of merge: *all* the PR's spend (PR #1's $0.10 of Oct 1 included).
    weeks = {w.week.isoformat(): (w.spend.cost_usd, w.changed_lines) for w in a.merged_weeks}
    assert weeks == {week: (D(cost), lines) for week, (cost, lines) in e["weeks"].items()}
    assert [w.cost_per_changed_line for w in a.merged_weeks] == [D("2.1") / 400, D("0.25") / 50]
    assert a.merged is not None and a.merged.pull_requests == 2
    assert a.merged.cost_per_changed_line == e["merged_per_line"]

    # Authors: the PR's author for matched spend, the usage's actor for the rest.
    assert {n.name: n.spend.cost_usd for n in a.by_author} == {k: D(v) for k, v in e["authors"].items()}
    alice = next(n for n in a.by_author if n.name == "alice")
    erin = next(n for n in a.by_author if n.name == "erin")
    assert (alice.on_pulls, erin.on_pulls) == (D("2.3"), D(0))
    assert [n.name for n in a.by_author][:2] == ["bob", "alice"]  # costliest first
    assert {n.name: (n.spend.cost_usd, n.spend.records) for n in a.by_agent} == {
        k: (D(cost), records) for k, (cost, records) in e["agents"].items()
    }
    assert {n.name: n.spend.cost_usd for n in a.by_model} == {k: D(v) for k, v in e["models"].items()}
    assert next(n for n in a.by_model if n.name == "mystery-model-x").spend.unpriced_records == 2

    # Unmatched by branch, the default branch included and flagged.
    branches = {
        (b.branch, b.is_default): (b.spend.cost_usd, b.spend.records, b.spend.unpriced_records)
        for b in a.unmatched_by_branch
    }
    assert branches == {key: (D(cost), n, u) for key, (cost, n, u) in e["branches"].items()}
    assert a.unmatched_by_branch[0].last_used_at == datetime(2026, 10, 10, 8, tzinfo=UTC)

    # Days: every day of the period, the empty ones too.
    assert a.bucket == "day"
    assert a.by_bucket[0].start == date(2026, 10, 3) and len(a.by_bucket) == 14
    assert {b.start.isoformat(): b.cost_usd for b in a.by_bucket if b.cost_usd} == {
        k: D(v) for k, v in e["days"].items()
    }
    oct6 = next(b for b in a.by_bucket if b.start == date(2026, 10, 6))
    assert oct6.by_model == (("claude-sonnet-4-5", D("2.5")), ("gpt-5", D("0.8")))

    # Top PRs by spend in the period, with their outcome, their whole spend and cost per line.
    assert [(p.number, p.spend.cost_usd, p.lifetime.cost_usd) for p in a.top_pulls] == [
        (n, D(cost), D(total)) for n, cost, total in e["top"]
    ]
    first, cache = a.top_pulls[0], a.top_pulls[1]
    assert (first.outcome, first.author, first.changed_lines) == ("closed", "bob", 900)
    assert cache.outcome == "merged" and cache.cost_per_changed_line == D("2.1") / 400
    assert [r.repo for r in a.repositories] == [WIDGETS]


def test_owner_figures_add_up_over_its_repositories(seeded: object, factory: sessionmaker[Session]) -> None:
    a = _analytics(factory, Scope("acme"), PERIOD_SINCE, PERIOD_UNTIL)
    assert (a.totals.cost_usd, a.totals.records) == (D(ACME_EXPECTED["cost_usd"]), ACME_EXPECTED["records"])
    assert {r.repo: r.spend.cost_usd for r in a.repositories} == {
        k: D(v) for k, v in ACME_EXPECTED["repositories"].items()
    }
    assert {w.week.isoformat(): (w.spend.cost_usd, w.changed_lines) for w in a.merged_weeks} == {
        k: (D(cost), lines) for k, (cost, lines) in ACME_EXPECTED["weeks"].items()
    }
    gateway = next(r for r in a.repositories if r.repo == GATEWAY)
    assert gateway.by_outcome == {"merged": D(1), "reverted": D(0), "closed": D(0), "open": D(0), "unmatched": D("0.1")}
    assert gateway.merged_cost_per_changed_line == D("0.01")
    assert ("main", True) in {(b.branch, b.is_default) for b in a.unmatched_by_branch if b.repo == GATEWAY}
    assert sum((r.spend.cost_usd for r in a.repositories), D(0)) == a.totals.cost_usd
    assert "mallory" not in {n.name for n in a.by_author}  # another owner's usage never shows

    other = _analytics(factory, Scope("umbrella"), PERIOD_SINCE, PERIOD_UNTIL)
    assert other.totals.cost_usd == D("9.99") and [r.repo for r in other.repositories] == [OTHER]
    assert other.outcome("unmatched").spend.cost_usd == D("9.99")


def test_the_period_bounds_what_is_counted(seeded: object, factory: sessionmaker[Session]) -> None:
    widgets = Scope("acme", WIDGETS)
    wider = _analytics(factory, widgets, datetime(2026, 10, 1, tzinfo=UTC), PERIOD_UNTIL)
    assert wider.totals.cost_usd == D("6.75")  # PR #1's work of Oct 1 is now in
    assert next(p for p in wider.top_pulls if p.number == 1).spend.cost_usd == D("2.1")

    # Oct 14–16: no spend at all, but PR #4 was merged on the 14th: its cost per line counts its whole spend.
    late = _analytics(factory, widgets, datetime(2026, 10, 14, tzinfo=UTC), PERIOD_UNTIL)
    assert late.totals == type(late.totals)()
    assert [(w.week, w.spend.cost_usd, w.changed_lines) for w in late.merged_weeks] == [
        (date(2026, 10, 12), D("0.25"), 50)
    ]
    assert late.top_pulls == () and late.unmatched_by_branch == ()
    assert all(not b.by_model for b in late.by_bucket) and len(late.by_bucket) == 3


def test_long_periods_are_bucketed_by_week(seeded: object, factory: sessionmaker[Session]) -> None:
    a = _analytics(factory, Scope("acme", WIDGETS), datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    assert a.bucket == "week"
    assert all(b.start.weekday() == 0 for b in a.by_bucket)
    weekly = {b.start.isoformat(): b.cost_usd for b in a.by_bucket if b.cost_usd}
    assert weekly == {"2026-09-28": D("0.1"), "2026-10-05": D("6.1"), "2026-10-12": D("0.55")}


def test_default_period(seeded: object, factory: sessionmaker[Session]) -> None:
    widgets = Scope("acme", WIDGETS)
    with factory() as session:
        # No usage in the 30 days before "now": the 30 days up to the data's last day instead.
        stale = default_period(session, widgets, now=datetime(2026, 11, 28, 12, tzinfo=UTC))
        assert stale == Period(datetime(2026, 9, 14, tzinfo=UTC), datetime(2026, 10, 14, tzinfo=UTC))
        recent_now = datetime(2026, 10, 20, 12, tzinfo=UTC)
        recent = default_period(session, widgets, now=recent_now)
        assert recent == Period(datetime(2026, 9, 20, 12, tzinfo=UTC), recent_now)
        empty = default_period(session, Scope("nobody"), now=recent_now)
        assert empty == Period(datetime(2026, 9, 20, 12, tzinfo=UTC), recent_now)
        since = datetime(2026, 10, 1, tzinfo=UTC)
        assert default_period(session, widgets, now=recent_now, since=since).until == recent_now


def test_report_endpoints_answer_the_same_figures_as_json(
    seeded: tuple[TestClient, dict[str, str]], factory: sessionmaker[Session]
) -> None:
    client, tokens = seeded
    auth = {"Authorization": f"Bearer {tokens['acme']}"}
    body = client.get(f"/v1/repos/{WIDGETS}/report", params=PERIOD, headers=auth).json()
    expected = analytics_json(_analytics(factory, Scope("acme", WIDGETS), PERIOD_SINCE, PERIOD_UNTIL))
    outcome_keys = {
        "by_agent_model",
        "review_loops",
        "cache",
        "people",
        "team_medians",
    }  # tests/test_routing_table.py & co
    assert {key: value for key, value in body.items() if key not in outcome_keys} == expected
    assert outcome_keys <= set(body)
    assert (body["since"], body["until"]) == ("2026-10-03T00:00:00+00:00", "2026-10-17T00:00:00+00:00")
    assert (body["cost_usd"], body["records"], body["unpriced_records"]) == ("6.65", 10, 2)
    assert body["spend_that_produced_nothing_usd"] == "3"
    assert body["outcomes"]["closed"] == {"cost_usd": "3", "records": 2, "unpriced_records": 0, "pull_requests": 1}
    assert body["cost_per_merged_line_by_week"][0] == {
        "week": "2026-10-05",
        "pull_requests": 1,
        "cost_usd": "2.1",
        "records": 3,
        "unpriced_records": 0,
        "changed_lines": 400,
        "cost_per_changed_line_usd": "0.00525",
    }
    assert body["merged"]["cost_per_changed_line_usd"] == "0.00522"
    assert body["unmatched_by_branch"][0] | {"last_used_at": None} == {
        "repo": WIDGETS,
        "branch": "main",
        "default_branch": True,
        "cost_usd": "0.7",
        "records": 1,
        "unpriced_records": 0,
        "last_used_at": None,
    }
    assert body["by_date"][3] == {
        "date": "2026-10-06",
        "cost_usd": "3.3",
        "by_model": [{"model": "claude-sonnet-4-5", "cost_usd": "2.5"}, {"model": "gpt-5", "cost_usd": "0.8"}],
    }

    org = client.get("/v1/orgs/acme/report", params=PERIOD, headers=auth).json()
    assert (org["owner"], org["repo"], org["cost_usd"]) == ("acme", None, "7.75")
    assert {r["repo"]: r["cost_usd"] for r in org["repositories"]} == ACME_EXPECTED["repositories"]
