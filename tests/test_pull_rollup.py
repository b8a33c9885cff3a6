"""The per-PR rollup always equals the aggregation of the PR's records (app.pull_spend, app.pull_rollup).

The property test drives production code end to end on SQLite and PostgreSQL: usage through the ingest API (new
records, the same record grown, the same call reported by a second source), pull request webhooks (opened, pushes,
closed: every one re-matches), and the worker. After each step has settled, every PR's rollup, read the way the
summary reads it, equals the same four aggregates computed from its records.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.db import as_utc
from app.facts import gather_facts
from app.pull_rollup import rebuild_all
from app.pull_spend import PullSpend, push_digest, raw_pull_spend, rolled_pull_spend, rollup_rows
from app.report import Push
from app.tables import PULL_SPEND, PULLS, PUSHES
from tests.desk import Desk, record
from tests.github_payloads import make_pull_request_event

T0 = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)
SHAS = ["1" * 40, "2" * 40, "3" * 40]
_examples = itertools.count()


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def _pushes(session: Any, repo: str, number: int) -> list[Push]:
    rows = session.execute(
        sa.select(PUSHES.c.sha, PUSHES.c.pushed_at).where(PUSHES.c.repo == repo, PUSHES.c.number == number)
    )
    return sorted((Push(row.sha, as_utc(row.pushed_at)) for row in rows), key=lambda push: push.pushed_at)


def _normal(spend: PullSpend) -> PullSpend:
    """Order-free: the report sorts every list itself."""
    return PullSpend(
        totals=spend.totals,
        by_model=tuple(sorted(spend.by_model, key=repr)),
        by_actor=tuple(sorted(spend.by_actor, key=repr)),
        by_source=tuple(sorted(spend.by_source, key=repr)),
        spend_points=tuple(sorted(spend.spend_points, key=repr)),
    )


def rolled_and_raw(desk: Desk, repo: str) -> list[tuple[int, PullSpend, PullSpend]]:
    """(number, the rollup's answer, the records' answer) per PR of `repo`; asserts each rollup is current."""
    found = []
    with desk.factory() as session:
        for pull in session.execute(sa.select(PULLS).where(PULLS.c.repo == repo)):
            pushes = _pushes(session, repo, pull.number)
            rows = rollup_rows(session, repo=repo, number=pull.number)
            assert {row.pushes_digest for row in rows} <= {push_digest(p.pushed_at for p in pushes)}
            assert len({row.pr_sessions for row in rows}) <= 1
            rolled = rolled_pull_spend(rows)
            raw = raw_pull_spend(session, repo=repo, number=pull.number, pushes=pushes)
            found.append((pull.number, _normal(rolled), _normal(raw)))
    return found


def assert_rollups_equal_records(desk: Desk, repo: str) -> None:
    desk.settle()
    for number, rolled, raw in rolled_and_raw(desk, repo):
        assert rolled == raw, f"{repo}#{number}"


# -- random histories ------------------------------------------------------------------------------------------------


@st.composite
def usage_steps(draw: st.DrawFn) -> list[dict[str, Any]]:
    steps = []
    for _ in range(draw(st.integers(1, 10))):
        fields: dict[str, Any] = {
            "id": f"r{draw(st.integers(0, 5))}",  # a small pool: the same record again, grown or not
            "source": draw(st.sampled_from(["api", "litellm"])),
            "hours": draw(st.integers(-4, 14)) / 2,
            "branch": draw(st.sampled_from(["a", "b", "main", None])),
            "model": draw(st.sampled_from(["claude-sonnet-4-5", "gpt-4o", "in-house-model"])),
            "actor": draw(st.sampled_from(["alice", "bob", None])),
            "agent": draw(st.sampled_from(["claude-code", "codex", None])),
            "session_id": draw(st.sampled_from(["s1", "s2", None])),
            "input_tokens": draw(st.integers(0, 3)) * 1000,
            "output_tokens": draw(st.integers(0, 3)) * 100,
            "priced": draw(st.booleans()),
        }
        if draw(st.booleans()):
            fields["call_id"] = f"call-{draw(st.integers(0, 3))}"  # the same call from another source
        if draw(st.integers(0, 3)) == 0:
            fields["commit"] = draw(st.sampled_from(SHAS))[:12]
        if draw(st.integers(0, 4)) == 0:
            fields["pr"] = draw(st.integers(1, 3))
        steps.append(fields)
    return steps


def pull_steps(number: int, branch: str, heads: list[str], created: int, closed: bool, repo: str) -> list[Any]:
    common = {"repo": repo, "number": number, "head_ref": branch, "created_at": at(created)}
    events = [
        make_pull_request_event(
            "opened" if i == 0 else "synchronize",
            head_sha=head,
            updated_at=at(created + i * 2),  # each push a couple of hours after the last: records fall between
            **common,
        )
        for i, head in enumerate(heads)
    ]
    if closed:
        events.append(
            make_pull_request_event("closed", head_sha=heads[-1], closed_at=at(created + 2 * len(heads)), **common)
        )
    return events


def _body(step: dict[str, Any], *, n: int, repo: str) -> dict[str, Any]:
    fields = {k: v for k, v in step.items() if k not in {"hours", "priced", "session_id", "id"}}
    body = record(f"m{n}-{step['id']}", at=at(step["hours"]), repo=repo, **fields)
    body["cache_read_tokens"] = 0
    if step["session_id"] is not None:
        body["session_id"] = f"{step['session_id']}-{n}"
    if "call_id" in step:
        body["call_id"] = f"m{n}-{step['call_id']}"
    if step["priced"]:
        body["cost_usd"] = str((step["input_tokens"] + step["output_tokens"]) / 1000)
    else:
        del body["cost_usd"]  # an unknown model stays unpriced: counted apart, never as 0
    return body


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_rollup_equals_its_records_after_each_step(desk: Desk, data: st.DataObject) -> None:
    n = next(_examples)
    repo = f"acme/roll{n}"
    queues = {}
    for number in range(1, data.draw(st.integers(1, 3)) + 1):
        heads = data.draw(st.lists(st.sampled_from(SHAS), min_size=1, max_size=3))
        queues[number] = pull_steps(
            number,
            data.draw(st.sampled_from(["a", "b"])),
            heads,
            data.draw(st.integers(0, 4)),
            data.draw(st.booleans()),
            repo,
        )
    steps: list[tuple[str, Any]] = [("record", step) for step in data.draw(usage_steps())]
    steps += [("pull", number) for number, events in queues.items() for _ in events]
    for kind, item in data.draw(st.permutations(steps)):
        if kind == "pull":
            desk.deliver("pull_request", queues[item].pop(0))
        else:
            answer = desk.usage(_body(item, n=n, repo=repo))
            assert answer["status_code"] == 200, answer
        assert_rollups_equal_records(desk, repo)


# -- examples --------------------------------------------------------------------------------------------------------


def test_the_summary_reads_the_rollup_and_a_new_push_falls_back_to_the_records(desk: Desk) -> None:
    repo = "acme/widgets"
    desk.deliver("pull_request", make_pull_request_event("opened", head_sha=SHAS[0], created_at=at(0)))
    desk.usage(
        record("early", at=at(1), cost_usd="1.00"),
        record("late", at=at(5), cost_usd="2.00", model="gpt-4o", actor="bob"),
    )
    desk.settle()
    with desk.factory() as session:
        rows = session.execute(sa.select(PULL_SPEND).where(PULL_SPEND.c.repo == repo)).all()
    assert {(row.model, row.actor, row.push_interval, row.records) for row in rows} == {
        ("claude-sonnet-4-5", "alice", 1, 1),
        ("gpt-4o", "bob", 1, 1),
    }
    assert _timeline(desk) == [2]
    # A push between the two records: until the refresh rewrites the rollup, the summary splits the records.
    desk.deliver(
        "pull_request",
        make_pull_request_event("synchronize", head_sha=SHAS[1], created_at=at(0), updated_at=at(3)),
    )
    assert desk.client.app.state.worker.run_once()  # type: ignore[attr-defined]  # the webhook, not the refresh
    with desk.factory() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(PUSHES)).scalar_one() == 2
    assert _timeline(desk) == [1, 1]
    desk.settle()
    assert _timeline(desk) == [1, 1]
    assert_rollups_equal_records(desk, repo)
    assert desk.summary(12)["usage"]["records"] == 2


def _timeline(desk: Desk) -> list[int]:
    """Records per interval between pushes, as the PR summary and comment gather them."""
    with desk.factory() as session:
        facts = gather_facts(session, repo="acme/widgets", number=12, public_url="http://tokentrail.test")
    return [point.records for point in facts.spend_points]


def test_rebuilding_every_rollup_at_once_gives_what_matching_kept(desk: Desk) -> None:
    repo = "acme/widgets"
    desk.deliver("pull_request", make_pull_request_event("opened", head_sha=SHAS[0], created_at=at(0)))
    desk.deliver(
        "pull_request",
        make_pull_request_event("synchronize", head_sha=SHAS[1], created_at=at(0), updated_at=at(3)),
    )
    desk.usage(
        record("a", at=at(1), session_id="s1"),
        record("b", at=at(4), session_id="s2", agent="codex"),
        record("c", at=at(4), model="in-house-model", cost_usd=None, source="litellm"),
    )
    desk.settle()
    kept = rolled_and_raw(desk, repo)
    with desk.factory() as session, session.begin():
        rebuild_all(session.connection())
    assert rolled_and_raw(desk, repo) == kept
    assert kept[0][1].totals.records == 3 and kept[0][1].totals.sessions == 2


def test_the_repository_median_is_the_median_of_every_merged_prs_cost_per_line(factory: Any) -> None:
    from statistics import median

    from app.facts import repo_median_cost_per_line
    from app.money import from_nanousd

    rows = [  # (spend in nano-dollars, additions, deletions, merged): ties, an even count, and rows that do not count
        (3_000_000_000, 10, 0, True), (1_000_000_000, 3, 0, True), (2_000_000_000, 20, 0, True),
        (1_000_000_000, 10, 0, True), (7, 1, 2, True), (5_000_000_000, 0, 0, True), (9_000_000_000, 1, 0, False),
        (0, 5, 5, True),
    ]  # fmt: skip
    with factory() as session, session.begin():
        for number, (spend, additions, deletions, merged) in enumerate(rows, start=1):
            session.execute(
                sa.insert(PULLS).values(
                    repo="acme/median", number=number, spend_nanousd=spend, additions=additions,
                    deletions=deletions, merged=merged, created_at=T0, updated_at=T0,
                )
            )  # fmt: skip
    counted = [(s, a + d) for s, a, d, m in rows if m and s > 0 and a + d > 0]
    for size in (len(counted), len(counted) - 1):  # even, then odd
        with factory() as session, session.begin():
            if size < len(counted):
                session.execute(sa.delete(PULLS).where(PULLS.c.repo == "acme/median", PULLS.c.number == 5))
                counted = [row for row in counted if row != (7, 3)]
            expected = median([(from_nanousd(s) or 0) / lines for s, lines in counted])
            assert repo_median_cost_per_line(session, "acme/median") == expected
    with factory() as session:
        assert repo_median_cost_per_line(session, "acme/none") is None
