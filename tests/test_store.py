"""One call counted once, in its owner's books (DESIGN §2 "One call, one record"), through the HTTP API on SQLite
and PostgreSQL: the dedupe key is per owner, reports of one call from several sources count once, and a record
that grows in place refreshes its pull request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.tables import PULLS
from tests.desk import Desk, record
from tests.github_payloads import make_pull_request_event

FIXTURES = Path(__file__).resolve().parent / "fixtures"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
VCS = {"x-vcs-repository-url-full": "https://github.com/acme/widgets"}


def open_pull(desk: Desk, *, number: int = 12, head_ref: str = "feat/cache", created_at: datetime = T0) -> None:
    desk.deliver(
        "pull_request", make_pull_request_event("opened", number=number, head_ref=head_ref, created_at=created_at)
    )
    desk.settle()


# -- tenancy of the dedupe key ---------------------------------------------------------------------------------------


def test_another_owner_can_neither_overwrite_nor_shadow_nor_probe_a_record(desk: Desk) -> None:
    open_pull(desk)
    mine = record("call-1", at=T0 + timedelta(minutes=5), cost_usd="1.00")
    assert desk.usage(mine)["accepted"] == 1
    desk.settle()
    assert desk.summary(12)["usage"]["cost_usd"] == "1"

    # The attacker sends the same id, bigger, for a repository of its own: stored as its own record, and acme's
    # figures do not move.
    theirs = record("call-1", at=T0 + timedelta(minutes=5), repo="evil/anything", cost_usd="999", output_tokens=10**9)
    answer = desk.usage(theirs, owner="evil")
    assert (answer["accepted"], answer["duplicates"]) == (1, 0)  # nothing says acme's id exists
    desk.settle()
    assert desk.summary(12)["usage"]["cost_usd"] == "1"
    assert [(row.owner, row.cost_nanousd) for row in desk.rows(record_id="call-1")] == [
        ("acme", 10**9),
        ("evil", 999 * 10**9),
    ]
    # Each owner's resend is a duplicate of its own record only.
    assert desk.usage(mine)["duplicates"] == 1
    assert desk.usage(theirs, owner="evil")["duplicates"] == 1


def test_an_owner_that_sends_first_does_not_make_the_other_ones_record_a_duplicate(desk: Desk) -> None:
    first = desk.usage(record("call-1", at=T0, repo="evil/app"), owner="evil")
    assert first["accepted"] == 1
    second = desk.usage(record("call-1", at=T0))
    assert (second["accepted"], second["duplicates"]) == (1, 0)
    assert {row.owner for row in desk.rows(record_id="call-1")} == {"acme", "evil"}


def test_keep_the_largest_stays_within_one_owner(desk: Desk) -> None:
    small = record("line-1", at=T0, output_tokens=10)
    desk.usage(small)
    desk.usage(record("line-1", at=T0, repo="evil/app", output_tokens=5000), owner="evil")
    assert [row.output_tokens for row in desk.rows(owner="acme")] == [10]
    assert desk.usage(record("line-1", at=T0, output_tokens=20))["accepted"] == 1  # acme's own growth
    assert [row.output_tokens for row in desk.rows(owner="acme")] == [20]


def test_call_ids_are_per_owner_too(desk: Desk) -> None:
    desk.usage(record("a", at=T0, call_id="msg_shared"))
    answer = desk.usage(record("b", at=T0, repo="evil/app", call_id="msg_shared"), owner="evil")
    assert (answer["accepted"], answer["duplicates"]) == (1, 0)


# -- one call, several sources ---------------------------------------------------------------------------------------


def _events() -> bytes:
    return (FIXTURES / "claude_code" / "session_as_events.json").read_bytes()


def _transcript() -> bytes:
    return (FIXTURES / "claude_code" / "session_streaming.jsonl").read_bytes()


@pytest.mark.parametrize("events_first", [True, False], ids=["events-then-transcript", "transcript-then-events"])
def test_claude_code_events_and_the_imported_transcript_count_each_call_once(desk: Desk, events_first: bool) -> None:
    open_pull(desk, head_ref="feat/cache-layer", created_at=datetime(2025, 10, 14, 9, 0, tzinfo=UTC))
    sends = [
        ("/v1/ingest/otlp/v1/logs", _events(), {"content-type": "application/json"}),
        ("/v1/ingest/claude-code", _transcript(), {"content-type": "application/x-ndjson", **VCS}),
    ]
    if not events_first:
        sends.reverse()
    first, second = (desk.post(path, body, **headers) for path, body, headers in sends)
    assert first["accepted"] == 3
    assert (second["accepted"], second["duplicates"]) == (0, 3)
    desk.settle()
    summary = desk.summary(12)
    assert summary["usage"]["records"] == 3
    assert summary["usage"]["output_tokens"] == 245 + 120 + 88
    stored, other = ("otlp", "claude-code") if events_first else ("claude-code", "otlp")
    assert summary["by_source"] == [
        {"source": stored, "records": 3, "cost_usd": summary["usage"]["cost_usd"], "also_seen_by": {other: 3}}
    ]


def test_a_gateway_log_and_the_agents_span_of_the_same_call_count_once(desk: Desk) -> None:
    open_pull(desk, created_at=datetime(2025, 11, 17, 8, 0, tzinfo=UTC))
    gateway = (FIXTURES / "litellm" / "anthropic_call_seen_by_a_span.json").read_bytes()
    span = (FIXTURES / "otlp" / "anthropic_span_of_a_litellm_call.json").read_bytes()
    assert desk.post("/v1/ingest/litellm", gateway)["accepted"] == 1
    desk.settle()
    # LiteLLM knew the repository but not the branch: unmatched so far.
    assert desk.summary(12)["usage"]["records"] == 0
    answer = desk.post("/v1/ingest/otlp/v1/traces", span)
    assert (answer["accepted"], answer["duplicates"]) == (0, 1)
    desk.settle()
    # The span filled in the branch the stored record lacked: it now counts on the PR, once, at LiteLLM's cost.
    summary = desk.summary(12)
    assert summary["usage"]["records"] == 1
    assert summary["usage"]["cost_usd"] == "0.0201"
    assert summary["by_source"][0]["also_seen_by"] == {"otlp": 1}
    assert desk.matches() == {"msg_01Hq7sPzE1bV4kT9xWcYd2Lm": ("acme/widgets", 12, "branch")}


def test_one_call_twice_in_the_same_batch_counts_once(desk: Desk) -> None:
    answer = desk.usage(
        record("from-gateway", at=T0, call_id="chatcmpl-1", source="litellm", branch=None),
        record("from-agent", at=T0, call_id="chatcmpl-1", source="otlp", pr=12),
    )
    assert (answer["accepted"], answer["duplicates"]) == (1, 1)
    (row,) = desk.rows()
    assert (row.record_id, row.pr, row.also_seen_by) == ("from-gateway", 12, "otlp")


def test_a_resent_record_with_call_ids_is_a_duplicate_of_itself_not_a_new_call(desk: Desk) -> None:
    desk.usage(record("r1", at=T0, call_id="msg_1"))
    assert desk.usage(record("r1", at=T0, call_id="msg_1"))["duplicates"] == 1
    grown = desk.usage(record("r1", at=T0, call_id="msg_1", output_tokens=999))
    assert grown["accepted"] == 1
    assert [row.output_tokens for row in desk.rows()] == [999]


# -- a record that grows in place ------------------------------------------------------------------------------------


def test_a_record_that_grows_refreshes_its_pull_request(desk: Desk) -> None:
    open_pull(desk)
    desk.usage(record("streamed", at=T0 + timedelta(minutes=1), cost_usd="1.00", output_tokens=10))
    desk.settle()
    assert "**$1.00**" in _stored_comment(desk)
    desk.usage(record("streamed", at=T0 + timedelta(minutes=1), cost_usd="3.50", output_tokens=900))
    desk.settle()
    assert desk.summary(12)["usage"]["cost_usd"] == "3.5"
    assert "**$3.50**" in _stored_comment(desk)  # the comment followed, not only the API


def _stored_comment(desk: Desk) -> str:

    with desk.factory() as session:
        body = session.execute(PULLS.select().where(PULLS.c.number == 12)).one().comment_body
    assert isinstance(body, str)
    return body


def test_a_copilot_trace_counts_its_calls_not_its_agent_totals(desk: Desk) -> None:
    open_pull(desk, head_ref="feat/copilot", created_at=datetime(2025, 11, 14, 9, 0, tzinfo=UTC))
    body = (FIXTURES / "otlp" / "copilot_span_tree.json").read_bytes()
    answer = desk.post("/v1/ingest/otlp/v1/traces", body)
    assert (answer["accepted"], answer["skipped"]) == (4, 5)
    desk.settle()
    usage = desk.summary(12)["usage"]
    assert (usage["records"], usage["input_tokens"], usage["output_tokens"]) == (4, 8000, 860)
