"""Codex `codex.sse_event` and Gemini CLI `gemini_cli.api_response` log events, and Gemini CLI chat files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app.attribution import Attribution
from app.records import PayloadError, Rejection, UsageRecord
from app.sources import codex, gemini
from app.sources.agent_events import waits_for_session
from app.sources.otlp import parse_logs

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CONVERSATION = "0199e2a4-7b1c-7d3e-9f5a-6b8c0d2e4f61"
GEMINI_SESSION = "7c1f9a52-3b0e-4d6a-9e8f-2a1b3c4d5e6f"


def logs(*records: dict[str, Any], resource: dict[str, Any] | None = None) -> bytes:
    def kv(key: str, value: Any) -> dict[str, Any]:
        kind = "intValue" if isinstance(value, int) else "stringValue"
        return {"key": key, "value": {kind: str(value) if kind == "intValue" else value}}

    return json.dumps(
        {
            "resourceLogs": [
                {
                    "resource": {"attributes": [kv(k, v) for k, v in (resource or {}).items()]},
                    "scopeLogs": [
                        {
                            "logRecords": [
                                {"timeUnixNano": "1760439611200000000", "attributes": [kv(k, v) for k, v in r.items()]}
                                for r in records
                            ]
                        }
                    ],
                }
            ]
        }
    ).encode()


def completed(**changes: Any) -> dict[str, Any]:
    event = {
        "event.name": "codex.sse_event",
        "event.kind": "response.completed",
        "conversation.id": CONVERSATION,
        "model": "gpt-5-codex",
        "input_token_count": "8000",
        "output_token_count": "400",
        "cached_token_count": 6000,
        "reasoning_token_count": 256,
        "tool_token_count": "0",
    }
    return {key: value for key, value in {**event, **changes}.items() if value is not None}


def test_codex_fixture_reads_the_completed_responses_only() -> None:
    batch = parse_logs((FIXTURES / "codex/otel_sse_events.json").read_bytes())
    assert batch.rejected == [] and batch.skipped == 3  # conversation_starts, api_request, response.created
    first = batch.records[0]
    assert first == UsageRecord(
        id=first.id,
        source="otlp",
        timestamp=datetime(2025, 10, 14, 11, 0, 11, 200000, tzinfo=UTC),
        model="gpt-5-codex",
        provider="openai",
        input_tokens=2000,  # 8000 input include 6000 cached
        cache_read_tokens=6000,
        output_tokens=400,
        reasoning_tokens=256,
        actor="alice@acme.test",
        agent="codex",
        session_id=CONVERSATION,
        call_ids=(f"codex:{CONVERSATION}:8000:6000:400:256#",),
    )
    assert first.id.startswith(f"{CONVERSATION}:")
    assert [r.model for r in batch.records] == ["gpt-5-codex", "gpt-5-codex", "gpt-5", "gpt-5"]
    assert all(waits_for_session(r) for r in batch.records)  # Codex sends no repository


def test_codex_events_and_the_rollout_name_each_response_alike() -> None:
    events = parse_logs((FIXTURES / "codex/otel_sse_events.json").read_bytes()).records
    rollout = codex.parse((FIXTURES / "codex/rollout_model_switch.jsonl").read_bytes()).records
    assert [r.call_ids for r in rollout] == [r.call_ids for r in events[:3]]
    for event, line in zip(events, rollout, strict=False):
        counts = ("input_tokens", "cache_read_tokens", "output_tokens", "reasoning_tokens", "model", "session_id")
        assert {c: getattr(event, c) for c in counts} == {c: getattr(line, c) for c in counts}


def test_codex_events_without_usage_or_with_bad_counts() -> None:
    batch = parse_logs(
        logs(
            completed(**{"event.kind": "response.output_item.done"}),
            completed(**{"error.message": "stream closed"}),  # see_event_completed_failed
            completed(cached_token_count=9000),
            completed(model=None),
            completed(input_token_count="many"),
            completed(cached_token_count=None, reasoning_token_count=None),  # Option<i64> left out
        )
    )
    assert batch.skipped == 2
    assert [r.index for r in batch.rejected] == [2, 3, 4]
    assert "cached_token_count is larger" in batch.rejected[0].error
    assert batch.rejected[1] == Rejection(index=3, error="model attribute is missing")
    assert "input_token_count" in batch.rejected[2].error
    (only,) = batch.records
    assert (only.input_tokens, only.cache_read_tokens, only.reasoning_tokens) == (8000, 0, 0)


def test_codex_events_keep_attribution_they_are_given() -> None:
    resource = {"vcs.repository.url.full": "https://github.com/acme/widgets", "vcs.ref.head.name": "feat/x"}
    (record,) = parse_logs(logs(completed(), resource=resource)).records
    assert record.attribution == Attribution(repo="acme/widgets", branch="feat/x")
    assert not waits_for_session(record)


def test_gemini_telemetry_counts_the_api_response_not_its_semantic_twin() -> None:
    batch = parse_logs((FIXTURES / "gemini/otel_api_response.json").read_bytes())
    assert batch.rejected == [] and batch.skipped == 4  # a user_prompt and three operation.details records
    second = batch.records[1]
    assert (second.model, second.provider, second.agent, second.session_id) == (
        "gemini-2.5-pro",
        "google",
        "gemini-cli",
        GEMINI_SESSION,
    )
    # prompt 13950 = 11200 cached + 2750 new; plus 96 tool-use prompt tokens; output 220 + 512 thoughts.
    assert (second.input_tokens, second.cache_read_tokens, second.output_tokens, second.reasoning_tokens) == (
        2846,
        11200,
        732,
        512,
    )
    assert second.actor == "bob@acme.test"


@pytest.mark.parametrize("name", ["session-2025-10-15T09-00-7c1f9a52.json", "session-2025-10-16T14-00-9d2e8b41.jsonl"])
def test_gemini_chat_files_of_both_shapes(name: str) -> None:
    batch = gemini.parse((FIXTURES / "gemini" / name).read_bytes())
    assert batch.rejected == [] and len(batch.records) == 3
    assert all(r.source == "gemini" and r.agent == "gemini-cli" and r.provider == "google" for r in batch.records)
    assert all(r.id.startswith(f"{r.session_id}:") for r in batch.records)


def test_the_jsonl_chat_counts_a_rewound_reply_and_a_rewritten_one_once() -> None:
    batch = gemini.parse((FIXTURES / "gemini/session-2025-10-16T14-00-9d2e8b41.jsonl").read_bytes())
    assert [r.id.split(":")[1][:8] for r in batch.records] == ["07d6c9e8", "18e7dae9", "3a09fc0b"]
    assert batch.records[0].input_tokens == 20400 - 16000  # written first without tokens, then with them


def test_a_gemini_chat_and_its_telemetry_name_each_response_alike() -> None:
    chat = gemini.parse((FIXTURES / "gemini/session-2025-10-15T09-00-7c1f9a52.json").read_bytes()).records
    events = parse_logs((FIXTURES / "gemini/otel_api_response.json").read_bytes()).records
    assert [r.call_ids for r in chat] == [r.call_ids for r in events]
    assert [(r.input_tokens, r.cache_read_tokens, r.output_tokens) for r in chat] == [
        (r.input_tokens, r.cache_read_tokens, r.output_tokens) for r in events
    ]


def test_gemini_chat_lines_that_cannot_be_counted() -> None:
    reply = {"id": "m1", "timestamp": "2025-10-16T14:00:09Z", "type": "gemini", "model": "gemini-2.5-pro"}
    tokens = {"input": 10, "output": 2, "cached": 0, "thoughts": 0, "tool": 0, "total": 12}
    lines = [
        {**reply, "tokens": tokens},  # before the metadata record
        {"sessionId": "s-1", "projectHash": "ab"},
        {**reply, "tokens": {**tokens, "cached": 11}},
        {**reply, "model": "", "tokens": tokens},
        {**reply, "tokens": {**tokens, "input": "ten"}},
        {**reply, "timestamp": None, "tokens": tokens},
        "not an object",
    ]
    body = b"".join(json.dumps(line).encode() + b"\n" for line in lines) + b"{broken\n"
    batch = gemini.parse(body)
    assert batch.records == []
    errors = {r.index: r.error for r in batch.rejected}
    assert "no sessionId" in errors[0]
    assert "cached tokens are more" in errors[2]
    assert errors[3] == "model is missing"
    assert "tokens.input" in errors[4]
    assert errors[5] == "timestamp is missing"
    assert set(errors) == {0, 2, 3, 4, 5, 6, 7}


def test_a_gemini_body_that_is_not_a_chat() -> None:
    with pytest.raises(PayloadError):
        gemini.parse(b"   ")
    with pytest.raises(PayloadError):
        gemini.parse(b'{"sessionId": "s", "messages": "none"}')
