"""`tokentrail prune` (app.retention): a PR's summary, comment and budget verdict are the same before and after the
raw records of old days are removed, also after a re-match and a new push; a pruned record or call sent again is a
duplicate; the command runs for real, in a subprocess, on both databases."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import partitions
from app.retention import prune as prune_records
from app.tables import PRUNED_SPEND, USAGE, USAGE_KEYS
from tests.cli_runner import run_cli
from tests.desk import Desk, record
from tests.github_payloads import make_pull_request_event, make_review_event
from tests.prune_scene import NUMBER, SHAS, day, pull_event, seed_history, views


def prune(desk: Desk, database_url: str, before: str, *extra: str) -> str:
    done = run_cli("prune", "--before", before, *extra, database_url=database_url)
    assert done.returncode == 0, done.stderr
    return done.stdout


def usage_count(desk: Desk) -> int:
    with desk.factory() as session:
        return int(session.execute(sa.select(sa.func.count()).select_from(USAGE)).scalar_one())


def test_prune_keeps_every_figure_of_the_pr(desk: Desk, database_url: str) -> None:
    seed_history(desk)
    before = views(desk)
    assert before["summary"]["usage"]["records"] == 5
    assert before["summary"]["review"]["rounds"] == 1
    assert before["budget"]["status"] == "fail"

    dry = prune(desk, database_url, "2026-10-01", "--dry-run")
    assert "would remove 4 usage records before 2026-10-01" in dry
    assert usage_count(desk) == 6
    said = prune(desk, database_url, "2026-10-01")
    assert "removed 4 usage records before 2026-10-01" in said
    assert "carried the figures of 1 pull request" in said
    assert usage_count(desk) == 2  # October's and November's
    assert views(desk) == before

    # A re-match rewrites the rollup from the remaining records and what was carried.
    desk.deliver("pull_request", pull_event("edited", 3))
    desk.settle()
    assert views(desk) == before

    # A new push: until its refresh runs the summary aggregates the records (and the carried groups), then the
    # rollup is rewritten; the figures are the same either way, and the new interval holds nothing.
    desk.deliver("pull_request", pull_event("synchronize", 4, updated_at=day(11, 20)))
    assert desk.client.app.state.worker.run_once()  # type: ignore[attr-defined]  # the webhook alone
    mid = desk.summary(NUMBER)
    desk.settle()
    after = views(desk)
    assert after["summary"]["usage"] == mid["usage"] == before["summary"]["usage"]
    for key in ("by_model", "by_actor", "by_source", "review", "budget"):
        assert after["summary"][key] == mid[key] == before["summary"][key], key
    assert after["budget"] == before["budget"]


def test_a_pruned_record_or_call_sent_again_is_a_duplicate(desk: Desk, database_url: str) -> None:
    seed_history(desk)
    before = views(desk)
    prune(desk, database_url, "2026-10-01")
    again = desk.usage(record("a3", at=day(9, 5), session_id="s1", agent="codex", cost_usd="2.50"))
    assert (again["accepted"], again["duplicates"]) == (0, 1), again
    moved = desk.usage(record("a2", at=day(11, 25), cost_usd="9.00"))  # the same record, at another time
    assert (moved["accepted"], moved["duplicates"]) == (0, 1), moved
    new_call = desk.usage(record("a3", at=day(9, 5), call_id="call-never-seen"))  # a pruned record, new call id
    assert (new_call["accepted"], new_call["duplicates"]) == (0, 1), new_call
    call = desk.usage(record("a1-otel", at=day(8, 11), call_id="call-1", source="helicone"))
    assert (call["accepted"], call["duplicates"]) == (0, 1), call
    desk.settle()
    assert views(desk) == before
    # Another owner's record with the same source and id is its own record: keys are per owner.
    other = desk.usage(record("a3", at=day(9, 5), repo="globex/site"), owner="globex")
    assert (other["accepted"], other["duplicates"]) == (1, 0), other


def test_new_records_after_pruning_count_on_top(desk: Desk, database_url: str) -> None:
    seed_history(desk)
    before = views(desk)["summary"]["usage"]
    prune(desk, database_url, "2026-10-01")
    answer = desk.usage(record("a6", at=day(11, 28), session_id="s1", cost_usd="1.25"))
    assert answer["accepted"] == 1
    desk.settle()
    after = desk.summary(NUMBER)["usage"]
    assert after["records"] == before["records"] + 1
    assert float(after["cost_usd"]) == float(before["cost_usd"]) + 1.25


def test_pruning_twice_and_pruning_nothing(desk: Desk, database_url: str) -> None:
    seed_history(desk)
    before = views(desk)
    prune(desk, database_url, "2026-09-01")
    prune(desk, database_url, "2026-10-01")
    assert "removed 0 usage records" in prune(desk, database_url, "2026-10-01")
    assert views(desk) == before
    with desk.factory() as session:
        carried = session.execute(sa.select(sa.func.sum(PRUNED_SPEND.c.records))).scalar_one()
        keys = set(session.execute(sa.select(USAGE_KEYS.c.record_id)).scalars())
        live = set(session.execute(sa.select(USAGE.c.record_id)).scalars())
    assert carried == 3  # a1, a2, a3 counted on the PR; a1-again was a duplicate, never stored
    assert keys - live == {"a1", "a2", "a3", "b1"}  # PostgreSQL keeps every key there, SQLite the pruned ones


def test_a_bad_date_is_a_clear_error(database_url: str) -> None:
    for bad in ("2026-13-01", "yesterday", ""):
        done = run_cli("prune", "--before", bad, database_url=database_url)
        assert done.returncode == 2
        assert "is not a date: write YYYY-MM-DD" in done.stderr
        assert "Traceback" not in done.stderr


# -- random histories ------------------------------------------------------------------------------------------------

_examples = itertools.count()


@st.composite
def histories(draw: st.DrawFn) -> dict[str, Any]:
    """Records, pushes and review verdicts of one PR spread over August to November, and a day to prune before."""
    records = [
        {
            "day": draw(st.integers(0, 110)),
            "model": draw(st.sampled_from(["claude-sonnet-4-5", "gpt-4o", "in-house-model"])),
            "actor": draw(st.sampled_from(["alice", "bob"])),
            "agent": draw(st.sampled_from(["claude-code", "codex", None])),
            "session": draw(st.sampled_from(["s1", "s2", None])),
            "source": draw(st.sampled_from(["api", "litellm"])),
            "call": draw(st.sampled_from([None, None, None, "c1"])),  # now and then the same call twice
            "cost": draw(st.sampled_from([None, "0.25", "1.50"])),
        }
        for _ in range(draw(st.integers(1, 8)))
    ]
    return {
        "records": records,
        "pushes": sorted(draw(st.sets(st.integers(1, 110), max_size=3))),
        "reviews": sorted(draw(st.sets(st.integers(1, 110), max_size=2))),
        "prune": draw(st.integers(0, 112)),
    }


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories())
def test_any_history_shows_the_same_figures_after_pruning(desk: Desk, history: dict[str, Any]) -> None:
    n = next(_examples)
    repo, start = f"acme/prune{n}", datetime(2026, 8, 1, tzinfo=UTC)

    def at(days: int) -> datetime:
        return start + timedelta(days=days, hours=n % 12)

    engine = desk.factory.kw["bind"]
    with engine.begin() as connection:  # PostgreSQL: August to October in partitions of their own, so that
        for month in (8, 9, 10):  # pruning drops them; SQLite has none
            if partitions.is_partitioned(connection):
                partitions.create_month(connection, date(2026, month, 1))
    opened = make_pull_request_event("opened", repo=repo, head_sha=SHAS[0], created_at=start)
    desk.deliver("pull_request", opened)
    bodies = []
    for i, item in enumerate(history["records"]):
        body = record(f"r{n}-{i}", at=at(item["day"]), repo=repo, model=item["model"], actor=item["actor"],
                      source=item["source"], cost_usd=item["cost"], pr=NUMBER)  # fmt: skip
        for name, value in (
            ("agent", item["agent"]),
            ("session_id", item["session"]),
            ("call_id", item["call"] and f"{item['call']}-{n}"),
        ):
            body[name] = value
        bodies.append({key: value for key, value in body.items() if value is not None})
    assert desk.usage(*bodies)["status_code"] == 200
    for i, days in enumerate(history["pushes"], start=1):
        event = make_pull_request_event("synchronize", repo=repo, head_sha=SHAS[i], created_at=start,
                                        updated_at=at(days))  # fmt: skip
        desk.deliver("pull_request", event)
    for i, days in enumerate(history["reviews"]):
        state = "approved" if i else "changes_requested"
        desk.deliver("pull_request_review", make_review_event(state, pull_event=opened, review_id=100 * n + i,
                                                              submitted_at=at(days)))  # fmt: skip
    desk.settle()
    before = views(desk, repo=repo)
    prune_records(engine, (start + timedelta(days=history["prune"])).date())
    assert views(desk, repo=repo) == before
    desk.deliver("pull_request", make_pull_request_event("edited", repo=repo, head_sha=SHAS[0], created_at=start))
    desk.settle()
    assert views(desk, repo=repo) == before
