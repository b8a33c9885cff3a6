"""`tokentrail prune` (app.retention): a PR's summary, comment and budget verdict are the same before and after the
raw records of old days are removed, also after a re-match and a new push; a pruned record or call sent again is a
duplicate; the command runs for real, in a subprocess, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from app.tables import PRUNED_SPEND, USAGE, USAGE_KEYS
from tests.cli_runner import run_cli
from tests.desk import Desk, record
from tests.github_payloads import make_pull_request_event, make_review_event

REPO, NUMBER = "acme/widgets", 12
SHAS = ["1" * 40, "2" * 40, "3" * 40, "4" * 40, "5" * 40]


def day(month: int, day_: int, hour: int = 9) -> datetime:
    return datetime(2026, month, day_, hour, tzinfo=UTC)


def _pull(action: str, head: int, **fields: Any) -> dict[str, Any]:
    return make_pull_request_event(action, head_sha=SHAS[head], created_at=day(8, 10), **fields)


def unpriced(body: dict[str, Any]) -> dict[str, Any]:
    del body["cost_usd"]  # an unknown model stays unpriced: counted apart, never as 0
    return body


def seed_history(desk: Desk) -> None:
    """A PR from August to November: pushes and review verdicts between its records, two sessions, an unpriced
    model, the same call from two sources, a shared-upstream owner's record, and another PR's records."""
    desk.deliver("pull_request", _pull("opened", 0))
    desk.usage(
        record("a1", at=day(8, 11), session_id="s1", call_id="call-1"),
        unpriced(record("a2", at=day(8, 20), model="in-house-model", actor="bob", session_id="s2")),
        record("a3", at=day(9, 5), session_id="s1", agent="codex", cost_usd="2.50"),
        record("b1", at=day(9, 12), branch="other", cost_usd="7.00"),  # no PR: unmatched usage
    )
    desk.usage(record("a1-again", at=day(8, 11), call_id="call-1", source="litellm"), owner="acme")
    desk.deliver("pull_request", _pull("synchronize", 1, updated_at=day(8, 15)))
    desk.deliver("pull_request", _pull("synchronize", 2, updated_at=day(9, 1)))
    opened = _pull("opened", 2)
    desk.deliver("pull_request_review", make_review_event("changes_requested", pull_event=opened, review_id=1,
                                                          submitted_at=day(9, 10)))  # fmt: skip
    desk.usage(
        record("a4", at=day(10, 3), session_id="s3", cost_usd="4.00", output_tokens=900),
        record("a5", at=day(11, 2), session_id="s1", cost_usd="0.75"),
    )
    desk.deliver("pull_request", _pull("synchronize", 3, updated_at=day(10, 10)))
    desk.deliver("pull_request_review", make_review_event("approved", pull_event=opened, review_id=2,
                                                          submitted_at=day(10, 20)))  # fmt: skip
    desk.settle()


def views(desk: Desk) -> dict[str, Any]:
    """What a PR shows: its summary, its budget verdict against a limit, and its comment's text."""
    headers = {"Authorization": f"Bearer {desk.token('acme')}"}
    path = f"/v1/repos/{REPO}/pulls/{NUMBER}"
    budget = desk.client.get(f"{path}/budget?max_cost=5", headers=headers).json()
    comment = desk.client.get(f"{path}/comment.md", headers=headers)
    assert comment.status_code == 200, comment.text
    summary = desk.summary(NUMBER)
    return {
        "summary": summary,
        "budget": {key: budget[key] for key in ("status", "cost_usd", "reasons")},
        "comment": comment.text,
    }


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
    desk.deliver("pull_request", _pull("edited", 3))
    desk.settle()
    assert views(desk) == before

    # A new push: until its refresh runs the summary aggregates the records (and the carried groups), then the
    # rollup is rewritten; the figures are the same either way, and the new interval holds nothing.
    desk.deliver("pull_request", _pull("synchronize", 4, updated_at=day(11, 20)))
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
        keys = session.execute(sa.select(sa.func.count()).select_from(USAGE_KEYS)).scalar_one()
    assert (carried, keys) == (3, 4)  # a1, a2, a3 counted on the PR; a1-again was a duplicate, never stored


def test_a_bad_date_is_a_clear_error(database_url: str) -> None:
    for bad in ("2026-13-01", "yesterday", ""):
        done = run_cli("prune", "--before", bad, database_url=database_url)
        assert done.returncode == 2
        assert "is not a date: write YYYY-MM-DD" in done.stderr
        assert "Traceback" not in done.stderr
