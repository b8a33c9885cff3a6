import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app.attribution import Attribution
from app.records import PayloadError, Rejection, UsageRecord
from app.sources.codex import parse

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CCUSAGE = FIXTURES / "ccusage" / "codex__sessions__project-alpha__session-alpha.jsonl"
ROLLOUT = FIXTURES / "codex" / "rollout_model_switch.jsonl"
SESSION = "0199e2a4-7b1c-7d3e-9f5a-6b8c0d2e4f61"
COMMIT = "3f2c9a1b4d5e6f708192a3b4c5d6e7f8091a2b3c"


def usage(inp: Any, cached: Any, out: Any, reasoning: Any = 0) -> dict[str, Any]:
    total = inp + out if isinstance(inp, int) and isinstance(out, int) else 0
    return {
        "input_tokens": inp,
        "cached_input_tokens": cached,
        "output_tokens": out,
        "reasoning_output_tokens": reasoning,
        "total_tokens": total,
    }


def token_count(total: dict[str, Any], last: dict[str, Any] | None = None, **info: Any) -> dict[str, Any]:
    body = {"total_token_usage": total, "last_token_usage": last or total, "model_context_window": 272000}
    body.update(info)
    return {
        "timestamp": "2025-10-14T11:00:11Z",
        "type": "event_msg",
        "payload": {"type": "token_count", "info": body, "rate_limits": None},
    }


def meta(**git: str) -> dict[str, Any]:
    payload = {"id": "sess-1", "cwd": "/w", "originator": "codex_cli_rs", "cli_version": "0.46.0", "git": git}
    return {"timestamp": "2025-10-14T11:00:00Z", "type": "session_meta", "payload": payload}


def context(model: str) -> dict[str, Any]:
    return {
        "timestamp": "2025-10-14T11:00:05Z",
        "type": "turn_context",
        "payload": {"cwd": "/w", "model": model},
    }


