"""Helicone request-query rows → canonical records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.attribution import Attribution
from app.records import ParsedBatch, PayloadError, UsageRecord
from app.sources import helicone

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "helicone"


def _row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "request_id": "req-1",
        "request_created_at": "2025-06-03T14:21:07.412Z",
        "provider": "OPENAI",
        "model": "gpt-4o-mini",
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "prompt_cache_read_tokens": 0,
        "prompt_cache_write_tokens": 0,
        "cost": 0.000027,
        "request_user_id": None,
        "request_properties": {},
    }
    row.update(overrides)
    return row


def _parse(*items: Any) -> ParsedBatch:
    return helicone.parse(json.dumps({"data": list(items), "error": None}).encode())


def test_request_query_fixture() -> None:
    batch = helicone.parse((FIXTURES / "request_query.json").read_bytes())

    assert batch.rejected == []
    assert batch.skipped == 1  # the rate-limited request
    assert batch.positions == [0, 1, 2]
    assert batch.records == [
        UsageRecord(
            id="3d2f8a9c-1b2e-4c5d-8e9f-0a1b2c3d4e5f",
            source="helicone",
            timestamp=datetime(2025, 6, 3, 14, 21, 7, 412000, tzinfo=UTC),
            model="gpt-4o-mini-2024-07-18",
            provider="openai",
            input_tokens=800,  # Helicone's prompt_tokens already exclude the cached tokens
            cache_read_tokens=1200,
            output_tokens=150,
            cost_usd=Decimal("0.0003"),
            attribution=Attribution(
                repo="acme/widgets",
                branch="feat/cache-layer",
                commit="3f2c9a1b7e4d2c0a9b8f7e6d5c4b3a2918f7e6d5",
                pr=482,
            ),
            actor="alice@example.com",
            agent="codex",
            session_id="sess-2025-06-03-a",
        ),
        UsageRecord(
            id="4e3a9b0d-2c3f-4d6e-9fa0-1b2c3d4e5f60",
            source="helicone",
            timestamp=datetime(2025, 6, 3, 14, 25, tzinfo=UTC),  # naive ClickHouse time: UTC
            model="claude-sonnet-4-5-20250929",
            provider="anthropic",
            input_tokens=1200,
            cache_read_tokens=48000,
            cache_write_tokens=3000,
            output_tokens=850,
            cost_usd=Decimal("0.042"),
            attribution=Attribution(repo="acme/widgets", branch="feat/cache-layer", pr=482),
            actor="alice@example.com",
        ),
        UsageRecord(
            id="5f4b0c1e-3d4a-4e7f-a0b1-2c3d4e5f6071",
            source="helicone",
            timestamp=datetime(2025, 6, 3, 15, 5, 10, 250000, tzinfo=UTC),
            model="o3-mini-2025-01-31",
            provider="openai",
            input_tokens=500,
            output_tokens=1500,  # completion 300 + reasoning 1200, which Helicone counts apart
            reasoning_tokens=1200,
            cost_usd=Decimal("0.00715"),
            attribution=Attribution(repo="acme/widgets", branch="fix/retry-backoff"),
            actor="bob",
        ),
    ]


def test_plain_array_and_single_request_envelope() -> None:
    array = helicone.parse(json.dumps([_row(request_id="a"), _row(request_id="b")]).encode())
    single = helicone.parse(json.dumps({"data": _row(request_id="c"), "error": None}).encode())

    assert [r.id for r in array.records] == ["a", "b"]
    assert [r.id for r in single.records] == ["c"]


def test_error_answer_raises_payload_error() -> None:
    with pytest.raises(PayloadError, match="invalid API key"):
        helicone.parse(json.dumps({"data": None, "error": "invalid API key"}).encode())


@pytest.mark.parametrize(
    "properties",
    [
        {"Repo": "acme/widgets", "Branch": "feat/p", "Commit": "abcdef1", "Pr": "12"},
        {"repo": "acme/widgets", "branch": "feat/p", "commit": "abcdef1", "pr": "12"},
        {
            "Helicone-Property-Repo": "https://github.com/acme/widgets",
            "helicone-property-branch": "feat/p",
            "HELICONE-PROPERTY-COMMIT": "ABCDEF1",
            "Helicone-Property-Pr": "#12",
        },
    ],
)
def test_properties_are_matched_case_insensitively_with_or_without_prefix(properties: dict[str, str]) -> None:
    (record,) = _parse(_row(request_properties=properties)).records

    assert record.attribution == Attribution(repo="acme/widgets", branch="feat/p", commit="abcdef1", pr=12)


def test_properties_as_json_string_and_fallback_column() -> None:
    as_string = _row(request_id="s", request_properties=json.dumps({"Repo": "acme/widgets"}))
    other_column = _row(request_id="p", request_properties=None, properties={"Branch": "main", "Repo": "a/b"})

    records = _parse(as_string, other_column).records

    assert records[0].attribution == Attribution(repo="acme/widgets")
    assert records[1].attribution == Attribution(repo="a/b", branch="main")


def test_strings_for_numbers_cost_aliases_and_audio() -> None:
    row = _row(
        prompt_tokens="800",
        completion_tokens="150",
        prompt_cache_read_tokens="1200",
        prompt_audio_tokens=30,
        completion_audio_tokens=5,
        cost=None,
        costUSD="0.00123",
    )

    (record,) = _parse(row).records

    assert (record.input_tokens, record.cache_read_tokens, record.output_tokens) == (830, 1200, 155)
    assert record.cost_usd == Decimal("0.00123")


def test_cache_only_request() -> None:
    (record,) = _parse(_row(prompt_tokens=0, prompt_cache_read_tokens=4096, completion_tokens=3)).records

    assert (record.input_tokens, record.cache_read_tokens, record.output_tokens) == (0, 4096, 3)


def test_model_precedence_and_provider_names() -> None:
    row = _row(model=None, response_model="gpt-4o-2024-08-06", request_model="gpt-4o", provider="CUSTOM")

    (record,) = _parse(row).records

    assert (record.model, record.provider) == ("gpt-4o-2024-08-06", None)


def test_request_without_usage_is_skipped() -> None:
    batch = _parse(_row(prompt_tokens=0, completion_tokens=0, cost=0))

    assert (batch.records, batch.skipped, batch.rejected) == ([], 1, [])


def test_bad_items_are_rejected_by_index() -> None:
    items = [
        _row(request_id="ok-1"),
        _row(request_id=None),
        _row(request_id="no-model", model=None),
        _row(request_id="bad-time", request_created_at="soon"),
        _row(request_id="negative", prompt_cache_read_tokens=-2),
        "row",
        _row(request_id="bad-cost", cost="free"),
        _row(request_id="ok-2"),
    ]

    batch = _parse(*items)

    assert [r.id for r in batch.records] == ["ok-1", "ok-2"]
    errors = {r.index: r.error for r in batch.rejected}
    assert sorted(errors) == [1, 2, 3, 4, 5, 6]
    assert "request_id" in errors[1]
    assert "model" in errors[2]
    assert "request_created_at" in errors[3]
    assert "prompt_cache_read_tokens" in errors[4]
    assert "object" in errors[5]
    assert "cost" in errors[6]


def test_ndjson_with_a_bad_line() -> None:
    lines = [json.dumps(_row(request_id="a")), "nope", json.dumps(_row(request_id="b"))]

    batch = helicone.parse("\n".join(lines).encode(), ndjson=True)

    assert [r.id for r in batch.records] == ["a", "b"]
    assert [r.index for r in batch.rejected] == [1]


@pytest.mark.parametrize("body", [b"request_id=1", b"3.14", b""])
def test_unreadable_body_raises_payload_error(body: bytes) -> None:
    with pytest.raises(PayloadError):
        helicone.parse(body)
