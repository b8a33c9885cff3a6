import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app.attribution import Attribution
from app.records import PayloadError, Rejection, UsageRecord
from app.sources.claude_code import parse

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ALPHA = FIXTURES / "ccusage" / "claude__projects__project-alpha__session-alpha__chat.jsonl"
BETA = FIXTURES / "ccusage" / "claude__projects__project-beta__session-beta__chat.jsonl"
STREAMING = FIXTURES / "claude_code" / "session_streaming.jsonl"
SESSION = "8c0e7d41-3b2a-4f19-9e5d-6a7b8c9d0e1f"


def assistant(
    message_id: str = "msg_1",
    request_id: str | None = "req_1",
    output: Any = 10,
    timestamp: Any = "2025-10-14T09:30:00Z",
    **changes: Any,
) -> dict[str, Any]:
    line: dict[str, Any] = {
        "type": "assistant",
        "sessionId": "s-1",
        "timestamp": timestamp,
        "gitBranch": "feat/x",
        "message": {
            "id": message_id,
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "usage": {
                "input_tokens": 3,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 100,
                "output_tokens": output,
            },
        },
    }
    if request_id is not None:
        line["requestId"] = request_id
    line.update(changes)
    return line


def jsonl(*lines: Any) -> bytes:
    return b"".join((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines)


def test_ccusage_fixtures_give_exactly_their_calls() -> None:
    alpha, beta = parse(ALPHA.read_bytes()), parse(BETA.read_bytes())
    common = {"source": "claude-code", "provider": "anthropic", "agent": "claude-code"}
    assert alpha.records == [
        UsageRecord(
            id="msg-alpha-1:req-alpha-1",
            call_ids=("msg-alpha-1", "req-alpha-1"),
            timestamp=datetime(2026, 1, 9, 10, 0, tzinfo=UTC),
            model="claude-sonnet-4-20250514",
            input_tokens=100,  # Anthropic semantics: already excludes the cache tokens
            cache_read_tokens=10,
            cache_write_tokens=25,
            output_tokens=50,
            session_id="session-alpha",
            **common,
        ),
        UsageRecord(
            id="msg-alpha-2:req-alpha-2",
            call_ids=("msg-alpha-2", "req-alpha-2"),
            timestamp=datetime(2026, 1, 9, 12, 30, tzinfo=UTC),
            model="claude-opus-4-20250514",
            input_tokens=200,
            cache_read_tokens=20,
            cache_write_tokens=50,
            output_tokens=75,
            session_id="session-alpha",
            **common,
        ),
        UsageRecord(
            id="msg-alpha-3:req-alpha-3",
            call_ids=("msg-alpha-3", "req-alpha-3"),
            timestamp=datetime(2026, 1, 10, 9, 15, tzinfo=UTC),
            model="claude-sonnet-4-20250514",
            input_tokens=300,
            cache_read_tokens=40,
            output_tokens=125,
            session_id="session-alpha",
            **common,
        ),
    ]
    assert beta.records == [
        UsageRecord(
            id="msg-beta-1:req-beta-1",
            call_ids=("msg-beta-1", "req-beta-1"),
            timestamp=datetime(2026, 2, 3, 8, 0, tzinfo=UTC),
            model="claude-haiku-4-5-20251001",
            input_tokens=50,
            cache_read_tokens=15,
            cache_write_tokens=5,
            output_tokens=25,
            session_id="session-beta",
            **common,
        ),
        UsageRecord(
            id="msg-beta-2:req-beta-2",
            call_ids=("msg-beta-2", "req-beta-2"),
            timestamp=datetime(2026, 2, 3, 11, 45, tzinfo=UTC),
            model="claude-haiku-4-5-20251001",
            input_tokens=80,
            cache_read_tokens=25,
            cache_write_tokens=10,
            output_tokens=35,
            session_id="session-beta",
            **common,
        ),
    ]
    for batch in (alpha, beta):
        assert batch.rejected == []
        assert batch.skipped == 0


def test_legacy_cost_usd_is_not_taken_as_reported_cost() -> None:
    assert all(json.loads(line)["costUSD"] > 0 for line in ALPHA.read_text().splitlines())
    assert all(record.cost_usd is None for record in parse(ALPHA.read_bytes()).records)


def test_streaming_transcript_keeps_one_record_per_call() -> None:
    batch = parse(STREAMING.read_bytes())
    common = {
        "source": "claude-code",
        "provider": "anthropic",
        "agent": "claude-code",
        "session_id": SESSION,
        "attribution": Attribution(branch="feat/cache-layer"),
    }
    assert batch.records == [
        # three lines (thinking, text, tool_use): the final output count, the first line's time
        UsageRecord(
            id="msg_01XaQ2b3C4d5E6f7G8h9J0kL:req_011CTzYa1b2c3d4e5f6g7h8i",
            call_ids=("msg_01XaQ2b3C4d5E6f7G8h9J0kL", "req_011CTzYa1b2c3d4e5f6g7h8i"),
            timestamp=datetime(2025, 10, 14, 9, 30, 4, 120000, tzinfo=UTC),
            model="claude-sonnet-4-5-20250929",
            input_tokens=4,
            cache_read_tokens=15021,
            cache_write_tokens=1532,
            output_tokens=245,
            **common,
        ),
        UsageRecord(
            id="msg_01YbR3c4D5e6F7g8H9j0K1mN:req_011CTzYb9c8d7e6f5g4h3i2j",
            call_ids=("msg_01YbR3c4D5e6F7g8H9j0K1mN", "req_011CTzYb9c8d7e6f5g4h3i2j"),
            timestamp=datetime(2025, 10, 14, 9, 30, 15, 300000, tzinfo=UTC),
            model="claude-sonnet-4-5-20250929",
            input_tokens=6,
            cache_read_tokens=16553,
            cache_write_tokens=2210,
            output_tokens=120,
            **common,
        ),
        # the sub-agent's call (isSidechain) is real usage
        UsageRecord(
            id="msg_01ZcS4d5E6f7G8h9J0k1L2nP:req_011CTzYc1d2e3f4g5h6i7j8k",
            call_ids=("msg_01ZcS4d5E6f7G8h9J0k1L2nP", "req_011CTzYc1d2e3f4g5h6i7j8k"),
            timestamp=datetime(2025, 10, 14, 9, 30, 17, 50000, tzinfo=UTC),
            model="claude-haiku-4-5-20251001",
            input_tokens=3,
            cache_read_tokens=9876,
            output_tokens=88,
            **common,
        ),
    ]
    assert batch.positions == [4, 6, 9]
    assert batch.rejected == []
    # summary, 3 user lines, 2 + 1 superseded streaming copies, the <synthetic> error message
    assert batch.skipped == 8
    assert len(batch.records) + batch.skipped == len(STREAMING.read_text().splitlines())


def test_most_tokens_wins_whatever_the_line_order() -> None:
    final = assistant(output=245, timestamp="2025-10-14T09:30:06Z")
    partial = assistant(output=8, timestamp="2025-10-14T09:30:04Z")
    for lines in ((partial, final), (final, partial)):
        batch = parse(jsonl(*lines))
        assert [r.output_tokens for r in batch.records] == [245]
        assert batch.records[0].timestamp == datetime(2025, 10, 14, 9, 30, 4, tzinfo=UTC)
        assert batch.skipped == 1


def test_same_message_in_different_requests_are_different_calls() -> None:
    batch = parse(jsonl(assistant(request_id="req_1"), assistant(request_id="req_2"), assistant(request_id=None)))
    assert [r.id for r in batch.records] == ["msg_1:req_1", "msg_1:req_2", "msg_1"]


def test_lines_without_usage_are_skipped() -> None:
    no_usage = assistant()
    del no_usage["message"]["usage"]
    synthetic = assistant(message_id="m2")
    synthetic["message"]["model"] = "<synthetic>"
    user = {"type": "user", "message": {"role": "user", "content": "hi"}, "timestamp": "2025-10-14T09:30:00Z"}
    zero = assistant(message_id="m3", output=0)
    zero["message"]["usage"]["input_tokens"] = zero["message"]["usage"]["cache_read_input_tokens"] = 0
    batch = parse(jsonl(no_usage, synthetic, user, {"type": "summary", "summary": "x"}, zero))
    assert batch.records == []
    assert batch.rejected == []
    assert batch.skipped == 5


def test_cache_only_call_and_counts_as_strings() -> None:
    line = assistant(output="0")
    line["message"]["usage"] = {"input_tokens": "0", "cache_read_input_tokens": "52000", "output_tokens": 0}
    record = parse(jsonl(line)).records[0]
    assert (record.input_tokens, record.cache_read_tokens, record.cache_write_tokens) == (0, 52000, 0)


def test_bad_lines_are_rejected_by_index_and_the_rest_kept() -> None:
    negative = assistant(message_id="m2", output=-5)
    no_model = assistant(message_id="m3")
    del no_model["message"]["model"]
    bad_time = assistant(message_id="m4", timestamp="last tuesday")
    no_time = assistant(message_id="m5", timestamp=None)
    body = jsonl(assistant(), b"{not json", negative, no_model, b"", bad_time, [1, 2], no_time, assistant("m6"))
    batch = parse(body)
    assert [r.id for r in batch.records] == ["msg_1:req_1", "m6:req_1"]
    assert batch.positions == [0, 7]  # blank lines are not counted
    assert [r.index for r in batch.rejected] == [1, 2, 3, 4, 5, 6]
    assert batch.rejected[0].error.startswith("line is not valid JSON")
    assert batch.rejected[1:] == [
        Rejection(2, "message.usage.output_tokens: a count cannot be negative (-5)"),
        Rejection(3, "message.model is missing"),
        Rejection(4, "timestamp: unreadable timestamp 'last tuesday'"),
        Rejection(5, "line is not a JSON object"),
        Rejection(6, "timestamp is missing"),
    ]


def test_branch_comes_from_git_branch_and_detached_head_names_none() -> None:
    batch = parse(jsonl(assistant("m1", gitBranch="refs/heads/feat/y"), assistant("m2", gitBranch="HEAD")))
    assert [r.attribution for r in batch.records] == [Attribution(branch="feat/y"), Attribution()]


def test_repository_comes_from_the_request_headers_later() -> None:
    record = parse(jsonl(assistant())).records[0]
    headers = Attribution.parse(repo="https://github.com/acme/widgets", branch="main", commit="3f2c9a1")
    assert record.with_attribution(headers).attribution == Attribution(
        repo="acme/widgets", branch="feat/x", commit="3f2c9a1"
    )


def test_json_array_body_is_read_like_lines() -> None:
    body = json.dumps([assistant("m1"), assistant("m2")]).encode()
    assert [r.id for r in parse(body).records] == ["m1:req_1", "m2:req_1"]


def test_line_without_message_id_gets_a_stable_id() -> None:
    by_uuid = assistant(message_id="", uuid="a-0001")
    by_hash = assistant(message_id="")
    ids = [r.id for r in parse(jsonl(by_uuid, by_hash)).records]
    assert ids[0] == "uuid:a-0001"
    assert ids[1].startswith("sha256:")
    assert ids[1] == parse(jsonl(by_hash)).records[0].id


@pytest.mark.parametrize("body", [b"", b"\n\n", b"this is not json", b"<html>\n</html>\n", b"\xff\xfe"])
def test_unreadable_body_raises(body: bytes) -> None:
    with pytest.raises(PayloadError):
        parse(body)
