from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price, data_snapshot

from app.money import to_nanousd
from app.pricing import _model_price, compute_cost, cost_nanousd, library_cost, price_nanousd, price_record
from app.records import UsageRecord


def make_record(**overrides: object) -> UsageRecord:
    fields: dict[str, object] = {
        "id": "r1",
        "source": "api",
        "timestamp": datetime(2025, 10, 1, tzinfo=UTC),
        "model": "claude-sonnet-4-5",
        "provider": "anthropic",
        "input_tokens": 1000,
        "cache_read_tokens": 5000,
        "output_tokens": 100,
    }
    fields.update(overrides)
    return UsageRecord(**fields)  # type: ignore[arg-type]


def test_cost_uses_non_cached_input_and_cache_prices() -> None:
    # claude-sonnet-4-5: $3 input, $0.30 cache read, $15 output per million tokens.
    assert compute_cost(make_record()) == Decimal("0.006")


def test_cost_matches_genai_prices_with_cache_included_in_its_input() -> None:
    record = make_record(cache_write_tokens=700)
    expected = calc_price(
        Usage(input_tokens=1000 + 5000 + 700, cache_read_tokens=5000, cache_write_tokens=700, output_tokens=100),
        "claude-sonnet-4-5",
        provider_id="anthropic",
        genai_request_timestamp=record.timestamp,
    ).total_price
    assert compute_cost(record) == expected


def test_fast_path_equals_the_library_for_every_model_in_the_snapshot() -> None:
    rng = random.Random(7)
    checked = 0
    for provider in data_snapshot.get_snapshot().providers:
        for model in provider.models:
            for scale in (2_000, 400_000):  # below and above the usual 200k tier threshold
                record = make_record(
                    model=model.id,
                    provider=provider.id,
                    timestamp=datetime(2026, 5, 1, tzinfo=UTC),
                    input_tokens=rng.randint(0, scale),
                    cache_read_tokens=rng.randint(0, scale),
                    cache_write_tokens=rng.randint(0, 3_000),
                    output_tokens=rng.randint(0, 5_000),
                )
                price = _model_price(provider.id, model.id, record.timestamp.date())
                if price is None:
                    continue
                assert compute_cost(record) == library_cost(record, price), (provider.id, model.id)
                checked += 1
    assert checked > 1000


def test_integer_nano_dollars_equal_the_decimal_cost_for_every_model_in_the_snapshot() -> None:
    rng = random.Random(11)
    checked = 0
    for provider in data_snapshot.get_snapshot().providers:
        for model in provider.models:
            for scale in (0, 2_000, 400_000, 10**12):  # nothing, below and above the 200k tier, huge
                record = make_record(
                    model=model.id,
                    provider=provider.id,
                    timestamp=datetime(2026, 5, 1, tzinfo=UTC),
                    input_tokens=rng.randint(0, scale),
                    cache_read_tokens=rng.randint(0, scale),
                    cache_write_tokens=rng.randint(0, scale // 100),
                    output_tokens=rng.randint(0, scale // 10),
                )
                assert cost_nanousd(record) == to_nanousd(compute_cost(record)), (provider.id, model.id, scale)
                checked += 1
    assert checked > 1000


def test_nano_prices_round_half_to_even_like_the_stored_decimal() -> None:
    # $0.30 per million cache reads: 5 tokens cost 1.5 nano-dollars, 15 tokens 4.5: both round to even.
    for tokens in (1, 5, 15, 7, 3_333_333):
        record = make_record(input_tokens=0, cache_read_tokens=tokens, output_tokens=0)
        assert cost_nanousd(record) == to_nanousd(compute_cost(record))
    assert price_nanousd(make_record(cost_usd=Decimal("1.25"))) == (1_250_000_000, True)
    assert price_nanousd(make_record(model="no-such-model")) == (None, False)


def test_unknown_model_is_unpriced_not_zero() -> None:
    assert compute_cost(make_record(model="acme-internal-llm", provider=None)) is None


@pytest.mark.parametrize(
    ("model", "provider"),
    [("anthropic/claude-sonnet-4-5", "litellm"), ("claude-sonnet-4-5", None), ("gemini-2.5-pro", "gemini")],
)
def test_gateway_model_names_are_priced(model: str, provider: str | None) -> None:
    assert compute_cost(make_record(model=model, provider=provider)) is not None


def test_reported_cost_wins() -> None:
    assert price_record(make_record(cost_usd=Decimal("1.25"))) == (Decimal("1.25"), True)
    cost, reported = price_record(make_record())
    assert cost == Decimal("0.006") and not reported


def test_historical_price_by_the_records_own_date() -> None:
    # gpt-4o's price fell on 2024-10-01 ($5 -> $2.50 per million input tokens): the record's date decides.
    early = make_record(
        model="gpt-4o",
        provider="openai",
        timestamp=datetime(2024, 6, 1, tzinfo=UTC),
        input_tokens=1_000_000,
        cache_read_tokens=0,
        output_tokens=0,
    )
    late = make_record(
        model="gpt-4o",
        provider="openai",
        timestamp=datetime(2025, 6, 1, tzinfo=UTC),
        input_tokens=1_000_000,
        cache_read_tokens=0,
        output_tokens=0,
    )
    expected_early = calc_price(
        Usage(input_tokens=1_000_000), "gpt-4o", provider_id="openai", genai_request_timestamp=early.timestamp
    ).total_price
    assert compute_cost(early) == expected_early
    assert compute_cost(late) == Decimal("2.5")
