"""Langfuse observations (API page or array) and LiteLLM's Langfuse ingestion batch → canonical records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.attribution import Attribution
from app.records import ParsedBatch, PayloadError, UsageRecord
from app.sources import langfuse

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _generation(**overrides: Any) -> dict[str, Any]:
    observation: dict[str, Any] = {
        "id": "gen-1",
        "traceId": "trace-1",
        "type": "GENERATION",
        "startTime": "2025-06-03T14:21:07.412Z",
        "model": "gpt-4o",
        "metadata": {},
        "usageDetails": {"input": 100, "output": 20, "total": 120},
        "costDetails": {"total": 0.00045},
    }
    observation.update(overrides)
    return observation


def _parse(*items: Any) -> ParsedBatch:
    return langfuse.parse(json.dumps(list(items)).encode())


def test_litellm_ingestion_batch_fixture() -> None:
    body = (FIXTURES / "litellm" / "langfuse_ingestion_completion_with_tags.json").read_bytes()

    batch = langfuse.parse(body)

    assert batch.rejected == []
    assert batch.skipped == 1  # the trace-create event
    assert batch.records == [
        UsageRecord(
            id="time-07-31-28-960749_chatcmpl-f06338f0-8c49-45d8-be35-2854a89723c1",
            call_ids=("chatcmpl-f06338f0-8c49-45d8-be35-2854a89723c1",),
            source="langfuse",
            # "2025-01-22T07:31:28.960749-08:00", in UTC
            timestamp=datetime(2025, 1, 22, 15, 31, 28, 960749, tzinfo=UTC),
            model="gpt-3.5-turbo",
            input_tokens=10,
            output_tokens=20,
            cost_usd=Decimal("0.000054999999999999995"),  # usage.totalCost as reported
        )
    ]
    assert batch.positions == [1]


def test_observations_page_fixture() -> None:
    batch = langfuse.parse((FIXTURES / "langfuse" / "observations_page.json").read_bytes())

    assert batch.rejected == []
    assert batch.skipped == 2  # a SPAN and an EVENT
    assert batch.positions == [0, 2, 3]
    assert batch.records == [
        UsageRecord(
            id="obs-7f3c2a10-claude",
            source="langfuse",
            timestamp=datetime(2025, 6, 3, 14, 21, 7, 412000, tzinfo=UTC),
            model="claude-sonnet-4-5",
            input_tokens=1200,
            cache_read_tokens=48000,
            cache_write_tokens=3000,
            output_tokens=850,
            cost_usd=Decimal("0.042"),
            attribution=Attribution(
                repo="acme/widgets",
                branch="feat/cache-layer",
                commit="3f2c9a1b7e4d2c0a9b8f7e6d5c4b3a2918f7e6d5",
                pr=482,
            ),
            actor="alice@example.com",
            agent="claude-code",
            session_id="cc-session-0001",
        ),
        UsageRecord(
            id="obs-91aa03de-gpt4o",
            source="langfuse",
            timestamp=datetime(2025, 6, 3, 13, 2, 44, tzinfo=UTC),  # 15:02:44+02:00
            model="gpt-4o-2024-08-06",
            input_tokens=800,  # Langfuse already took the 1200 cached tokens out of `input`
            cache_read_tokens=1200,
            output_tokens=150,
            cost_usd=Decimal("0.005"),
            attribution=Attribution(repo="acme/widgets", branch="fix/retry-backoff"),
            actor="bob",
            agent="aider",
        ),
        UsageRecord(
            id="obs-c4d1-o3mini",
            source="langfuse",
            timestamp=datetime(2025, 6, 3, 13, 5, 10, 250000, tzinfo=UTC),
            model="o3-mini",
            input_tokens=500,
            output_tokens=1500,  # output 300 + output_reasoning_tokens 1200
            reasoning_tokens=1200,
            cost_usd=Decimal("0.00715"),  # calculatedTotalCost: costDetails is empty
            attribution=Attribution(repo="acme/widgets", branch="fix/retry-backoff", commit="9e8d7c6"),
        ),
    ]


def test_plain_array_of_observations() -> None:
    batch = _parse(_generation(id="a"), _generation(id="b", type="SPAN"))

    assert [r.id for r in batch.records] == ["a"]
    assert batch.skipped == 1


def test_generation_update_completes_the_create_of_the_same_id() -> None:
    body = {
        "batch": [
            {"id": "e1", "type": "trace-create", "body": {"id": "t1", "name": "agent-run"}},
            {
                "id": "e2",
                "type": "generation-create",
                "body": {"id": "g1", "traceId": "t1", "startTime": "2025-06-03T10:00:00Z", "model": "gpt-4o"},
            },
            {"id": "e3", "type": "span-create", "body": {"id": "s1", "traceId": "t1"}},
            {
                "id": "e4",
                "type": "generation-update",
                "body": {
                    "id": "g1",
                    "endTime": "2025-06-03T10:00:03Z",
                    "model": None,
                    "usageDetails": {"input": 40, "output": 8},
                    "costDetails": {"total": 0.00018},
                },
            },
        ]
    }

    batch = langfuse.parse(json.dumps(body).encode())

    assert batch.rejected == []
    assert batch.skipped == 3  # trace-create, span-create, the folded update
    (record,) = batch.records
    assert (record.id, record.model, record.input_tokens, record.output_tokens) == ("g1", "gpt-4o", 40, 8)
    assert record.cost_usd == Decimal("0.00018")
    assert batch.positions == [1]


def test_input_that_still_contains_cache_tokens_is_corrected_by_the_total() -> None:
    # LiteLLM's Langfuse logger takes only cache reads out of `input`: 1200 fresh + 3000 written remain.
    details = {
        "input": 4200,
        "output": 850,
        "total": 53050,
        "cache_read_input_tokens": 48000,
        "cache_creation_input_tokens": 3000,
    }

    (record,) = _parse(_generation(usageDetails=details)).records

    assert (record.input_tokens, record.cache_read_tokens, record.cache_write_tokens) == (1200, 48000, 3000)
    assert record.output_tokens == 850


def test_reasoning_already_inside_output_is_not_added_twice() -> None:
    details = {"input": 500, "output": 1500, "reasoning": 1200, "total": 2000}

    (record,) = _parse(_generation(usageDetails=details)).records

    assert (record.output_tokens, record.reasoning_tokens) == (1500, 1200)


def test_cache_only_generation() -> None:
    details = {"input": 0, "input_cached_tokens": 4096, "output": 12}

    (record,) = _parse(_generation(usageDetails=details)).records

    assert (record.input_tokens, record.cache_read_tokens, record.output_tokens) == (0, 4096, 12)


def test_legacy_usage_shapes_and_strings_for_numbers() -> None:
    legacy = _generation(id="legacy", usageDetails=None, usage={"input": "300", "output": "45", "unit": "TOKENS"})
    openai_names = _generation(id="camel", usageDetails={}, promptTokens=70, completionTokens=9)

    records = _parse(legacy, openai_names).records

    assert [(r.id, r.input_tokens, r.output_tokens) for r in records] == [
        ("legacy", 300, 45),
        ("camel", 70, 9),
    ]


def test_cost_fallbacks() -> None:
    per_bucket = _generation(id="buckets", costDetails={"input": "0.002", "output": 0.0015})
    calculated = _generation(id="calculated", costDetails={}, calculatedTotalCost=0.0031)
    none = _generation(id="none", costDetails=None)

    records = _parse(per_bucket, calculated, none).records

    assert [r.cost_usd for r in records] == [Decimal("0.0035"), Decimal("0.0031"), None]


def test_attribution_from_nested_spend_logs_metadata_and_tags() -> None:
    nested = _generation(
        id="nested",
        metadata={"requester_metadata": {"spend_logs_metadata": {"repo": "acme/widgets", "pr": "17"}}},
    )
    tagged = _generation(
        id="tagged",
        metadata=json.dumps({"tags": ["x-vcs-repository-url-full: https://github.com/acme/widgets"]}),
        tags=["branch:feat/z", "commit:abcdef1"],
    )

    records = _parse(nested, tagged).records

    assert records[0].attribution == Attribution(repo="acme/widgets", pr=17)
    assert records[1].attribution == Attribution(repo="acme/widgets", branch="feat/z", commit="abcdef1")


def test_generation_without_usage_is_skipped() -> None:
    batch = _parse(_generation(usageDetails={}, costDetails={}, usage=None))

    assert batch.records == []
    assert batch.skipped == 1
    assert batch.rejected == []


def test_bad_items_are_rejected_by_index() -> None:
    items = [
        _generation(id="ok-1"),
        _generation(id="no-model", model=None),
        _generation(id="no-start", startTime=None),
        _generation(id="negative", usageDetails={"input": -1, "output": 3}),
        _generation(id=None),
        ["not", "an", "object"],
        _generation(id="bad-cost", costDetails={"total": "lots"}),
        _generation(id="ok-2"),
    ]

    batch = _parse(*items)

    assert [r.id for r in batch.records] == ["ok-1", "ok-2"]
    errors = {r.index: r.error for r in batch.rejected}
    assert sorted(errors) == [1, 2, 3, 4, 5, 6]
    assert "model" in errors[1]
    assert "startTime" in errors[2]
    assert "input" in errors[3] and "negative" in errors[3]
    assert "id" in errors[4]
    assert "object" in errors[5]
    assert "costDetails.total" in errors[6]


def test_event_body_without_id_is_rejected() -> None:
    body = {"batch": [{"type": "generation-create", "body": {"model": "gpt-4o", "startTime": "2025-06-03T10:00Z"}}]}

    batch = langfuse.parse(json.dumps(body).encode())

    assert [(r.index, "id" in r.error) for r in batch.rejected] == [(0, True)]


def test_ndjson_with_a_bad_line() -> None:
    lines = [json.dumps(_generation(id="a")), "garbage", json.dumps(_generation(id="b"))]

    batch = langfuse.parse("\n".join(lines).encode(), ndjson=True)

    assert [r.id for r in batch.records] == ["a", "b"]
    assert [r.index for r in batch.rejected] == [1]


@pytest.mark.parametrize("body", [b"<html>", b"true", b"   "])
def test_unreadable_body_raises_payload_error(body: bytes) -> None:
    with pytest.raises(PayloadError):
        langfuse.parse(body)