def jsonl(*lines: Any) -> bytes:
    return b"".join((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines)


def test_ccusage_fixture_without_session_meta() -> None:
    body = CCUSAGE.read_bytes()
    batch = parse(body)
    first_line = json.loads(body.splitlines()[0])
    canonical = json.dumps(first_line, sort_keys=True, separators=(",", ":")).encode()
    session = "rollout-" + hashlib.sha256(canonical).hexdigest()[:24]
    common = {"source": "codex", "provider": "openai", "agent": "codex", "session_id": session}
    assert batch.records == [
        UsageRecord(
            id=f"{session}:1200",
            timestamp=datetime(2026, 5, 13, 9, 1, tzinfo=UTC),
            model="gpt-5.2-codex",
            input_tokens=750,  # 1000 input include 250 cached
            cache_read_tokens=250,
            output_tokens=125,
            reasoning_tokens=75,
            **common,
        ),
        UsageRecord(
            id=f"{session}:4200",
            timestamp=datetime(2026, 5, 14, 10, 0, tzinfo=UTC),
            model="gpt-5.3-codex",  # the token_count's own model beats the turn_context's
            input_tokens=2000,  # (3500 - 1000) - (750 - 250)
            cache_read_tokens=500,
            output_tokens=300,
            reasoning_tokens=200,
            **common,
        ),
    ]
    assert batch.positions == [1, 2]
    assert batch.skipped == 1  # the turn_context line
    assert batch.rejected == []


def test_rollout_with_repeats_and_a_model_switch() -> None:
    batch = parse(ROLLOUT.read_bytes())
    common = {
        "source": "codex",
        "provider": "openai",
        "agent": "codex",
        "session_id": SESSION,
        "attribution": Attribution(repo="acme/widgets", branch="feat/cache-layer", commit=COMMIT),
    }
    assert batch.records == [
        UsageRecord(
            id=f"{SESSION}:8400",
            timestamp=datetime(2025, 10, 14, 11, 0, 11, 250000, tzinfo=UTC),
            model="gpt-5-codex",
            input_tokens=2000,
            cache_read_tokens=6000,
            output_tokens=400,
            reasoning_tokens=256,
            call_ids=(f"codex:{SESSION}:8000:6000:400:256#",),  # as codex.sse_event names it
            **common,
        ),
        UsageRecord(
            id=f"{SESSION}:18200",
            timestamp=datetime(2025, 10, 14, 11, 0, 20, 500000, tzinfo=UTC),
            model="gpt-5-codex",
            input_tokens=1500,
            cache_read_tokens=8000,
            output_tokens=300,
            reasoning_tokens=128,
            call_ids=(f"codex:{SESSION}:9500:8000:300:128#",),  # as codex.sse_event names it
            **common,
        ),
        UsageRecord(
            id=f"{SESSION}:31600",
            timestamp=datetime(2025, 10, 14, 11, 5, 9, 900000, tzinfo=UTC),
            model="gpt-5",  # after the /model switch
            input_tokens=3000,
            cache_read_tokens=10000,
            output_tokens=400,
            reasoning_tokens=256,
            call_ids=(f"codex:{SESSION}:13000:10000:400:256#",),  # as codex.sse_event names it
            **common,
        ),
    ]
    assert batch.positions == [6, 9, 12]
    assert batch.rejected == []
    lines = ROLLOUT.read_text().splitlines()
    assert batch.skipped == len(lines) - 3  # two repeats, one rate-limit-only event, 8 lines without usage


def test_records_add_up_to_the_final_cumulative_total_where_last_usage_would_not() -> None:
    lines = [json.loads(line) for line in ROLLOUT.read_text().splitlines()]
    counts = [line["payload"]["info"] for line in lines if line["payload"].get("type") == "token_count"]
    final = counts[-1]["total_token_usage"]
    records = parse(ROLLOUT.read_bytes()).records
    assert sum(r.input_tokens + r.cache_read_tokens for r in records) == final["input_tokens"]
    assert sum(r.cache_read_tokens for r in records) == final["cached_input_tokens"]
    assert sum(r.output_tokens for r in records) == final["output_tokens"]
    assert sum(r.reasoning_tokens for r in records) == final["reasoning_output_tokens"]
    summed_last = sum(info["last_token_usage"]["output_tokens"] for info in counts if info)
    assert summed_last > final["output_tokens"]  # why deltas of the totals are used


def test_reimporting_a_grown_file_gives_the_same_ids() -> None:
    body = ROLLOUT.read_bytes()
    prefix = b"".join(body.splitlines(keepends=True)[:10])
    early, full = parse(prefix), parse(body)
    assert [r.id for r in early.records] == [r.id for r in full.records[:2]]
    assert early.records == full.records[:2]


def test_total_that_did_not_grow_is_a_repeat() -> None:
    first = usage(100, 40, 10)
    batch = parse(jsonl(context("gpt-5"), token_count(first), token_count(first), token_count(first, last=first)))
    assert len(batch.records) == 1
    assert batch.skipped == 3


def test_rate_limit_only_token_count_is_skipped() -> None:
    event = token_count(usage(1, 0, 1))
    event["payload"]["info"] = None
    batch = parse(jsonl(context("gpt-5"), event))
    assert (batch.records, batch.rejected, batch.skipped) == ([], [], 2)


def test_counts_as_strings() -> None:
    total = usage("120", "20", "30", "10")
    total["total_tokens"] = "150"
    record = parse(jsonl(context("gpt-5"), token_count(total))).records[0]
    assert (record.input_tokens, record.cache_read_tokens, record.output_tokens) == (100, 20, 30)
    assert record.reasoning_tokens == 10


def test_cache_only_delta() -> None:
    first, second = usage(100, 0, 10), usage(600, 500, 10)
    records = parse(jsonl(context("gpt-5"), token_count(first), token_count(second))).records
    assert (records[1].input_tokens, records[1].cache_read_tokens, records[1].output_tokens) == (0, 500, 0)


def test_rebased_counters_use_the_events_own_usage() -> None:
    # Codex resets the cumulative usage to {total_tokens: context window} when the window overflows.
    before = usage(1000, 200, 100)
    rebased = {**usage(0, 0, 0), "total_tokens": 272000}
    after = {**usage(50, 10, 5), "total_tokens": 272055}
    body = jsonl(
        context("gpt-5"),
        token_count(before),
        token_count(rebased, last={**usage(0, 0, 0), "total_tokens": 270900}),
        token_count(after, last=usage(50, 10, 5)),
    )
    batch = parse(body)
    assert [(r.input_tokens, r.cache_read_tokens, r.output_tokens) for r in batch.records] == [
        (800, 200, 100),
        (40, 10, 5),
    ]
    assert batch.skipped == 2  # the turn_context and the rebase itself, which used nothing
    assert batch.rejected == []


def test_bad_lines_are_rejected_by_index_and_the_rest_kept() -> None:
    body = jsonl(
        meta(branch="main"),
        b"{truncated",
        token_count(usage(100, 0, 10)),  # no model yet: rejected, but the baseline moves
        context("gpt-5"),
        token_count(usage(150, 0, -1)),
        "a string",
        token_count(usage(300, 50, 20)),
        {**token_count(usage(400, 50, 30)), "timestamp": "soon"},
        token_count(usage(500, 60, 40), model="gpt-5-mini"),
    )
    batch = parse(body)
    assert [(r.id, r.model, r.input_tokens, r.cache_read_tokens, r.output_tokens) for r in batch.records] == [
        ("sess-1:320", "gpt-5", 150, 50, 10),
        ("sess-1:540", "gpt-5-mini", 90, 10, 10),
    ]
    assert batch.positions == [6, 8]
    assert batch.rejected[0].index == 1
    assert batch.rejected[0].error.startswith("line is not valid JSON")
    assert batch.rejected[1:] == [
        Rejection(2, "no model: neither info.model nor a preceding turn_context names one"),
        Rejection(4, "info.total_token_usage.output_tokens: a count cannot be negative (-1)"),
        Rejection(5, "line is not a JSON object"),
        Rejection(7, "timestamp: unreadable timestamp 'soon'"),
    ]
    assert all(r.attribution == Attribution(branch="main") for r in batch.records)


def test_token_count_without_totals_is_rejected() -> None:
    event = token_count(usage(1, 0, 1))
    del event["payload"]["info"]["total_token_usage"]
    batch = parse(jsonl(context("gpt-5"), event))
    assert batch.rejected == [Rejection(1, "info.total_token_usage is missing")]


def test_attribution_from_session_meta_git() -> None:
    body = jsonl(
        meta(repository_url="https://github.com/Acme/Widgets.git", branch="feat/a", commit_hash=COMMIT.upper()),
        context("gpt-5"),
        token_count(usage(10, 0, 1)),
    )
    record = parse(body).records[0]
    assert record.attribution == Attribution(repo="acme/widgets", branch="feat/a", commit=COMMIT)
    assert record.session_id == "sess-1"


@pytest.mark.parametrize("body", [b"", b"  \n", b"not json at all", b"\xff\xfe\n{"])
def test_unreadable_body_raises(body: bytes) -> None:
    with pytest.raises(PayloadError):
        parse(body)
