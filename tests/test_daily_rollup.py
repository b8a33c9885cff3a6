"""The daily rollup (app.daily_rollup) always equals the aggregation of the counted records, and the pages that read
it (app.analytics, app.routing_table, app.people_outcomes) give the figures the records give.

The property test drives production code end to end on SQLite and PostgreSQL: usage of two owners through the ingest
API (new records, the same record grown, the same call from a second source, another owner's records naming the
first owner's repository, shared upstream or not), pull request webhooks (opened, pushes, merged or closed: each one
re-matches) and the worker. After each step has settled, the rollup equals a brute-force aggregation of the usage
rows in Python, and the analytics, the routing table and people's outcomes of each scope, over whole days and over
a period that starts and ends mid-day, equal what the records-based computation (tests/raw_analytics.py,
tests/raw_outcomes.py) gives.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import daily_rollup
from app.analytics import gather_analytics
from app.db import as_utc
from app.outcome_report import Period, Scope
from app.people_outcomes import person_outcomes
from app.routing_table import agent_model_table
from app.tables import USAGE, USAGE_DAYS
from tests.conftest import FIXTURES
from tests.desk import Desk, record
from tests.github_payloads import make_pull_request_event
from tests.raw_analytics import gather_analytics as raw_analytics
from tests.raw_outcomes import agent_model_table as raw_agent_model_table
from tests.raw_outcomes import person_outcomes as raw_person_outcomes

T0 = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)
SHAS = ["1" * 40, "2" * 40, "3" * 40]
_examples = itertools.count()
_FIGURES = ("records", "unpriced", "cost", "input", "cache_read", "cache_write", "output")


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def brute_force(session: Any) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """The rollup computed in Python from every usage row: the cells and their figures."""
    cells: dict[tuple[Any, ...], list[Any]] = {}
    for row in session.execute(sa.select(USAGE).where(USAGE.c.match_error.is_(None))):
        unmatched = row.pr_number is None
        key = (
            row.owner, as_utc(row.timestamp).date(), row.repo, row.pr_repo, row.pr_number, bool(row.pr_private),
            row.model, row.provider, row.agent, row.actor if unmatched else None, row.branch if unmatched else None,
        )  # fmt: skip
        acc = cells.setdefault(key, [0] * len(_FIGURES) + [None])
        cost = row.cost_nanousd or 0
        values = (1, int(row.cost_nanousd is None), cost, row.input_tokens, row.cache_read_tokens,
                  row.cache_write_tokens, row.output_tokens)  # fmt: skip
        for index, value in enumerate(values):
            acc[index] += value
        moment = as_utc(row.timestamp)
        acc[-1] = moment if acc[-1] is None else max(acc[-1], moment)
    return {key: tuple(acc) for key, acc in cells.items()}


def rolled(session: Any) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    split = daily_rollup.SPLIT
    cells = {}
    for row in session.execute(sa.select(USAGE_DAYS)):
        key = tuple(getattr(row, name) for name in daily_rollup.KEYS)
        key = (*key[:5], bool(key[5]), *key[6:])
        figures = (
            row.records, row.unpriced,
            *(getattr(row, f"{name}_hi") * split + getattr(row, f"{name}_lo") for name, _ in daily_rollup.SUMMED),
        )  # fmt: skip
        cells[key] = (*figures, as_utc(row.last_at))
    return cells


PERIODS = (
    Period(datetime(2026, 10, 4, tzinfo=UTC), datetime(2026, 10, 8, tzinfo=UTC)),  # whole days: the rollup alone
    Period(at(-5), at(29)),  # mid-day at both ends: the ends from the records
    Period(at(1), at(3)),  # inside one day: the records alone
)
FORK_AND_OWN = ("umbrella/widgets", "umbrella/tools")
SCOPES = (
    Scope("acme"),
    Scope("acme", "acme/widgets"),
    Scope("umbrella"),
    *(Scope("umbrella", repo) for repo in FORK_AND_OWN),
)


def assert_rollup_equals_records(desk: Desk) -> None:
    desk.settle()
    with desk.factory() as session:
        assert rolled(session) == brute_force(session)
        for scope, period in itertools.product(SCOPES, PERIODS):
            assert gather_analytics(session, scope=scope, period=period) == raw_analytics(
                session, scope=scope, period=period
            ), (scope, period)
            assert agent_model_table(session, scope=scope, period=period) == raw_agent_model_table(
                session, scope=scope, period=period
            )
            assert person_outcomes(session, scope=scope, period=period) == raw_person_outcomes(
                session, scope=scope, period=period
            )


# -- random histories ------------------------------------------------------------------------------------------------


@st.composite
def usage_steps(draw: st.DrawFn) -> list[dict[str, Any]]:
    steps = []
    for _ in range(draw(st.integers(1, 10))):
        fields: dict[str, Any] = {
            "id": f"r{draw(st.integers(0, 5))}",  # a small pool: the same record again, grown or not
            "owner": draw(st.sampled_from(["acme", "acme", "umbrella"])),
            "share_upstream": draw(st.booleans()),
            "source": draw(st.sampled_from(["api", "litellm"])),
            "hours": draw(st.integers(-24, 40)) / 2,  # three UTC days
            "branch": draw(st.sampled_from(["a", "b", "main", None])),
            "model": draw(st.sampled_from(["claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "gpt-4o", "in-house"])),
            "actor": draw(st.sampled_from(["alice", "bob", None])),
            "agent": draw(st.sampled_from(["claude-code", "codex", None])),
            "session_id": draw(st.sampled_from(["s1", "s2", None])),
            "input_tokens": draw(st.integers(0, 3)) * 1000,
            "cache_read_tokens": draw(st.integers(0, 2)) * 500,
            "output_tokens": draw(st.integers(0, 3)) * 100,
            "priced": draw(st.booleans()),
        }
        # acme's repository; umbrella's fork of it (whose branches can be acme's PRs) and its own repository
        fields["repo"] = "acme/widgets" if fields["owner"] == "acme" else draw(st.sampled_from(FORK_AND_OWN))
        if draw(st.booleans()):
            fields["call_id"] = f"call-{draw(st.integers(0, 3))}"  # the same call from another source
        if draw(st.integers(0, 3)) == 0:
            fields["commit"] = draw(st.sampled_from(SHAS))[:12]
        if draw(st.integers(0, 4)) == 0:
            fields["pr"] = draw(st.integers(1, 3))
        steps.append(fields)
    return steps


def pull_steps(number: int, branch: str, heads: list[str], created: int, end: str, fork: bool) -> list[Any]:
    common = {"repo": "acme/widgets", "number": number, "head_ref": branch, "created_at": at(created)}
    if fork:
        common["head_repo"] = "umbrella/widgets"
    events = [
        make_pull_request_event(
            "opened" if i == 0 else "synchronize", head_sha=head, updated_at=at(created + i * 5), **common
        )
        for i, head in enumerate(heads)
    ]
    if end != "open":
        closed = at(created + 5 * len(heads))
        events.append(
            make_pull_request_event("closed", head_sha=heads[-1], closed_at=closed, merged=end == "merged", **common)
        )
    return events


def _body(step: dict[str, Any], *, n: int) -> dict[str, Any]:
    skipped = {"hours", "priced", "session_id", "id", "owner", "share_upstream"}
    fields = {k: v for k, v in step.items() if k not in skipped}
    body = record(f"m{n}-{step['id']}", at=at(step["hours"]), **fields)
    if step["session_id"] is not None:
        body["session_id"] = f"{step['session_id']}-{n}"
    if "call_id" in step:
        body["call_id"] = f"m{n}-{step['call_id']}"
    if step["priced"]:
        body["cost_usd"] = str((step["input_tokens"] + step["output_tokens"]) / 1000)
    else:
        del body["cost_usd"]  # unpriced: counted apart, never as 0
    return body


def _clear(desk: Desk) -> None:
    """Each example starts from no usage and no PRs (the database is the test's, shared by its examples)."""
    with desk.factory() as session, session.begin():
        for table in ("usage_calls", "usage", "usage_days", "pull_spend", "pushes", "pull_request_commits"):
            session.execute(sa.text(f"DELETE FROM {table}"))
        session.execute(sa.text("DELETE FROM pull_requests"))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_rollup_and_the_pages_equal_the_records_after_each_step(desk: Desk, data: st.DataObject) -> None:
    n = next(_examples)
    _clear(desk)
    queues = {}
    for number in range(1, data.draw(st.integers(1, 3)) + 1):
        queues[number] = pull_steps(
            number,
            data.draw(st.sampled_from(["a", "b"])),
            data.draw(st.lists(st.sampled_from(SHAS), min_size=1, max_size=3)),
            data.draw(st.integers(-10, 10)),
            data.draw(st.sampled_from(["open", "merged", "closed"])),
            data.draw(st.booleans()),
        )
    steps: list[tuple[str, Any]] = [("record", step) for step in data.draw(usage_steps())]
    steps += [("pull", number) for number, events in queues.items() for _ in events]
    for kind, item in data.draw(st.permutations(steps)):
        if kind == "pull":
            desk.deliver("pull_request", queues[item].pop(0))
        else:
            answer = desk.usage(_body(item, n=n), owner=item["owner"], share_upstream=item["share_upstream"])
            assert answer["status_code"] == 200, answer
        assert_rollup_equals_records(desk)


# -- examples --------------------------------------------------------------------------------------------------------


def test_another_owners_usage_never_reaches_my_pages(desk: Desk) -> None:
    fork = {"head_repo": "umbrella/widgets", "head_ref": "feat/cache"}
    desk.deliver("pull_request", make_pull_request_event("opened", created_at=at(-1), **fork))
    desk.usage(record("mine", at=at(1), cost_usd="1.00", pr=12))
    # Records naming my repository are refused; records of the attacker's fork, on my PR's head branch, are
    # matched to my PR without consent: they stay in the attacker's books.
    refused = desk.usage(record("theirs", at=at(2), cost_usd="500.00", actor="mallory"), owner="umbrella")
    assert refused["status_code"] in (400, 403, 422) or not refused.get("accepted"), refused
    desk.usage(
        record("fork", at=at(2), cost_usd="700.00", actor="mallory", repo="umbrella/widgets"),
        record("fork-pr", at=at(3), cost_usd="300.00", actor="mallory", repo="umbrella/widgets", pr=12),
        owner="umbrella",
    )
    assert_rollup_equals_records(desk)
    assert {row.record_id: bool(row.pr_private) for row in desk.rows()} == {
        "mine": False,
        "fork": True,
        "fork-pr": True,
    }
    period = PERIODS[0]
    with desk.factory() as session:
        for scope in (Scope("acme"), Scope("acme", "acme/widgets")):
            mine = gather_analytics(session, scope=scope, period=period)
            assert (mine.totals.records, mine.totals.cost_usd) == (1, 1), scope
            assert {author.name for author in mine.by_author} == {"alice"}
            assert [(p.number, p.spend.records) for p in mine.top_pulls] == [(12, 1)]
            assert [row.records for row in agent_model_table(session, scope=scope, period=period)] == [1]
        theirs = gather_analytics(session, scope=Scope("umbrella"), period=period)
        assert (theirs.totals.records, theirs.totals.cost_usd) == (2, 1000)


def test_deleting_usage_rows_keeps_the_rollup_and_the_products_own_deletions_take_them_out(desk: Desk) -> None:
    desk.usage(
        record("old", at=at(-20), cost_usd="3.00"),
        record("dropped", at=at(1), cost_usd="2.00", branch="b"),
        record("kept", at=at(2), cost_usd="1.00", branch="b"),
    )
    assert_rollup_equals_records(desk)
    with desk.factory() as session, session.begin():
        before = rolled(session)
        session.execute(sa.delete(USAGE).where(USAGE.c.record_id == "old"))  # as pruning deletes: not un-counted
        assert rolled(session) == before
        daily_rollup.discount(session, USAGE.c.record_id == "dropped")  # the product's own deletion
        session.execute(sa.delete(USAGE).where(USAGE.c.record_id == "dropped"))
        after = rolled(session)
    by_day = {key[1]: figures for key, figures in after.items()}
    assert by_day[at(-20).date()][:3] == (1, 0, 3_000_000_000)  # the pruned day keeps its figures
    # The branch's cell lost the dropped record, and its latest record is the one left.
    assert by_day[at(1).date()][:3] == (1, 0, 1_000_000_000)
    assert by_day[at(1).date()][-1] == at(2)


def test_a_record_set_aside_by_matching_leaves_the_rollup(desk: Desk) -> None:
    desk.usage(record("fine", at=at(1)), record("odd", at=at(2)))
    desk.settle()
    with desk.factory() as session, session.begin():
        # A commit no ingest would store (rows written by older versions or by hand): matching sets it aside.
        session.execute(sa.update(USAGE).where(USAGE.c.record_id == "odd").values(commit="NOT-HEX", matched_at=None))
    desk.deliver("pull_request", make_pull_request_event("opened", head_ref="feat/cache", created_at=at(-1)))
    assert_rollup_equals_records(desk)
    with desk.factory() as session:
        assert sum(figures[0] for figures in rolled(session).values()) == 1


def test_rebuilding_gives_what_the_triggers_kept(desk: Desk) -> None:
    desk.deliver("pull_request", make_pull_request_event("opened", head_ref="feat/cache", created_at=at(-1)))
    desk.usage(
        record("a", at=at(1), session_id="s1"),
        record("b", at=at(30), branch="main", agent="codex"),
        record("c", at=at(4), model="in-house", cost_usd=None, source="litellm"),
    )
    desk.settle()
    with desk.factory() as session, session.begin():
        kept = rolled(session)
        daily_rollup.rebuild(session.connection())
        assert rolled(session) == kept == brute_force(session)


def test_metric_records_superseded_by_their_sessions_events_leave_the_rollup(desk: Desk) -> None:
    """Claude Code metrics stored first, then the same session's events: the metric records are deleted (events
    win) and the rollup loses them in the same transaction."""
    otlp = FIXTURES / "otlp"
    headers = {"Content-Type": "application/json"}
    metrics = desk.post("/v1/ingest/otlp/v1/metrics", (otlp / "claude_code_metrics.json").read_bytes(), **headers)
    assert metrics["status_code"] == 200, metrics
    with desk.factory() as session:
        assert rolled(session) == brute_force(session) != {}
        sources = {row.source for row in session.execute(sa.select(USAGE.c.source))}
    events = desk.post("/v1/ingest/otlp/v1/logs", (otlp / "claude_code_session_events.json").read_bytes(), **headers)
    assert events["status_code"] == 200, events
    assert_rollup_equals_records(desk)
    with desk.factory() as session:
        assert {row.source for row in session.execute(sa.select(USAGE.c.source))} != sources
        assert sum(figures[0] for figures in rolled(session).values()) == 2  # the two api_request events
