"""LiteLLM `generic_api` callback bodies and `/spend/logs` rows → canonical records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.attribution import Attribution
from app.records import ParsedBatch, PayloadError, UsageRecord
from app.sources import litellm

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "litellm"


def _fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_bytes())
    return data


def _payload(**overrides: Any) -> dict[str, Any]:
    """A minimal StandardLoggingPayload of a successful call."""
    payload: dict[str, Any] = {
        "id": "chatcmpl-test-1",
        "status": "success",
        "custom_llm_provider": "openai",
        "startTime": 1748960467.25,
        "model": "gpt-4o",
        "metadata": {},
        "response_cost": 0.001,
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "request_tags": [],
    }
    payload.update(overrides)
    return payload


def _parse(*items: Any) -> ParsedBatch:
    return litellm.parse(json.dumps(list(items)).encode())


def test_standard_logging_payload_fixture() -> None:
    batch = litellm.parse((FIXTURES / "standard_logging_payload.json").read_bytes())

    assert batch.rejected == []
    assert batch.skipped == 0
    assert batch.records == [
        UsageRecord(
            id="chatcmpl-2299b6a2-82a3-465a-b47c-04e685a2227f",
            call_ids=("chatcmpl-2299b6a2-82a3-465a-b47c-04e685a2227f",),
            source="litellm",
            # "2025-01-24 09:20:46.847371" is naive: UTC.
            timestamp=datetime(2025, 1, 24, 9, 20, 46, 847371, tzinfo=UTC),
            model="gpt-4o",
            provider="openai",
            input_tokens=10,
            output_tokens=20,
            cost_usd=Decimal("0.00022500000000000002"),
        )
    ]
    assert batch.positions == [0]


def test_spend_logs_payload_fixture_with_json_string_fields() -> None:
    batch = litellm.parse((FIXTURES / "spend_logs_payload.json").read_bytes())

    assert batch.rejected == []
    assert batch.records == [
        UsageRecord(
            id="chatcmpl-2283081b-dc89-41f6-93e6-d4f914774027",
            call_ids=("chatcmpl-2283081b-dc89-41f6-93e6-d4f914774027",),
            source="litellm",
            timestamp=datetime(2025, 1, 24, 9, 20, 46, 847371, tzinfo=UTC),
            model="gpt-4o",
            provider="openai",
            input_tokens=10,
            output_tokens=20,
            cost_usd=Decimal("0.00022500000000000002"),
            session_id="1234567890",
        )
    ]


def test_callback_array_of_both_fixtures() -> None:
    body = json.dumps([_fixture("standard_logging_payload.json"), _fixture("spend_logs_payload.json")])

    batch = litellm.parse(body.encode())

    assert [r.id for r in batch.records] == [
        "chatcmpl-2299b6a2-82a3-465a-b47c-04e685a2227f",
        "chatcmpl-2283081b-dc89-41f6-93e6-d4f914774027",
    ]
    assert batch.positions == [0, 1]


def test_anthropic_cache_tokens_are_taken_out_of_prompt_tokens() -> None:
    # LiteLLM's Anthropic usage: prompt_tokens = input 1200 + cache write 3000 + cache read 48000.
    usage = {
        "prompt_tokens": 52200,
        "completion_tokens": 850,
        "total_tokens": 53050,
        "prompt_tokens_details": {"cached_tokens": 48000, "cache_creation_tokens": 3000},
        "cache_read_input_tokens": 48000,
        "cache_creation_input_tokens": 3000,
    }
    item = _payload(
        custom_llm_provider="anthropic",
        model="anthropic/claude-sonnet-4-5",
        prompt_tokens=52200,
        completion_tokens=850,
        response_cost=0.042,
        metadata={"usage_object": usage},
    )

    (record,) = _parse(item).records

    assert record.model == "claude-sonnet-4-5"  # provider prefix stripped
    assert record.provider == "anthropic"
    assert (record.input_tokens, record.cache_read_tokens, record.cache_write_tokens) == (1200, 48000, 3000)
    assert record.output_tokens == 850
    assert record.cost_usd == Decimal("0.042")


def test_cache_details_from_response_usage_when_metadata_has_none() -> None:
    item = _payload(
        prompt_tokens=2000,
        completion_tokens=150,
        response={"usage": {"prompt_tokens": 2000, "prompt_tokens_details": {"cached_tokens": 1200}}},
    )

    (record,) = _parse(item).records

    assert (record.input_tokens, record.cache_read_tokens) == (800, 1200)


def test_prompt_tokens_that_cannot_hold_cache_writes_only_lose_the_reads() -> None:
    # Some LiteLLM releases added only cache reads to prompt_tokens: 20 input + 500 read, 300 written apart.
    usage = {"cache_read_input_tokens": 500, "cache_creation_input_tokens": 300}
    item = _payload(prompt_tokens=520, metadata={"usage_object": usage})

    (record,) = _parse(item).records

    assert (record.input_tokens, record.cache_read_tokens, record.cache_write_tokens) == (20, 500, 300)


def test_cache_only_call_has_no_fresh_input() -> None:
    usage = {"prompt_tokens": 4096, "prompt_tokens_details": {"cached_tokens": 4096}}
    item = _payload(prompt_tokens=4096, completion_tokens=12, metadata={"usage_object": usage})

    (record,) = _parse(item).records

    assert (record.input_tokens, record.cache_read_tokens, record.output_tokens) == (0, 4096, 12)


def test_input_never_goes_below_zero() -> None:
    item = _payload(prompt_tokens=10, metadata={"usage_object": {"cache_read_input_tokens": 50}})

    (record,) = _parse(item).records

    assert (record.input_tokens, record.cache_read_tokens) == (0, 50)


def test_reasoning_tokens_stay_inside_output() -> None:
    usage = {"completion_tokens_details": {"reasoning_tokens": 1200}}
    item = _payload(model="o3-mini", completion_tokens=1500, metadata={"usage_object": usage})

    (record,) = _parse(item).records

    assert (record.output_tokens, record.reasoning_tokens) == (1500, 1200)


def test_strings_for_numbers_and_epoch_float_start_time() -> None:
    item = _payload(prompt_tokens="120", completion_tokens="30", response_cost="0.0012", startTime=1748960467.25)

    (record,) = _parse(item).records

    assert (record.input_tokens, record.output_tokens) == (120, 30)
    assert record.cost_usd == Decimal("0.0012")
    assert record.timestamp == datetime(2025, 6, 3, 14, 21, 7, 250000, tzinfo=UTC)


def test_spend_log_row_with_json_string_metadata_and_tags() -> None:
    spend_logs_metadata = {
        "repo": "https://github.com/Acme/Widgets.git",
        "branch": "feat/cache-layer",
        "commit": "3F2C9A1B",
        "pr": 482,
        "agent": "claude-code",
    }
    row = {
        "request_id": "req-1",
        "startTime": "2025-06-03T14:21:07.412000Z",
        "model": "gpt-4o",
        "custom_llm_provider": "openai",
        "spend": "0.005",
        "prompt_tokens": 2000,
        "completion_tokens": 150,
        "metadata": json.dumps(
            {
                "user_api_key_user_email": "alice@example.com",
                "spend_logs_metadata": json.dumps(spend_logs_metadata),
                "usage_object": {"prompt_tokens_details": {"cached_tokens": 1200}},
            }
        ),
        "request_tags": json.dumps(["team-api"]),
        "status": "success",
    }

    (record,) = _parse(row).records

    assert record.id == "req-1"
    assert record.cost_usd == Decimal("0.005")
    assert record.attribution == Attribution(repo="acme/widgets", branch="feat/cache-layer", commit="3f2c9a1b", pr=482)
    assert (record.actor, record.agent) == ("alice@example.com", "claude-code")
    assert (record.input_tokens, record.cache_read_tokens) == (800, 1200)


def test_attribution_from_request_tags() -> None:
    tags = ["team-api", "repo:acme/widgets", "branch:feat/x", "commit:abcdef1", "pr:#12", "agent:aider"]
    (record,) = _parse(_payload(request_tags=tags)).records

    assert record.attribution == Attribution(repo="acme/widgets", branch="feat/x", commit="abcdef1", pr=12)
    assert record.agent == "aider"


def test_attribution_from_extra_spend_tag_headers() -> None:
    # litellm_settings.extra_spend_tag_headers turns each listed header into a "Header-Name: value" tag.
    tags = [
        "User-Agent: claude-cli/2.0.5 (external, cli)",
        "x-vcs-repository-url-full: git@github.com:acme/widgets.git",
        "X-VCS-Ref-Head-Name: refs/heads/fix/retry",
        "x-vcs-ref-head-revision: 9e8d7c6b5a4f",
        "x-vcs-change-id: https://github.com/acme/widgets/pull/77",
    ]
    (record,) = _parse(_payload(request_tags=tags)).records

    assert record.attribution == Attribution(repo="acme/widgets", branch="fix/retry", commit="9e8d7c6b5a4f", pr=77)


def test_attribution_priority_spend_logs_metadata_then_requester_then_tags() -> None:
    metadata = {
        "spend_logs_metadata": {"repo": "acme/widgets", "branch": "feat/a"},
        "requester_metadata": {"spend_logs_metadata": {"repo": "acme/widgets", "commit": "1111111", "pr": 5}},
    }
    tags = ["repo:acme/widgets", "branch:feat/b", "pr:9", "x-vcs-ref-head-revision: 2222222"]

    (record,) = _parse(_payload(metadata=metadata, request_tags=tags)).records

    assert record.attribution == Attribution(repo="acme/widgets", branch="feat/a", commit="1111111", pr=5)


def test_attribution_of_another_repo_is_not_mixed_in() -> None:
    metadata = {"spend_logs_metadata": {"repo": "acme/widgets", "branch": "feat/a"}}
    tags = ["repo:other/thing", "commit:3333333"]

    (record,) = _parse(_payload(metadata=metadata, request_tags=tags)).records

    assert record.attribution == Attribution(repo="acme/widgets", branch="feat/a")


def test_actor_falls_back_to_user_id_then_end_user() -> None:
    by_id = _payload(metadata={"user_api_key_user_id": "u-42"}, end_user="customer-7")
    by_end_user = _payload(id="chatcmpl-test-2", end_user="customer-7", user="")

    records = _parse(by_id, by_end_user).records

    assert [r.actor for r in records] == ["u-42", "customer-7"]


def test_garbage_attribution_is_dropped_not_rejected() -> None:
    metadata = {"spend_logs_metadata": {"repo": "not a repo", "commit": "xyz", "pr": "abc"}}

    batch = _parse(_payload(metadata=metadata))

    assert batch.rejected == []
    assert batch.records[0].attribution == Attribution()


def test_failure_without_tokens_is_skipped_but_with_tokens_kept_at_zero_cost() -> None:
    failed_empty = _payload(id="f-1", status="failure", prompt_tokens=0, completion_tokens=0, response_cost=0)
    failed_billed = _payload(id="f-2", status="failure", prompt_tokens=900, completion_tokens=0, response_cost=0)

    batch = _parse(failed_empty, failed_billed)

    assert batch.skipped == 1
    (record,) = batch.records
    assert (record.id, record.input_tokens, record.cost_usd) == ("f-2", 900, Decimal(0))


def test_missing_cost_is_left_for_pricing() -> None:
    (record,) = _parse(_payload(response_cost=None)).records

    assert record.cost_usd is None


def test_single_object_and_ndjson_with_a_bad_line() -> None:
    one = litellm.parse(json.dumps(_payload()).encode())
    lines = [json.dumps(_payload(id="a")), "{not json", json.dumps(_payload(id="b"))]
    ndjson = litellm.parse("\n".join(lines).encode(), ndjson=True)

    assert [r.id for r in one.records] == ["chatcmpl-test-1"]
    assert [r.id for r in ndjson.records] == ["a", "b"]
    assert [r.index for r in ndjson.rejected] == [1]
    assert "not valid JSON" in ndjson.rejected[0].error
    assert ndjson.positions == [0, 2]


def test_bad_items_are_rejected_by_index_and_the_rest_parsed() -> None:
    items = [
        _payload(id="good-1"),
        _payload(id="no-model", model=None),
        _payload(id=None),
        _payload(id="bad-time", startTime="yesterday"),
        _payload(id="negative", prompt_tokens=-5),
        "not an object",
        _payload(id="no-time", startTime=None),
        _payload(id="bad-cost", response_cost=-1),
        _payload(id="good-2"),
    ]

    batch = _parse(*items)

    assert [r.id for r in batch.records] == ["good-1", "good-2"]
    assert batch.positions == [0, 8]
    errors = {r.index: r.error for r in batch.rejected}
    assert sorted(errors) == [1, 2, 3, 4, 5, 6, 7]
    assert "model" in errors[1]
    assert "id" in errors[2]
    assert "startTime" in errors[3]
    assert "prompt_tokens" in errors[4] and "negative" in errors[4]
    assert "object" in errors[5]
    assert "startTime" in errors[6]
    assert "response_cost" in errors[7]


@pytest.mark.parametrize("body", [b"not json at all", b'"a string"', b"42", b"", b"[1, 2"])
def test_unreadable_body_raises_payload_error(body: bytes) -> None:
    with pytest.raises(PayloadError):
        litellm.parse(body)
