"""Portkey log-export rows and logs-API log objects → canonical records (cost in cents → USD)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.attribution import Attribution
from app.records import ParsedBatch, PayloadError, UsageRecord
from app.sources import portkey

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "portkey"
COMMIT = "3f2c9a1b7e4d2c0a9b8f7e6d5c4b3a2918f7e6d5"


def _row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": "log-1",
        "trace_id": None,
        "created_at": "2025-06-03T14:21:07.412Z",
        "ai_org": "openai",
        "ai_model": "gpt-4o-mini",
        "req_units": 350,
        "res_units": 40,
        "cost": 0.00765,
        "cost_currency": "USD",
        "metadata": {},
    }
    row.update(overrides)
    return row


def _parse(*items: Any) -> ParsedBatch:
    return portkey.parse(json.dumps(list(items)).encode())


EXPECTED_EXPORT = [
    UsageRecord(
        id="b6f0e1c2-3d4a-4b5c-8d6e-7f8091a2b3c4",
        call_ids=("chatcmpl-BeQ1x2y3z4",),
        source="portkey",
        timestamp=datetime(2025, 6, 3, 14, 21, 7, 412000, tzinfo=UTC),
        model="gpt-4o",
        provider="openai",
        input_tokens=800,  # OpenAI prompt_tokens 2000 include the 1200 cached
        cache_read_tokens=1200,
        output_tokens=150,
        cost_usd=Decimal("0.005"),  # 0.5 cents
        attribution=Attribution(repo="acme/widgets", branch="feat/cache-layer", commit=COMMIT, pr=482),
        actor="alice@example.com",
        agent="codex",
        session_id="cc-session-0001",
    ),
    UsageRecord(
        id="c7a1f2d3-4e5b-4c6d-9e7f-8a9b0c1d2e3f",
        call_ids=("msg_01XyZ",),
        source="portkey",
        timestamp=datetime(2025, 6, 3, 14, 25, tzinfo=UTC),
        model="claude-sonnet-4-5-20250929",
        provider="anthropic",
        input_tokens=1200,  # Portkey keeps Anthropic's input_tokens (cache excluded) as prompt_tokens
        cache_read_tokens=48000,
        cache_write_tokens=3000,
        output_tokens=850,
        cost_usd=Decimal("0.042"),  # 4.2 cents
        attribution=Attribution(repo="acme/widgets", branch="feat/cache-layer", commit=COMMIT),
        actor="alice@example.com",
        session_id="cc-session-0001",
    ),
    UsageRecord(
        id="d8b2a3e4-5f6c-4d7e-8f90-a1b2c3d4e5f6",
        source="portkey",
        timestamp=datetime(2025, 6, 3, 15, 40, 12, tzinfo=UTC),
        model="gpt-4o-mini",
        provider="openai",
        input_tokens=350,  # no response body: req_units as they are
        output_tokens=40,
        cost_usd=Decimal("0.0000765"),  # 0.00765 cents
        attribution=Attribution(repo="acme/widgets", branch="main"),
        actor="ci-bot",
    ),
]


@pytest.mark.parametrize("ndjson", [True, False])  # exports are JSONL; read as such even without the flag
def test_log_export_fixture(ndjson: bool) -> None:
    batch = portkey.parse((FIXTURES / "logs_export.jsonl").read_bytes(), ndjson=ndjson)

    assert batch.rejected == []
    assert batch.skipped == 1  # the rate-limited call with no usage
    assert batch.records == EXPECTED_EXPORT
    assert batch.positions == [0, 1, 2]


def test_logs_api_log_object_fixture() -> None:
    batch = portkey.parse((FIXTURES / "log_insert.json").read_bytes())

    assert batch.rejected == []
    assert batch.records == [
        UsageRecord(
            id="msg_01AbCdEf",  # no log id: the provider's response id
            call_ids=("msg_01AbCdEf",),
            source="portkey",
            timestamp=datetime(2025, 6, 3, 16, 0, 5, tzinfo=UTC),  # the response's Date header
            model="claude-sonnet-4-5-20250929",
            provider="anthropic",
            input_tokens=12,
            cache_read_tokens=30000,
            cache_write_tokens=1500,
            output_tokens=180,
            cost_usd=None,  # not reported: computed later
            attribution=Attribution(repo="acme/widgets", branch="feat/cache-layer", commit="3f2c9a1", pr=482),
            actor="bob",
            session_id="agent-run-42",
        )
    ]


@pytest.mark.parametrize(
    ("cost", "dollars"),
    [(250, Decimal("2.5")), ("12.5", Decimal("0.125")), (0.0105, Decimal("0.000105")), (0, Decimal(0))],
)
def test_cost_is_converted_from_cents(cost: Any, dollars: Decimal) -> None:
    (record,) = _parse(_row(cost=cost)).records

    assert record.cost_usd == dollars


def test_cost_in_another_currency_is_left_for_pricing() -> None:
    (record,) = _parse(_row(cost=120, cost_currency="EUR")).records

    assert record.cost_usd is None


def test_openai_response_from_a_bare_log_object_uses_created() -> None:
    log = {
        "request": {"provider": "openai", "body": {"model": "gpt-4o"}},
        "response": {
            "status": 200,
            "body": json.dumps(
                {
                    "id": "chatcmpl-xyz",
                    "created": 1748960467,
                    "model": "gpt-4o-2024-08-06",
                    "usage": {
                        "prompt_tokens": 4096,
                        "completion_tokens": 7,
                        "total_tokens": 4103,
                        "prompt_tokens_details": {"cached_tokens": 4096},
                    },
                }
            ),
        },
        "metadata": {"repo": "acme/widgets"},
    }

    (record,) = _parse(log).records

    assert record.id == "chatcmpl-xyz"
    assert record.timestamp == datetime(2025, 6, 3, 14, 21, 7, tzinfo=UTC)
    # A cache-only call: all 4096 prompt tokens were cached.
    assert (record.input_tokens, record.cache_read_tokens, record.output_tokens) == (0, 4096, 7)


def test_responses_api_usage_includes_cached_input() -> None:
    usage = {
        "input_tokens": 3000,
        "output_tokens": 500,
        "total_tokens": 3500,
        "input_tokens_details": {"cached_tokens": 2000},
        "output_tokens_details": {"reasoning_tokens": 320},
    }
    row = _row(ai_model="gpt-5", response={"body": {"usage": usage}})

    (record,) = _parse(row).records

    assert (record.input_tokens, record.cache_read_tokens) == (1000, 2000)
    assert (record.output_tokens, record.reasoning_tokens) == (500, 320)


def test_metadata_forms_and_strings_for_numbers() -> None:
    as_string = _row(id="s", metadata=json.dumps({"repo": "acme/widgets", "pr": "7"}), req_units="350")
    as_arrays = _row(id="a", metadata={"key": ["branch", "repo"], "value": ["feat/q", "acme/widgets"]})

    records = _parse(as_string, as_arrays).records

    assert records[0].attribution == Attribution(repo="acme/widgets", pr=7)
    assert records[0].input_tokens == 350
    assert records[1].attribution == Attribution(repo="acme/widgets", branch="feat/q")


def test_bad_items_are_rejected_by_index() -> None:
    items = [
        _row(id="ok-1"),
        _row(id=None),
        _row(id="no-model", ai_model=None),
        _row(id="bad-time", created_at="last tuesday"),
        _row(id="no-time", created_at=None),
        _row(id="negative", res_units=-3),
        _row(id="bad-cost", cost=-1),
        42,
        _row(id="ok-2"),
    ]

    batch = _parse(*items)

    assert [r.id for r in batch.records] == ["ok-1", "ok-2"]
    assert batch.positions == [0, 8]
    errors = {r.index: r.error for r in batch.rejected}
    assert sorted(errors) == [1, 2, 3, 4, 5, 6, 7]
    assert "id" in errors[1]
    assert "ai_model" in errors[2]
    assert "created_at" in errors[3]
    assert "created_at" in errors[4]
    assert "res_units" in errors[5]
    assert "cost" in errors[6]
    assert "object" in errors[7]


def test_ndjson_with_a_bad_line() -> None:
    lines = [json.dumps(_row(id="a")), '{"id": ', json.dumps(_row(id="b"))]

    batch = portkey.parse("\n".join(lines).encode(), ndjson=True)

    assert [r.id for r in batch.records] == ["a", "b"]
    assert [r.index for r in batch.rejected] == [1]


@pytest.mark.parametrize("body", [b"id,cost\n1,2", b"null", b"\xff\xfe"])
def test_unreadable_body_raises_payload_error(body: bytes) -> None:
    with pytest.raises(PayloadError):
        portkey.parse(body)
